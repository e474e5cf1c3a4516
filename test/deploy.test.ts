/**
 * `cdn-build deploy`, `rollback` and `status` on a local prefix, over real processes: the CLI as users run
 * it, a real nginx started by the first deploy from <prefix>/current, a mock origin, and a load of parallel
 * requests during a deploy.
 */
import { createHash } from "node:crypto";
import { execa } from "execa";
import { mkdir, readdir, readFile, readlink, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findNginx, freePort } from "../src/runtime/nginx.js";
import { badLogLines, BIN, cli, policyYaml, startLoad, stopPrefix } from "./support/deploy.js";
import { projectDir } from "./support/edge.js";
import { startMockOrigin, type MockOrigin } from "./support/mock-origin.js";

let dir: string;
let prefix: string;
let origin: MockOrigin;
let port: number;
let base: string;

async function release(): Promise<string | undefined> {
  const res = await request(`${base}/page`, { headers: { connection: "close" } });
  await res.body.dump();
  return res.statusCode === 200 ? String(res.headers["x-release"]) : `status ${res.statusCode}`;
}

async function current(): Promise<string> {
  return (await readlink(join(prefix, "current"))).replace(/^releases\//, "");
}

async function releases(): Promise<string[]> {
  return (await readdir(join(prefix, "releases"))).filter((r) => !r.startsWith(".")).sort();
}

async function writePolicy(name: string, text: string): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, text);
  return file;
}

beforeAll(async () => {
  dir = await projectDir("cdn-deploy-");
  prefix = join(dir, "edge");
  origin = await startMockOrigin();
  origin.setDefault({ status: 200, headers: { "cache-control": "no-store" }, body: "hello" });
  port = await freePort();
  base = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await stopPrefix(prefix);
  await origin?.close();
  // the only Lua error allowed is the one the broken-Lua release caused on purpose
  const bad = await badLogLines(prefix, /init_by_lua_file error: error loading module 'policy_data' from file '[^']*\/current\/\/lua\/policy_data\.lua'/);
  await rm(dir, { recursive: true, force: true });
  expect(bad).toEqual([]);
});

describe("cdn-build deploy to a local prefix", () => {
  const v = (n: string) => policyYaml({ port, origin: origin.address, release: n });

  it("a first deploy without --start refuses (nginx not running) and leaves nothing switched", async () => {
    const r = await cli(["deploy", await writePolicy("v0.yaml", v("zero")), "--to", prefix]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/nginx is not running .*--start/);
  });

  it("the first deploy with --start builds, ships, starts nginx from <prefix>/current and probes health", async () => {
    const r = await cli(["deploy", await writePolicy("v1.yaml", v("one")), "--to", prefix, "--start"]);
    expect(r.stderr + r.stdout).toMatch(/deployed/);
    expect(r.exitCode).toBe(0);
    expect(await release()).toBe("one");
    const id = await current();
    expect(id).toMatch(/^\d{8}T\d{6}Z-[0-9a-f]{12}$/);
    // the id carries the manifest's sha256; the state lives in shared/, linked from the release
    const manifest = await readFile(join(prefix, "current", "manifest.json"));
    expect(id.endsWith(createHash("sha256").update(manifest).digest("hex").slice(0, 12))).toBe(true);
    expect(await readlink(join(prefix, "releases", id, "logs"))).toBe("../../shared/logs");
    expect(r.stderr).toMatch(/started nginx/);
  });

  it("status names the release, its manifest and the master's uptime", async () => {
    const r = await cli(["status", prefix, "--json"]);
    expect(r.exitCode).toBe(0);
    const st = JSON.parse(r.stdout).hosts[0];
    expect(st.current).toBe(await current());
    expect(st.manifest.policy).toBe("deployed");
    expect(st.manifest.toolVersion).toMatch(/^\d+\.\d+\.\d+/);
    expect(st.current.endsWith(st.manifest.sha256.slice(0, 12))).toBe(true);
    expect(st.pid).toBeGreaterThan(1);
    expect(st.uptimeSeconds).toBeGreaterThanOrEqual(0);
    expect(st.masterPrefix).toBe(`${prefix}/current/`);
    const text = await cli(["status", prefix]);
    expect(text.stdout).toMatch(/release\s+policy\s+tool/);
  });

  it("a changed policy deployed under load: zero failed requests, and the new release serves", async () => {
    const before = await current();
    const fresh = startLoad(`${base}/page`, { concurrency: 4, maxMs: 60_000 });
    const kept = startLoad(`${base}/page`, { concurrency: 4, maxMs: 60_000, keepAlive: true });
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    const r = await cli(["deploy", await writePolicy("v2.yaml", v("two")), "--to", prefix]);
    const deployMs = Date.now() - t0;
    await new Promise((r) => setTimeout(r, 300));
    const a = await fresh.stop();
    const b = await kept.stop();
    console.log(
      `deploy under load: new connections ${a.ok} ok / ${a.failed} failed; keep-alive ${b.ok} ok / ${b.failed} failed ` +
        `(${b.retried} sent again after the reload closed their idle connection); deploy ${deployMs} ms (CLI, build included)`,
    );
    expect(r.exitCode, r.stderr).toBe(0);
    for (const res of [a, b]) {
      expect(res.failures).toEqual([]);
      expect(res.failed).toBe(0);
      expect(res.ok).toBeGreaterThan(50);
      expect(res.releases).toEqual(["one", "two"]);
    }
    expect(await release()).toBe("two");
    expect(await current()).not.toBe(before);
  });

  it("a bundle that fails nginx -t is refused before the switch: the previous release keeps serving", async () => {
    const before = await current();
    const out = join(dir, "broken");
    expect((await cli(["build", await writePolicy("v3.yaml", v("three")), "--out", out])).exitCode).toBe(0);
    // break the bundle and keep its manifest consistent (a broken build, not a corrupted copy)
    const conf = (await readFile(join(out, "nginx.conf"), "utf8")).replace("http {", "http {\n    no_such_directive on;");
    await writeFile(join(out, "nginx.conf"), conf);
    const manifest = JSON.parse(await readFile(join(out, "manifest.json"), "utf8"));
    manifest.files["nginx.conf"] = { sha256: createHash("sha256").update(conf).digest("hex"), bytes: Buffer.byteLength(conf) };
    await writeFile(join(out, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
    const count = (await releases()).length;
    const r = await cli(["deploy", out, "--to", prefix]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/nginx -t refused the release/);
    expect(r.stderr).toMatch(/unknown directive "no_such_directive"/);
    expect(await current()).toBe(before);
    expect((await releases()).length).toBe(count); // the refused release was removed
    expect(await release()).toBe("two");
  });

  it("a release whose Lua does not load (nginx -t cannot tell) is caught at the reload and rolled back", async () => {
    const before = await current();
    const out = join(dir, "badlua");
    expect((await cli(["build", join(dir, "v1.yaml"), "--out", out])).exitCode).toBe(0);
    const file = join(out, "lua", "policy_data.lua");
    const text = (await readFile(file, "utf8")) + "local x = = 1\n";
    await writeFile(file, text);
    const manifest = JSON.parse(await readFile(join(out, "manifest.json"), "utf8"));
    manifest.files["lua/policy_data.lua"] = { sha256: createHash("sha256").update(text).digest("hex"), bytes: Buffer.byteLength(text) };
    await writeFile(join(out, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
    const t0 = Date.now();
    const r = await cli(["deploy", out, "--to", prefix]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/rolled back/);
    expect(r.stderr).toMatch(/init_by_lua_file error: .*policy_data/);
    expect(Date.now() - t0).toBeLessThan(14_000); // seen in error.log, not after the 15 s wait for new workers
    expect(await current()).toBe(before);
    expect(await release()).toBe("two");
  });

  it("a bundle edited after its build does not match its manifest and is refused before any host is touched", async () => {
    const out = join(dir, "broken");
    await writeFile(join(out, "lua", "policy_data.lua"), "return {}\n");
    const r = await cli(["deploy", out, "--to", prefix]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/lua\/policy_data.lua: sha256 differs from the manifest/);
  });

  it("a release whose health probe fails is rolled back: current and the served release are the previous ones", async () => {
    const before = await current();
    const count = (await releases()).length;
    const dead = await freePort(); // nothing listens there: every proxied request gets 502
    const file = await writePolicy("v4.yaml", policyYaml({ port, origin: `127.0.0.1:${dead}`, release: "four" }));
    const r = await cli(["deploy", file, "--to", prefix, "--health-url", `${base}/page`, "--health-timeout", "2"]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/rolled back/);
    expect(r.stderr).toMatch(/health probe .*status 502/);
    expect(await current()).toBe(before);
    expect(await release()).toBe("two");
    expect((await releases()).length).toBe(count); // the failed release was removed
  });

  it("rollback switches to the release before the current one, with the same checks", async () => {
    const [first, second] = await releases();
    expect(await current()).toBe(second);
    const r = await cli(["rollback", "--to", prefix]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await current()).toBe(first);
    expect(await release()).toBe("one");
    // nothing older than the first release: a second rollback fails and keeps the current one
    const again = await cli(["rollback", "--to", prefix]);
    expect(again.exitCode).toBe(1);
    expect(again.stderr).toMatch(/no release older than/);
    expect(await release()).toBe("one");
    // back to the newest with --release
    expect((await cli(["rollback", "--to", prefix, "--release", second!])).exitCode).toBe(0);
    expect(await release()).toBe("two");
  });

  it("--keep prunes the oldest releases, never the current one", async () => {
    const r = await cli(["deploy", join(dir, "v1.yaml"), "--to", prefix, "--keep", "2"]);
    expect(r.exitCode, r.stderr).toBe(0);
    const left = await releases();
    expect(left).toHaveLength(2);
    expect(left).toContain(await current());
    expect(await release()).toBe("one");
  });

  it("--reload-cmd replaces the SIGHUP (here: nginx -s reload with the prefix's own flags)", async () => {
    const bin = (await findNginx())!.path;
    const r = await cli(["deploy", join(dir, "v2.yaml"), "--to", prefix, "--reload-cmd", `${bin} -p ${prefix}/current/ -c nginx.conf -s reload`]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await release()).toBe("two");
  });

  it("one deploy at a time per prefix: a held lock fails the deploy and names the lock", async () => {
    const served = await release();
    await mkdir(join(prefix, ".deploy-lock"));
    await writeFile(join(prefix, ".deploy-lock", "owner"), "deploy from someone\n");
    try {
      const r = await cli(["deploy", join(dir, "v2.yaml"), "--to", prefix]);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(/another deploy or rollback holds .*\.deploy-lock \(deploy from someone\)/);
      expect(await release()).toBe(served);
    } finally {
      await rm(join(prefix, ".deploy-lock"), { recursive: true });
    }
  });

  it("usage errors exit 2 and name the argument; --help exits 0", async () => {
    for (const cmd of ["deploy", "rollback", "status"]) {
      const h = await cli([cmd, "--help"]);
      expect(h.exitCode).toBe(0);
      expect(h.stdout).toMatch(/^Usage: cdn-build /);
    }
    const cases: [string[], RegExp][] = [
      [["deploy", join(dir, "v1.yaml")], /--to <prefix/],
      [["deploy", join(dir, "v1.yaml"), "--to", prefix, "--keep", "0"], /--keep must be an integer/],
      [["deploy", join(dir, "v1.yaml"), "--to", "host:relative"], /absolute path/],
      [["deploy", join(dir, "v1.yaml"), "--to", prefix, "--canary", "x"], /--canary/],
      [["deploy", join(dir, "v1.yaml"), "--to", prefix, "--target", "iis"], /unknown target "iis"/],
      [["deploy", join(dir, "v1.yaml"), "--to", prefix, "--host-env-file", "relative.env"], /--host-env-file must be an absolute path/],
      [["rollback", "--to", prefix, "--release", "../x"], /--release/],
      [["status"], /--to/],
      [["deploy", join(dir, "v1.yaml"), "--to", prefix, "--bogus"], /bogus/],
    ];
    for (const [args, msg] of cases) {
      const r = await cli(args);
      expect(r.exitCode, args.join(" ")).toBe(2);
      expect(r.stderr).toMatch(msg);
    }
  });

  it("an invalid inventory names the field; a missing one is a usage error", async () => {
    const inv = join(dir, "hosts.yaml");
    await writeFile(inv, "hosts:\n  - prefix: relative/path\n    keep: many\n    colour: blue\n");
    const r = await cli(["deploy", join(dir, "v1.yaml"), "--inventory", inv]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/\/hosts\/0\/prefix: must match pattern/);
    expect(r.stderr).toMatch(/\/hosts\/0\/keep: must be integer/);
    expect(r.stderr).toMatch(/colour/);
    const missing = await cli(["status", "--inventory", join(dir, "nope.yaml")]);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toMatch(/cannot read the inventory/);
    await writeFile(inv, "hosts: [\n");
    expect((await cli(["status", "--inventory", inv])).stderr).toMatch(/not valid YAML/);
  });

  it("SIGTERM during a rollout: the host in flight finishes with its checks, no other host starts", async () => {
    const other = join(dir, "never");
    const child = execa("node", [BIN, "deploy", join(dir, "v2.yaml"), "--to", prefix, "--to", other, "--canary", "1"], { reject: false, timeout: 90_000 });
    let err = "";
    child.stderr!.on("data", (c: Buffer) => {
      err += c.toString();
      if (/canary: deploying/.test(err) && !child.killed) child.kill("SIGTERM");
    });
    const r = await child;
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/SIGTERM: finishing the hosts in flight/);
    expect(r.stdout).toMatch(new RegExp(`${prefix}\\s+deployed`));
    expect(r.stdout).toMatch(new RegExp(`${other}\\s+skipped`));
    expect(r.stderr).toMatch(/rollout interrupted before this host/);
    expect(await release()).toBe("two");
    await expect(readdir(other)).rejects.toThrow(/ENOENT/);
  });

  it("diff against the prefix compares with its current release", async () => {
    const same = await cli(["diff", join(dir, "v2.yaml"), prefix]);
    expect(same.stdout + same.stderr).toMatch(/no change/);
    expect(same.exitCode).toBe(0);
    const r = await cli(["diff", join(dir, "v1.yaml"), prefix, "--json"]);
    expect(r.exitCode).toBe(1);
    const d = JSON.parse(r.stdout);
    expect(d.changes.map((c: { path: string }) => c.path)).toEqual(["/features/headers/response/set/0/1"]);
    expect(d.changes[0]).toMatchObject({ before: "one", after: "two" });
  });

  it("an invalid policy fails with its diagnostics (exit 1), nothing shipped", async () => {
    const count = (await releases()).length;
    const r = await cli(["deploy", await writePolicy("bad.yaml", "name: Bad Name\n"), "--to", prefix]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/is invalid/);
    expect((await releases()).length).toBe(count);
  });
});

describe("secrets on the host", () => {
  let sprefix: string;
  let sport: number;
  afterAll(async () => {
    if (!sprefix) return;
    await stopPrefix(sprefix);
    expect(await badLogLines(sprefix)).toEqual([]);
  });

  it("come from --host-env-file when nginx starts, and never enter a release", async () => {
    sprefix = join(dir, "secret-edge");
    sport = await freePort();
    const secret = "s3cret-value-" + Date.now();
    const envFile = join(dir, "edge.env");
    await writeFile(envFile, `EDGE_SECRET=${secret}\n`, { mode: 0o600 });
    const file = await writePolicy(
      "secret.yaml",
      policyYaml({ port: sport, origin: origin.address, release: "s", name: "secret" }) +
        "originSecret: { header: X-Origin-Secret, secret: { env: EDGE_SECRET } }\n",
    );
    const r = await cli(["deploy", file, "--to", sprefix, "--start", "--host-env-file", envFile]);
    expect(r.exitCode, r.stderr).toBe(0);
    const ask = async (headers: Record<string, string>) => {
      const res = await request(`http://127.0.0.1:${sport}/page`, { headers: { connection: "close", ...headers } });
      await res.body.dump();
      return res.statusCode;
    };
    expect(await ask({})).toBe(403);
    expect(await ask({ "x-origin-secret": "wrong" })).toBe(403);
    expect(await ask({ "x-origin-secret": secret })).toBe(200);
    const grep = await execa("grep", ["-rl", secret, join(sprefix, "releases")], { reject: false });
    expect(grep.stdout).toBe("");
    expect(grep.exitCode).toBe(1); // no file of any release holds the value
  });
});
