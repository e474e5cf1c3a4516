import { execa } from "execa";
import { readFile, readdir, rm, writeFile, mkdir } from "node:fs/promises";
import { userInfo } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findNginx } from "../src/runtime/nginx.js";
import { autoTarget } from "../src/runtime/target.js";
import { projectDir } from "./support/edge.js";

const BIN = join(import.meta.dirname, "..", "bin", "cdn-build.js");
let dir: string;

function cli(...args: string[]) {
  return execa("node", [BIN, ...args], { reject: false, cwd: dir });
}

function cliWithEnv(env: Record<string, string>, ...args: string[]) {
  return execa("node", [BIN, ...args], { reject: false, cwd: dir, env });
}

const GOOD_YAML = `name: good
origins:
  app:
    servers:
      - address: 127.0.0.1:3000
cache:
  ttl:
    "200": 1h
`;

beforeAll(async () => {
  dir = await projectDir("cdn-cli-"); // a user's project folder (0755), not mkdtemp's 0700
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("cdn-build CLI", () => {
  it("prints help for every command and exits 0", async () => {
    for (const args of [["--help"], ["build", "--help"], ["validate", "--help"]]) {
      const r = await cli(...args);
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toMatch(/Usage/);
    }
  });

  it("exits 2 on usage errors", async () => {
    expect((await cli()).exitCode).toBe(2);
    expect((await cli("frobnicate")).exitCode).toBe(2);
    expect((await cli("build", "x.yaml")).exitCode).toBe(2);
    expect((await cli("build", "x.yaml", "--out", "o", "--target", "apache")).exitCode).toBe(2);
    expect((await cli("build", "x.yaml", "--out", "o", "--bogus")).exitCode).toBe(2);
  });

  it("validates a good policy with exit 0 and builds it", async () => {
    await writeFile(join(dir, "good.yaml"), GOOD_YAML);
    expect((await cli("validate", "good.yaml")).exitCode).toBe(0);
    const r = await cli("build", "good.yaml", "--out", "out/good", "--target", "openresty");
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/^target /m); // an explicit target is not second-guessed
    const files = await readdir(join(dir, "out/good"));
    expect(files).toEqual(expect.arrayContaining(["nginx.conf", "lua", "manifest.json", "logs", "cache", "temp"]));
    const lua = await readdir(join(dir, "out/good/lua"));
    expect(lua).toEqual(expect.arrayContaining(["access.lua", "headers.lua", "log.lua", "purge.lua", "policy_data.lua"]));
    const manifest = JSON.parse(await readFile(join(dir, "out/good/manifest.json"), "utf8"));
    expect(manifest).toMatchObject({ generatedBy: "cdn-build", policy: "good", target: "openresty" });
    expect(manifest.files["nginx.conf"].sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it("reports YAML problems with line:col, exits 1 and leaves the previous bundle untouched", async () => {
    await writeFile(join(dir, "good.yaml"), GOOD_YAML);
    expect((await cli("build", "good.yaml", "--out", "out/keep")).exitCode).toBe(0);
    const before = await readFile(join(dir, "out/keep/nginx.conf"), "utf8");
    const bad = GOOD_YAML.replace("127.0.0.1:3000", "127.0.0.1:3000\n        weight: heavy").replace('"200": 1h', '"200": 1 hour');
    await writeFile(join(dir, "bad.yaml"), bad);
    const r = await cli("build", "bad.yaml", "--out", "out/keep");
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/bad\.yaml:6:9 error CDN1003 \/origins\/app\/servers\/0\/weight/);
    expect(r.stderr).toMatch(/bad\.yaml:9:5 error CDN1004 \/cache\/ttl\/200/);
    expect(await readFile(join(dir, "out/keep/nginx.conf"), "utf8")).toBe(before);
    expect((await readdir(join(dir, "out"))).filter((f) => f.includes("tmp"))).toEqual([]);
  });

  it("writes nothing for an invalid policy", async () => {
    await writeFile(join(dir, "empty-bypass.yaml"), GOOD_YAML + "  bypass:\n    cookies: []\n");
    const r = await cli("build", "empty-bypass.yaml", "--out", "out/never");
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/CDN2008 \/cache\/bypass\/cookies/);
    await expect(readdir(join(dir, "out/never"))).rejects.toThrow();
  });

  it("reports TypeScript type errors with file:line:col before evaluating", async () => {
    await mkdir(join(dir, "ts"), { recursive: true });
    await writeFile(
      join(dir, "ts/edge.policy.ts"),
      `import { definePolicy } from "cdn-build";\nexport default definePolicy({\n  name: "t",\n  origins: { app: { servers: [{ address: "127.0.0.1:1", weight: "3" }] } },\n});\n`,
    );
    const r = await cli("validate", "ts/edge.policy.ts");
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/edge\.policy\.ts:4:\d+ error CDN0002/);
  });

  it("prints diagnostics as JSON with --json", async () => {
    await writeFile(join(dir, "two.json"), JSON.stringify({ name: "Bad Name", origins: {} }, null, 2));
    const r = await cli("validate", "two.json", "--json");
    expect(r.exitCode).toBe(1);
    const out = JSON.parse(r.stdout);
    expect(out.diagnostics[0]).toMatchObject({ code: "CDN1004", path: "/name", line: 2 });
  });

  it("refuses to install a bundle that fails --verify, keeping the previous one", async () => {
    await writeFile(join(dir, "good.yaml"), GOOD_YAML);
    expect((await cli("build", "good.yaml", "--out", "out/v", "--target", "nginx-lua", "--verify")).exitCode).toBe(0);
    const before = await readFile(join(dir, "out/v/nginx.conf"), "utf8");
    // a host name nginx cannot resolve passes validation but fails nginx -t
    await writeFile(join(dir, "unresolvable.yaml"), GOOD_YAML.replace("127.0.0.1:3000", "no-such-host.invalid:3000"));
    const r = await cli("build", "unresolvable.yaml", "--out", "out/v", "--target", "nginx-lua", "--verify");
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/nginx -t failed/);
    expect(await readFile(join(dir, "out/v/nginx.conf"), "utf8")).toBe(before);
  });

  it("refuses to replace a folder that is not a bundle", async () => {
    await writeFile(join(dir, "good.yaml"), GOOD_YAML);
    await mkdir(join(dir, "precious"), { recursive: true });
    await writeFile(join(dir, "precious", "notes.txt"), "keep me");
    const r = await cli("build", "good.yaml", "--out", "precious");
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/not a cdn-build bundle/);
    expect(await readFile(join(dir, "precious", "notes.txt"), "utf8")).toBe("keep me");
  });

  it("picks the target with --target auto (the default) from the runtime found, and says why", async () => {
    await writeFile(join(dir, "good.yaml"), GOOD_YAML);
    const found = await findNginx();
    const expected = autoTarget(found).target;
    for (const args of [[], ["--target", "auto"]]) {
      const r = await cli("build", "good.yaml", "--out", "out/auto", ...args);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stderr.split("\n").filter((l) => l.startsWith("target "))).toEqual([expect.stringMatching(new RegExp(`^target ${expected}: found `))]);
      expect(JSON.parse(await readFile(join(dir, "out/auto/manifest.json"), "utf8")).target).toBe(expected);
    }
    // no runtime on the machine: openresty, the production default
    const none = await cliWithEnv({ CDN_BUILD_NGINX: "/nonexistent/nginx" }, "build", "good.yaml", "--out", "out/auto-none");
    expect(none.exitCode, none.stderr).toBe(0);
    expect(none.stderr).toMatch(/^target openresty: no OpenResty or nginx with the Lua module on this machine/m);
    expect(JSON.parse(await readFile(join(dir, "out/auto-none/manifest.json"), "utf8")).target).toBe("openresty");
    // an explicit target wins
    const explicit = await cli("build", "good.yaml", "--out", "out/auto", "--target", "openresty");
    expect(explicit.exitCode).toBe(0);
    expect(JSON.parse(await readFile(join(dir, "out/auto/manifest.json"), "utf8")).target).toBe("openresty");
  });

  it("autoTarget: openresty binary -> openresty, Debian nginx + Lua module -> nginx-lua, nothing -> openresty", () => {
    expect(autoTarget({ path: "/usr/local/openresty/bin/openresty", kind: "openresty", version: "openresty/1.25.3.1" }).target).toBe("openresty");
    expect(autoTarget({ path: "/usr/sbin/nginx", kind: "nginx-lua", version: "nginx/1.22.1" }).target).toBe("nginx-lua");
    expect(autoTarget(undefined).target).toBe("openresty");
  });

  it("--verify checks nginx -t, worker access and a smoke boot of the health endpoint", async () => {
    await writeFile(join(dir, "health.yaml"), GOOD_YAML + "health: {}\n");
    const r = await cli("build", "health.yaml", "--out", "out/verified", "--verify");
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^nginx -t: ok/m);
    expect(r.stderr).toMatch(/^smoke boot: GET \/health -> 200$/m);
    if (userInfo().uid === 0) expect(r.stderr).toMatch(/^workers \(nobody\) can read the bundle/m);
  });

  it("--verify refuses a bundle the workers cannot reach (as root: workers are nobody), naming the folder", async () => {
    await writeFile(join(dir, "health.yaml"), GOOD_YAML + "health: {}\n");
    const locked = join(dir, "locked");
    await mkdir(locked, { mode: 0o700 });
    const r = await cli("build", "health.yaml", "--out", "locked/edge", "--verify");
    if (userInfo().uid === 0) {
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toContain(`${locked} is 0700 (owner root): workers running as nobody cannot traverse it`);
      expect(r.stderr).toMatch(/the previous bundle in locked\/edge is untouched/);
      expect(await readdir(locked)).toEqual([]);
    } else {
      // a non-root master runs its workers as the same user, who owns the folder
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/^not root: .*worker access was not checked/m);
    }
  });

  it("rebuilds byte-identical output", async () => {
    await writeFile(join(dir, "good.yaml"), GOOD_YAML);
    await cli("build", "good.yaml", "--out", "out/d1");
    await cli("build", "good.yaml", "--out", "out/d2");
    for (const f of ["nginx.conf", "manifest.json", "lua/policy_data.lua", "lua/access.lua"]) {
      expect(await readFile(join(dir, "out/d1", f), "utf8")).toBe(await readFile(join(dir, "out/d2", f), "utf8"));
    }
  });
});
