import type { IConfigMap } from "kubernetes-models/v1/ConfigMap";
import type { IService } from "kubernetes-models/v1/Service";
import type { IContainer } from "kubernetes-models/v1/Container";
import type { IProbe } from "kubernetes-models/v1/Probe";
import type { IContainerPort } from "kubernetes-models/v1/ContainerPort";
import type { IVolume } from "kubernetes-models/v1/Volume";
import type { IVolumeMount } from "kubernetes-models/v1/VolumeMount";
import type { IDeployment } from "kubernetes-models/apps/v1/Deployment";
import type { IPodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import type { IHorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler";
// Types only (erased from the build): the object literals below are checked field by field against the
// Kubernetes API types, so a misspelt field is a compile error, not a manifest the API server refuses.
import { BUNDLE_MOUNT, ContainerPolicyError, header, logLinks, OPENRESTY_BIN, PREFIX, sq, START, yaml, type EdgeFacts } from "./facts.js";
import type { ContainerOptions } from "./options.js";

/** The API server refuses a ConfigMap whose keys and values add up to more than this (1 MiB). */
export const CONFIGMAP_MAX_BYTES = 1024 * 1024;

const SERVICE_NAME = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const GRACE_SECONDS = 60;
/** Seconds between the pod's removal from the Service's endpoints and nginx's graceful quit. */
const DRAIN_DELAY = 5;

export interface K8sOutput {
  /** Paths relative to the k8s folder -> text; kustomization.yaml lists the others. */
  files: Map<string, string>;
  /** The ConfigMaps holding the bundle. */
  configMaps: string[];
  warnings: string[];
}

/** A ConfigMap key for a bundle path (keys are `[-._a-zA-Z0-9]+`; the items' paths put `/` back). */
function configMapKeys(paths: string[]): Map<string, string> {
  const keys = new Map<string, string>();
  const used = new Set<string>();
  for (const p of paths) {
    const base = p.replace(/\//g, ".").replace(/[^-._a-zA-Z0-9]/g, "_");
    let key = base;
    for (let i = 2; used.has(key); i++) key = `${base}-${i}`;
    used.add(key);
    keys.set(p, key);
  }
  return keys;
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(2)} MiB (${bytes.toLocaleString("en-US")} bytes)`;
}

/** The bundle's files packed into as few ConfigMaps as fit the 1 MiB limit, in path order. */
function packBundle(facts: EdgeFacts, keys: Map<string, string>): { path: string; key: string }[][] {
  const parts: { path: string; key: string }[][] = [];
  let current: { path: string; key: string }[] = [];
  let size = 0;
  for (const [path, text] of facts.files) {
    const key = keys.get(path)!;
    const bytes = Buffer.byteLength(key) + Buffer.byteLength(text);
    if (bytes > CONFIGMAP_MAX_BYTES) {
      throw new ContainerPolicyError(
        `--emit k8s: the bundle file ${path} is ${mib(bytes - Buffer.byteLength(key))}; a ConfigMap holds at most ` +
          `${mib(CONFIGMAP_MAX_BYTES)}, so this bundle cannot be shipped in ConfigMaps (make the file smaller, e.g. ` +
          `move large data out of a hook, or build an image with the bundle in it)`,
      );
    }
    if (size + bytes > CONFIGMAP_MAX_BYTES) {
      parts.push(current);
      current = [];
      size = 0;
    }
    current.push({ path, key });
    size += bytes;
  }
  if (current.length) parts.push(current);
  return parts;
}

function memoryDefault(facts: EdgeFacts): string {
  return `${Math.ceil(facts.shmBytes / 1024 / 1024) + 512}Mi`;
}

/** Renders the Kubernetes manifests of a built bundle. Pure. */
export function renderK8s(facts: EdgeFacts, opts: ContainerOptions): K8sOutput {
  const name = facts.name;
  if (!SERVICE_NAME.test(name)) {
    throw new ContainerPolicyError(
      `--emit k8s: the policy name "${name}" cannot name a Kubernetes Service (it must start with a letter and end ` +
        `with a letter or digit); rename the policy`,
    );
  }
  const warnings: string[] = [];
  const ns = opts.namespace !== undefined ? { namespace: opts.namespace } : {};
  const labels = { "app.kubernetes.io/name": name, "app.kubernetes.io/component": "edge", "app.kubernetes.io/managed-by": "cdn-build" };
  const selector = { "app.kubernetes.io/name": name, "app.kubernetes.io/component": "edge" };
  const meta = (n: string) => ({ name: n, ...ns, labels });

  // the bundle, in hash-named immutable ConfigMaps: a changed bundle is a new name, so a new rollout
  const keys = configMapKeys([...facts.files.keys()]);
  const parts = packBundle(facts, keys);
  const cmBase = `${name}-bundle-${facts.bundleSha.slice(0, 10)}`;
  const cmNames = parts.map((_, i) => (parts.length === 1 ? cmBase : `${cmBase}-${i + 1}`));
  const configMaps: IConfigMap[] = parts.map((part, i) => ({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { ...meta(cmNames[i]!), annotations: { "cdn-build/bundle-sha256": facts.bundleSha, "cdn-build/part": `${i + 1}/${parts.length}` } },
    immutable: true,
    data: Object.fromEntries(part.map(({ path, key }) => [key, facts.files.get(path)!])),
  }));

  const env = facts.env.map((v) => ({ name: v, valueFrom: { secretKeyRef: { name: `${name}-env`, key: v } } }));
  const ports: IContainerPort[] = [
    { name: "http", containerPort: facts.httpPort, protocol: "TCP" },
    ...(facts.httpsPort !== undefined ? [{ name: "https", containerPort: facts.httpsPort, protocol: "TCP" as const }] : []),
  ];

  const check: IProbe = facts.healthPath !== undefined ? { httpGet: { path: facts.healthPath, port: "http", scheme: "HTTP" } } : { tcpSocket: { port: "http" } };
  if (facts.healthPath === undefined) {
    warnings.push("--emit k8s: the policy has no health endpoint (health.path): the probes only open a TCP connection to the http port");
  }
  const startup: IProbe = { ...check, periodSeconds: 2, timeoutSeconds: 2, failureThreshold: 30 };
  const readiness: IProbe = { ...check, periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 2, successThreshold: 1 };
  const liveness: IProbe = { ...check, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 };

  const volumes: IVolume[] = [
    {
      name: "bundle",
      projected: { defaultMode: 0o444, sources: parts.map((part, i) => ({ configMap: { name: cmNames[i]!, items: part.map(({ path, key }) => ({ key, path })) } })) },
    },
    { name: "prefix", emptyDir: {} },
    { name: "tmp", emptyDir: {} },
  ];
  const mounts: IVolumeMount[] = [
    { name: "prefix", mountPath: PREFIX },
    { name: "tmp", mountPath: "/tmp" },
  ];
  if (facts.hostFiles.length) {
    // private keys readable by root (the master) only; certificates and CA bundles by the workers too
    const secret = (key: string, from: string) => (/key$|tickets/i.test(from) ? 0o400 : 0o444);
    volumes.push({
      name: "host-files",
      secret: { secretName: `${name}-files`, items: facts.hostFiles.map((f) => ({ key: f.key, path: f.key, mode: secret(f.key, f.from) })) },
    });
    for (const f of facts.hostFiles) mounts.push({ name: "host-files", mountPath: f.path, subPath: f.key, readOnly: true });
  }
  facts.writableDirs.forEach((dir, i) => {
    volumes.push({ name: `writable-${i + 1}`, emptyDir: {} });
    mounts.push({ name: `writable-${i + 1}`, mountPath: dir });
  });
  if (facts.envPaths.length) {
    warnings.push(
      `--emit k8s: the certificate paths in ${facts.envPaths.join(", ")} come from the environment: mount those files into the ` +
        `openresty container yourself (a kustomize patch), the manifests cannot know where they are`,
    );
  }
  if (facts.workersAuto) {
    warnings.push(
      "--emit k8s: workers.processes is auto: in a pod nginx starts one worker per core of the node, not of the pod's CPU " +
        "request; set workers.processes (e.g. 2) for predictable memory and CPU",
    );
  }
  if (facts.redis?.loopback) {
    warnings.push(
      `--emit k8s: redis.host is ${facts.redis.host}: inside a pod that is the pod itself, where no Redis runs; purge fan-out and ` +
        `cluster rate limits need the address of a Redis every pod reaches (a Service's cluster IP)`,
    );
  } else if (facts.redis?.hostName) {
    warnings.push(
      `--emit k8s: redis.host is the host name "${facts.redis.host}", but the bundle has no DNS resolver for the Lua runtime: ` +
        `give the Redis Service's cluster IP instead`,
    );
  }

  const install = [
    "set -eu",
    `cp -RL ${facts.topLevel.map((e) => sq(`${BUNDLE_MOUNT}/${e}`)).join(" ")} ${PREFIX}/`,
    `mkdir -p ${PREFIX}/logs ${PREFIX}/cache ${PREFIX}/temp`,
    ...logLinks(facts),
  ].join("\n");
  const hardened = { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true };
  const initContainer: IContainer = {
    name: "install-bundle",
    image: opts.image,
    command: ["/bin/sh", "-c", install],
    volumeMounts: [
      { name: "bundle", mountPath: BUNDLE_MOUNT, readOnly: true },
      { name: "prefix", mountPath: PREFIX },
    ],
    resources: { requests: { cpu: "50m", memory: "32Mi" }, limits: { memory: "64Mi" } },
    securityContext: { ...hardened, capabilities: { drop: ["ALL"] } },
  };
  const memory = opts.memory ?? memoryDefault(facts);
  // a graceful stop: leave the Service's endpoints first, then let nginx finish what it serves and wait for it
  const quit = `sleep ${DRAIN_DELAY}; ${OPENRESTY_BIN} -p ${PREFIX}/ -c nginx.conf -s quit; while [ -e ${PREFIX}/logs/nginx.pid ]; do sleep 1; done`;
  const container: IContainer = {
    name: "openresty",
    image: opts.image,
    command: START,
    ports,
    ...(env.length ? { env } : {}),
    resources: { requests: { cpu: opts.cpu, memory }, limits: { memory } },
    startupProbe: startup,
    readinessProbe: readiness,
    livenessProbe: liveness,
    lifecycle: { preStop: { exec: { command: ["/bin/sh", "-c", quit] } } },
    volumeMounts: mounts,
    securityContext: {
      ...hardened,
      // the master runs as root and the workers as nginx's unprivileged user, as on a host: it needs to
      // change user, own its temp and cache folders, signal its workers and bind ports below 1024
      capabilities: { drop: ["ALL"], add: ["CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "NET_BIND_SERVICE", "SETGID", "SETUID"] },
    },
  };

  const deployment: IDeployment = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: meta(name),
    spec: {
      ...(opts.hpa ? {} : { replicas: opts.replicas }),
      revisionHistoryLimit: 5,
      minReadySeconds: 5,
      selector: { matchLabels: selector },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: {
          labels,
          annotations: { "cdn-build/bundle-sha256": facts.bundleSha, "cdn-build/tool-version": facts.toolVersion },
        },
        spec: {
          terminationGracePeriodSeconds: GRACE_SECONDS,
          enableServiceLinks: false,
          securityContext: { seccompProfile: { type: "RuntimeDefault" } },
          topologySpreadConstraints: [{ maxSkew: 1, topologyKey: "kubernetes.io/hostname", whenUnsatisfiable: "ScheduleAnyway", labelSelector: { matchLabels: selector } }],
          initContainers: [initContainer],
          containers: [container],
          volumes,
        },
      },
    },
  };

  const external = opts.serviceType !== "ClusterIP";
  const service: IService = {
    apiVersion: "v1",
    kind: "Service",
    metadata: meta(name),
    spec: {
      type: opts.serviceType,
      selector,
      ...(external ? { externalTrafficPolicy: "Local" } : {}),
      ports: ports.map((p) => ({ name: p.name!, port: p.containerPort, targetPort: p.name!, protocol: "TCP" as const })),
    },
  };
  const pdb: IPodDisruptionBudget = {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata: meta(name),
    spec: { maxUnavailable: 1, selector: { matchLabels: selector }, unhealthyPodEvictionPolicy: "AlwaysAllow" },
  };
  const hpa: IHorizontalPodAutoscaler | undefined = opts.hpa && {
    apiVersion: "autoscaling/v2",
    kind: "HorizontalPodAutoscaler",
    metadata: meta(name),
    spec: {
      scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name },
      minReplicas: opts.hpa.min,
      maxReplicas: opts.hpa.max,
      metrics: [{ type: "Resource", resource: { name: "cpu", target: { type: "Utilization", averageUtilization: opts.hpaCpu } } }],
      behavior: { scaleDown: { stabilizationWindowSeconds: 300 } },
    },
  };

  const files = new Map<string, string>();
  files.set("bundle-configmap.yaml", header(facts, `The bundle's ${facts.files.size} files in ${cmNames.length} immutable ConfigMap(s), named by the bundle's hash.`) + configMaps.map(yaml).join("---\n"));
  const secretNote = [
    ...(facts.env.length ? [`# Secret ${name}-env (keys ${facts.env.join(", ")}) must exist: the pods do not start without it.`] : []),
    ...(facts.hostFiles.length ? [`# Secret ${name}-files must hold the files the policy names: ${facts.hostFiles.map((f) => `${f.key} -> ${f.path}`).join(", ")}.`] : []),
  ];
  files.set("deployment.yaml", header(facts, "OpenResty running the bundle: rolling update, probes on the health endpoint, graceful drain.") + secretNote.map((l) => l + "\n").join("") + yaml(deployment));
  files.set("service.yaml", header(facts, "The edge's ports.") + yaml(service));
  files.set("pdb.yaml", header(facts, "At most one pod down at a time for voluntary disruptions (drains).") + yaml(pdb));
  if (hpa) files.set("hpa.yaml", header(facts, `Between ${opts.hpa!.min} and ${opts.hpa!.max} pods at ${opts.hpaCpu}% CPU.`) + yaml(hpa));
  const resources = [...files.keys()];
  const create = [
    ...(facts.env.length ? [`#   kubectl${opts.namespace ? ` -n ${opts.namespace}` : ""} create secret generic ${name}-env ${facts.env.map((v) => `--from-literal=${v}=...`).join(" ")}`] : []),
    ...(facts.hostFiles.length ? [`#   kubectl${opts.namespace ? ` -n ${opts.namespace}` : ""} create secret generic ${name}-files ${facts.hostFiles.map((f) => `--from-file=${f.key}=<file>`).join(" ")}`] : []),
  ];
  files.set(
    "kustomization.yaml",
    header(facts, "Apply with `kubectl apply -k <this folder>`; see docs/containers.md.") +
      (create.length ? `# Secrets to create first (values never appear in these files):\n${create.join("\n")}\n` : "") +
      yaml({ apiVersion: "kustomize.config.k8s.io/v1beta1", kind: "Kustomization", resources }),
  );
  return { files, configMaps: cmNames, warnings };
}
