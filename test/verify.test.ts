/** `cdn-build build --verify` (src/runtime/verify.ts): what it checks beyond `nginx -t`. */
import { readFile, rm, writeFile } from "node:fs/promises";
import { userInfo } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compile } from "../src/compile.js";
import { writeBundleTo } from "../src/emit/write.js";
import type { Policy } from "../src/policy/types.js";
import { allowed, smokeConf, verifyBundle, workerUserName } from "../src/runtime/verify.js";
import { nginxBinary, projectDir } from "./support/edge.js";

const nobody = { name: "nobody", uid: 65534, gids: [65534] };

describe("verify: helpers", () => {
  it("applies the owner / group / other rule", () => {
    expect(allowed({ mode: 0o40700, uid: 0, gid: 0 }, nobody, 1)).toBe(false);
    expect(allowed({ mode: 0o40711, uid: 0, gid: 0 }, nobody, 1)).toBe(true);
    expect(allowed({ mode: 0o100640, uid: 0, gid: 65534 }, nobody, 4)).toBe(true);
    expect(allowed({ mode: 0o100604, uid: 0, gid: 65534 }, nobody, 4)).toBe(false); // group bits decide for a member
    expect(allowed({ mode: 0o100400, uid: 65534, gid: 0 }, nobody, 4)).toBe(true);
    expect(allowed({ mode: 0o100000, uid: 1, gid: 1 }, { name: "root", uid: 0, gids: [0] }, 4)).toBe(true);
  });

  it("reads the workers' user from nginx.conf (nobody by default)", () => {
    expect(workerUserName("worker_processes auto;\n")).toEqual({ user: "nobody" });
    expect(workerUserName("load_module x;\nuser www-data;\n")).toEqual({ user: "www-data", group: undefined });
    expect(workerUserName("user edge edgegrp;\n")).toEqual({ user: "edge", group: "edgegrp" });
  });

  it("moves the first listen to the smoke port and drops the others", () => {
    const conf = "server {\n    listen 8080;\n    listen [::]:8080;\n    server_name _;\n}\n";
    expect(smokeConf(conf, 4242)).toBe("server {\n    listen 127.0.0.1:4242;\n    # (listen dropped for the verify smoke boot)\n    server_name _;\n}\n");
  });
});

describe("verify: on a staged bundle", () => {
  let project: string;
  beforeAll(async () => {
    project = await projectDir("cdn-verify-");
  });
  afterAll(async () => {
    await rm(project, { recursive: true, force: true });
  });

  async function stage(name: string, extra: Partial<Policy> = {}): Promise<string> {
    const bin = await nginxBinary();
    const { bundle, diagnostics } = compile(
      { name, listen: { http: 80 }, origins: { app: { servers: [{ address: "127.0.0.1:9" }] } }, health: {}, ...extra },
      { target: bin.kind },
    );
    if (!bundle) throw new Error(JSON.stringify(diagnostics));
    const dir = join(project, `.${name}.tmp-stage`);
    await writeBundleTo(bundle, dir);
    return dir;
  }

  it("passes a good bundle: nginx -t, access, smoke boot on another port than the policy's", async () => {
    const dir = await stage("good");
    const r = await verifyBundle(dir, { bin: await nginxBinary(), outDir: join(project, "good"), healthPath: "/health" });
    expect(r.problems).toEqual([]);
    expect(r.notes).toContain("smoke boot: GET /health -> 200");
  });

  it("fails a bundle whose Lua hook file is broken, with the error.log lines", async () => {
    // init.lua loads every hook file in the master: a broken one stops the boot itself
    const dir = await stage("broken", { headers: { response: { set: { "X-Edge": "1" } } } });
    await writeFile(join(dir, "lua", "headers.lua"), 'error("boom from a broken bundle")\n');
    const r = await verifyBundle(dir, { bin: await nginxBinary(), outDir: join(project, "broken"), healthPath: "/health" });
    expect(r.ok).toBe(false);
    expect(r.problems.join("\n")).toMatch(/did not boot|GET \/health answered 500|got no answer/);
    expect(r.problems.join("\n")).toMatch(/boom from a broken bundle/);
  });

  it("fails a bundle whose Lua breaks at request time, with the error.log lines", async () => {
    // a policy with response headers runs the header filter on every response
    const dir = await stage("broken-late", { headers: { response: { set: { "X-Edge": "1" } } } });
    const hook = join(dir, "lua", "features", "headers.lua");
    await writeFile(hook, (await readFile(hook, "utf8")).replace("local function header()", 'local function header()\n    error("boom at request time")'));
    const r = await verifyBundle(dir, { bin: await nginxBinary(), outDir: join(project, "broken-late"), healthPath: "/health" });
    expect(r.ok).toBe(false);
    expect(r.problems.join("\n")).toMatch(/GET \/health answered 500|got no answer/);
    expect(r.problems.join("\n")).toMatch(/boom at request time/);
  });

  it("as root, names a workers' user that does not exist", async () => {
    const dir = await stage("ghost", { workers: { user: "no-such-user-cdn" } });
    const r = await verifyBundle(dir, { bin: await nginxBinary(), outDir: join(project, "ghost"), boot: false });
    if (userInfo().uid === 0) {
      // nginx -t already refuses an unknown user when the master is root
      expect(r.ok).toBe(false);
      expect(r.problems.join("\n")).toMatch(/no-such-user-cdn/);
    } else {
      expect(r.ok).toBe(true);
    }
  });
});
