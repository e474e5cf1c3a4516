/** `cdn-build diff`: policies and bundles, changes by area with their paths, risk notes, exit codes. */
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli } from "./support/deploy.js";
import { projectDir } from "./support/edge.js";

const FIX = join(import.meta.dirname, "fixtures", "diff");
const before = join(FIX, "before.yaml");
const after = join(FIX, "after.yaml");
let dir: string;

beforeAll(async () => {
  dir = await projectDir("cdn-diff-");
  for (const [src, out] of [
    [before, "b1"],
    [after, "b2"],
  ]) {
    const r = await cli(["build", src!, "--out", join(dir, out!), "--target", "openresty"]);
    expect(r.exitCode, r.stderr).toBe(0);
  }
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Json {
  compared: string;
  changes: { area: string; path: string; kind: string; before?: unknown; after?: unknown }[];
  risks: { zone: string; before?: string; after?: string; note: string }[];
  filesChanged: string[];
}

describe("cdn-build diff", () => {
  it("two identical policies: no change, exit 0", async () => {
    const r = await cli(["diff", before, before]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/no change$/);
  });

  it("two policies: every change with its area and policy path, rules matched by name, a risk for the RAM tier", async () => {
    const r = await cli(["diff", before, after, "--json"]);
    expect(r.exitCode).toBe(1);
    const d = JSON.parse(r.stdout) as Json;
    expect(d.compared).toBe("policy");
    const brief = d.changes.map((c) => `${c.area} ${c.kind} ${c.path}`);
    expect(brief).toEqual([
      "cache changed /cache/ram/size",
      "origins changed /origins/app/servers/0/address",
      "gates changed /rateLimit/0/burst",
      "rules removed /rules/1 (api)",
      "rules changed /rules/0/then/cache/ttl",
      "rules added /rules/1 (admin)",
    ]);
    expect(d.changes[1]).toMatchObject({ before: "127.0.0.1:3000", after: "127.0.0.1:4000" });
    expect(d.risks).toEqual([expect.objectContaining({ zone: "lua_shared_dict cdn_ram", before: "64m", after: "128m" })]);
    expect(d.risks[0]!.note).toMatch(/RAM tier is emptied/);
    const text = await cli(["diff", before, after]);
    expect(text.exitCode).toBe(1);
    expect(text.stdout).toContain(`origins:\n  ~ /origins/app/servers/0/address: "127.0.0.1:3000" -> "127.0.0.1:4000"`);
    expect(text.stdout).toContain(`  + /rules/1 (admin): {"name":"admin"`);
    expect(text.stdout).toMatch(/^risk: lua_shared_dict cdn_ram: size 64m -> 128m: nginx creates the zone anew on reload/m);
    expect(text.stdout).toMatch(/6 changes, 1 dropping state on reload$/);
  });

  it("a keys zone size change warns that the disk cache's keys and the cache metadata are recreated", async () => {
    const r = await cli(["diff", before, join(FIX, "keys-zone.yaml"), "--json"]);
    expect(r.exitCode).toBe(1);
    const d = JSON.parse(r.stdout) as Json;
    expect(d.changes.map((c) => c.path)).toEqual(["/cache/disk/keysZone"]);
    const zones = d.risks.map((x) => x.zone);
    expect(zones).toContain("keys_zone cdn_disk");
    expect(d.risks.find((x) => x.zone === "keys_zone cdn_disk")!.note).toMatch(/cache loader/);
  });

  it("two bundles: upstreams, the runtime's policy data, the risk, and the files that differ", async () => {
    const r = await cli(["diff", join(dir, "b1"), join(dir, "b2"), "--json"]);
    expect(r.exitCode).toBe(1);
    const d = JSON.parse(r.stdout) as Json;
    expect(d.compared).toBe("bundle");
    const paths = d.changes.map((c) => c.path);
    expect(paths).toContain("/upstreams/origin_app/0");
    expect(paths).toContain("/features/rules/rules/1 (api)");
    expect(paths).toContain("/features/rules/rules/1 (admin)");
    expect(d.changes.find((c) => c.path === "/upstreams/origin_app/0")!.area).toBe("origins");
    expect(d.risks.map((x) => x.zone)).toEqual(["lua_shared_dict cdn_ram"]);
    expect(d.filesChanged).toEqual(["lua/policy_data.lua", "nginx.conf"]);
  });

  it("a policy against the bundle built from it: no change", async () => {
    const r = await cli(["diff", before, join(dir, "b1")]);
    expect(r.stdout + r.stderr).toMatch(/no change/);
    expect(r.exitCode).toBe(0);
  });

  it("errors exit 2 and say what is wrong: missing input, invalid policy, a bundle edited after its build, usage", async () => {
    const missing = await cli(["diff", before, join(dir, "nope.yaml")]);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toMatch(/cannot read .*nope\.yaml/);
    await writeFile(join(dir, "bad.yaml"), "name: diffed\norigins: 3\n");
    const bad = await cli(["diff", before, join(dir, "bad.yaml")]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/is invalid:\n.*error CDN\d+ \/origins/);
    const conf = join(dir, "b2", "nginx.conf");
    await writeFile(conf, (await readFile(conf, "utf8")) + "# edited\n");
    const edited = await cli(["diff", join(dir, "b1"), join(dir, "b2")]);
    expect(edited.exitCode).toBe(2);
    expect(edited.stderr).toMatch(/nginx\.conf: sha256 differs from the manifest/);
    expect((await cli(["diff", before])).exitCode).toBe(2);
    expect((await cli(["diff", before, after, "--target", "iis"])).stderr).toMatch(/unknown target "iis"/);
    const help = await cli(["diff", "--help"]);
    expect(help.exitCode).toBe(0);
    expect(help.stdout).toMatch(/^Usage: cdn-build diff/);
  });
});
