/** `cdn-build init`: the scaffolded policies validate and build (booted by --verify); no silent overwrite. */
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { stripVTControlCharacters } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli } from "./support/deploy.js";
import { projectDir } from "./support/edge.js";

let dir: string;
beforeAll(async () => {
  dir = await projectDir("cdn-init-");
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("cdn-build init", () => {
  it("writes a TypeScript policy that validates and builds with --verify, and prints a README snippet", async () => {
    const r = await cli(["init", "app", "--name", "my-edge"], { cwd: dir });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/wrote app\/edge\.policy\.ts/);
    expect(r.stdout).toMatch(/^## Edge/);
    expect(r.stdout).toContain("npx cdn-build dev app/edge.policy.ts");
    const text = await readFile(join(dir, "app", "edge.policy.ts"), "utf8");
    expect(text).toContain(`import { definePolicy } from "cdn-build";`);
    expect(text).toContain(`name: "my-edge"`);
    expect((await cli(["validate", "app/edge.policy.ts"], { cwd: dir })).exitCode).toBe(0);
    const b = await cli(["build", "app/edge.policy.ts", "--out", "out/edge", "--verify"], { cwd: dir });
    expect(b.exitCode, b.stderr).toBe(0);
  });

  it("the TypeScript policy reads its origin from EDGE_ORIGIN at build time", async () => {
    const b = await cli(["build", "app/edge.policy.ts", "--out", "out/env", "--target", "nginx-lua"], { cwd: dir, env: { EDGE_ORIGIN: "10.9.8.7:8000" } });
    expect(b.exitCode, b.stderr).toBe(0);
    expect(await readFile(join(dir, "out", "env", "nginx.conf"), "utf8")).toMatch(/server 10\.9\.8\.7:8000 /);
  });

  it("writes the policy's first tests, which `cdn-build test` runs green against a booted bundle", async () => {
    expect(await readFile(join(dir, "app", "edge.edge.test.ts"), "utf8")).toContain(`from "cdn-build/testing"`);
    const t = await cli(["test", "app"], { cwd: dir });
    expect(t.exitCode, t.stdout + t.stderr).toBe(0);
    expect(stripVTControlCharacters(t.stdout)).toMatch(/Tests\s+4 passed \(4\)/);
  });

  it("writes a YAML policy that validates, with --origin", async () => {
    const r = await cli(["init", "y", "--format", "yaml", "--origin", "10.0.0.5:8000"], { cwd: dir });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await readFile(join(dir, "y", "edge.policy.yaml"), "utf8")).toContain(`address: "10.0.0.5:8000"`);
    const v = await cli(["validate", "y/edge.policy.yaml"], { cwd: dir });
    expect(v.exitCode, v.stderr).toBe(0);
    const t = await cli(["test", "y/edge.policy.yaml"], { cwd: dir });
    expect(t.exitCode, t.stdout + t.stderr).toBe(0);
  });

  it("never overwrites without --force", async () => {
    await writeFile(join(dir, "y", "edge.policy.yaml"), "# mine\n");
    const r = await cli(["init", "y", "--format", "yaml"], { cwd: dir });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/exists; pass --force/);
    expect(await readFile(join(dir, "y", "edge.policy.yaml"), "utf8")).toBe("# mine\n");

    expect((await cli(["init", "y", "--format", "yaml", "--force"], { cwd: dir })).exitCode).toBe(0);
    expect(await readFile(join(dir, "y", "edge.policy.yaml"), "utf8")).toMatch(/^# yaml-language-server/);
    // an existing test file alone also stops it, before the policy is written
    await writeFile(join(dir, "y", "edge.edge.test.ts"), "// my tests\n");
    await rm(join(dir, "y", "edge.policy.yaml"));
    expect((await cli(["init", "y", "--format", "yaml"], { cwd: dir })).exitCode).toBe(1);
    expect(await readFile(join(dir, "y", "edge.edge.test.ts"), "utf8")).toBe("// my tests\n");
    await expect(readFile(join(dir, "y", "edge.policy.yaml"), "utf8")).rejects.toThrow(/ENOENT/);
  });

  it("usage errors exit 2 and name the option", async () => {
    for (const [args, msg] of [
      [["init", "--name", "Bad Name"], /--name/],
      [["init", "--format", "toml"], /--format must be ts or yaml/],
      [["init", "--origin", "nohost"], /--origin must be host:port/],
      [["init", "a", "b"], /at most one folder/],
    ] as [string[], RegExp][]) {
      const r = await cli(args, { cwd: dir });
      expect(r.exitCode, args.join(" ")).toBe(2);
      expect(r.stderr).toMatch(msg);
    }
    expect((await cli(["init", "--help"])).stdout).toMatch(/^Usage: cdn-build init/);
  });
});
