/**
 * `cdn-build deploy` to a fleet over SSH: a real sshd from Debian on 127.0.0.1 (temporary host and user
 * keys), two "hosts" as two prefixes reached through it, each edge on its own port (the inventory's
 * policyEnv), a canary first, a load during a good deploy, and a broken host that stops the rollout.
 */
import { readlink, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { request } from "undici";
import { stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findNginx, freePort } from "../src/runtime/nginx.js";
import { badLogLines, cli, startLoad, stopPrefix } from "./support/deploy.js";
import { projectDir } from "./support/edge.js";
import { startMockOrigin, type MockOrigin } from "./support/mock-origin.js";
import { startSshd, type Sshd } from "./support/sshd.js";

let dir: string;
let sshd: Sshd;
let origin: MockOrigin;
let nginx: string;
const hosts = { a: { port: 0, prefix: "" }, b: { port: 0, prefix: "" } };
let policyFile: string;

/** A TypeScript policy that takes its port, origin and release name from the environment of its build. */
const POLICY = `declare const process: { env: Record<string, string | undefined> };
export default {
  name: "fleet",
  listen: { http: Number(process.env.EDGE_PORT), address: "127.0.0.1" },
  origins: { app: { servers: [{ address: process.env.EDGE_ORIGIN ?? "" }], retries: 0 } },
  headers: { response: { set: { "X-Release": process.env.EDGE_RELEASE ?? "none" } } },
  health: { path: "/health" },
  workers: { processes: 1, connections: 1024 },
};
`;

async function served(h: keyof typeof hosts): Promise<string> {
  const res = await request(`http://127.0.0.1:${hosts[h].port}/page`, { headers: { connection: "close" } });
  await res.body.dump();
  return res.statusCode === 200 ? String(res.headers["x-release"]) : `status ${res.statusCode}`;
}

async function inventory(name: string, release: string, order: (keyof typeof hosts)[], broken?: keyof typeof hosts): Promise<string> {
  const dead = `127.0.0.1:${await freePort()}`;
  const inv = {
    defaults: {
      ssh: `${sshd.user}@127.0.0.1`,
      port: sshd.port,
      identity: sshd.identity,
      sshOptions: sshd.options,
      nginx,
      start: true,
    },
    hosts: order.map((h) => ({
      name: `edge-${h}`,
      prefix: hosts[h].prefix,
      health: [`http://127.0.0.1:${hosts[h].port}/health`, `http://127.0.0.1:${hosts[h].port}/page`],
      policyEnv: { EDGE_PORT: String(hosts[h].port), EDGE_ORIGIN: h === broken ? dead : origin.address, EDGE_RELEASE: release },
    })),
  };
  const file = join(dir, name);
  await writeFile(file, stringify(inv));
  return file;
}

beforeAll(async () => {
  dir = await projectDir("cdn-deploy-ssh-");
  sshd = await startSshd(join(dir, "ssh"));
  origin = await startMockOrigin();
  origin.setDefault({ status: 200, headers: { "cache-control": "no-store" }, body: "hello" });
  nginx = (await findNginx())!.path;
  for (const h of ["a", "b"] as const) hosts[h] = { port: await freePort(), prefix: join(dir, `host-${h}`) };
  policyFile = join(dir, "fleet.policy.ts");
  await writeFile(policyFile, POLICY);
});

afterAll(async () => {
  const bad: string[] = [];
  for (const h of Object.values(hosts)) {
    if (!h.prefix) continue;
    await stopPrefix(h.prefix);
    bad.push(...(await badLogLines(h.prefix)));
  }
  await sshd?.stop();
  await origin?.close();
  await rm(dir, { recursive: true, force: true });
  expect(bad).toEqual([]);
});

describe("cdn-build deploy over SSH", () => {
  it("deploys to both hosts, the canary first, starting nginx on each", async () => {
    const r = await cli(["deploy", policyFile, "--inventory", await inventory("v1.yaml", "one", ["a", "b"]), "--canary", "1"]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/\[edge-a\] canary: deploying/);
    expect(r.stderr.indexOf("[edge-a] healthy")).toBeLessThan(r.stderr.indexOf("[edge-b] uploading"));
    expect(r.stdout).toMatch(/edge-a\s+deployed/);
    expect(r.stdout).toMatch(/edge-b\s+deployed/);
    expect(await served("a")).toBe("one");
    expect(await served("b")).toBe("one");
  });

  it("status over SSH shows each host's release, policy and master", async () => {
    const r = await cli(["status", "--inventory", join(dir, "v1.yaml"), "--json"]);
    expect(r.exitCode, r.stderr).toBe(0);
    const st = JSON.parse(r.stdout).hosts;
    expect(st.map((s: { host: string }) => s.host)).toEqual(["edge-a", "edge-b"]);
    for (const s of st) {
      expect(s.manifest.policy).toBe("fleet");
      expect(s.pid).toBeGreaterThan(1);
      expect(s.current).toBe((await readlink(join(s.prefix, "current"))).replace("releases/", ""));
    }
    // one policy, two builds (each host's port): two different manifests
    expect(st[0].manifest.sha256).not.toBe(st[1].manifest.sha256);
  });

  it("a good deploy to the fleet under load: zero failed requests on either host", async () => {
    const loads = (["a", "b"] as const).flatMap((h) => [
      startLoad(`http://127.0.0.1:${hosts[h].port}/page`, { concurrency: 2, maxMs: 90_000 }),
      startLoad(`http://127.0.0.1:${hosts[h].port}/page`, { concurrency: 2, maxMs: 90_000, keepAlive: true }),
    ]);
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    const r = await cli(["deploy", policyFile, "--inventory", await inventory("v2.yaml", "two", ["a", "b"]), "--canary", "1", "--parallel", "2"]);
    const ms = Date.now() - t0;
    await new Promise((r) => setTimeout(r, 300));
    const results = [];
    for (const l of loads) results.push(await l.stop());
    const ok = results.reduce((n, x) => n + x.ok, 0);
    const failed = results.reduce((n, x) => n + x.failed, 0);
    const retried = results.reduce((n, x) => n + x.retried, 0);
    console.log(`fleet deploy over SSH under load: ${ok} ok, ${failed} failed (${retried} keep-alive requests sent again), 2 hosts in ${ms} ms`);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(results.flatMap((x) => x.failures)).toEqual([]);
    expect(failed).toBe(0);
    for (const x of results) expect(x.releases).toEqual(["one", "two"]);
    expect(await served("a")).toBe("two");
    expect(await served("b")).toBe("two");
  });

  it("a broken canary stops the rollout: it is rolled back, the other host is not touched", async () => {
    const inv = await inventory("v3.yaml", "three", ["b", "a"], "b");
    const r = await cli(["deploy", policyFile, "--inventory", inv, "--canary", "1", "--health-timeout", "2"]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/edge-b\s+rolled back/);
    expect(r.stdout).toMatch(/edge-a\s+skipped/);
    expect(r.stderr).toMatch(/\[edge-b\] rolled back: health probe http:\/\/127\.0\.0\.1:\d+\/page: status 502/);
    expect(await served("b")).toBe("two");
    expect(await served("a")).toBe("two");
  });

  it("a broken host after a good one: the good one keeps the new release, the broken one is rolled back", async () => {
    const inv = await inventory("v4.yaml", "four", ["a", "b"], "b");
    const r = await cli(["deploy", policyFile, "--inventory", inv, "--canary", "1", "--health-timeout", "2", "--json"]);
    expect(r.exitCode).toBe(1);
    const out = JSON.parse(r.stdout).hosts;
    expect(out.map((o: { result: string }) => o.result)).toEqual(["deployed", "rolled back"]);
    expect(await served("a")).toBe("four");
    expect(await served("b")).toBe("two");
  });

  it("rollback over SSH switches every host to its previous release", async () => {
    const r = await cli(["rollback", "--inventory", join(dir, "v1.yaml")]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await served("a")).toBe("two");
    expect(await served("b")).toBe("one");
  });

  it("diff a policy against what a host runs, fetched over SSH", async () => {
    const ssh = ["--ssh-port", String(sshd.port), "--identity", sshd.identity, ...sshd.options.flatMap((o) => ["--ssh-option", o])];
    const env = { EDGE_PORT: String(hosts.a.port), EDGE_ORIGIN: origin.address, EDGE_RELEASE: "five" };
    const r = await cli(["diff", policyFile, `${sshd.user}@127.0.0.1:${hosts.a.prefix}`, "--json", ...ssh], { env });
    expect(r.exitCode, r.stderr).toBe(1);
    const d = JSON.parse(r.stdout);
    expect(d.compared).toBe("bundle");
    expect(d.changes).toEqual([expect.objectContaining({ path: "/features/headers/response/set/0/1", before: "five", after: "two" })]);
    const none = await cli(["diff", policyFile, `${sshd.user}@127.0.0.1:${hosts.a.prefix}`, ...ssh], { env: { ...env, EDGE_RELEASE: "two" } });
    expect(none.exitCode, none.stdout + none.stderr).toBe(0);
    const missing = await cli(["diff", policyFile, `${sshd.user}@127.0.0.1:${dir}/nowhere`, ...ssh], { env });
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toMatch(/has no current release/);
  });

  it("an unreachable host fails with the ssh error, exit 1", async () => {
    const r = await cli(["status", `${sshd.user}@127.0.0.1:/srv/edge`, "--ssh-port", String(await freePort()), "--identity", sshd.identity, "--ssh-option", `UserKnownHostsFile=${sshd.knownHosts}`]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/ssh to .* failed: .*(refused|Connection)/i);
  });
});
