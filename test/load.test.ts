import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadPolicy } from "../src/load/index.js";

const dirs: string[] = [];

/** Write the files into a fresh temp dir and return its path. */
async function fixture(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "cdn-build-load-"));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), text);
  }
  return dir;
}

afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

/** 1-based line/col of the `nth` occurrence of `needle` in `text`. */
function posOf(text: string, needle: string, nth = 0): { line: number; col: number } {
  let at = -1;
  for (let i = 0; i <= nth; i++) {
    at = text.indexOf(needle, at + 1);
    if (at < 0) throw new Error(`fixture has no ${needle} #${nth}`);
  }
  const before = text.slice(0, at).split("\n");
  return { line: before.length, col: before[before.length - 1]!.length + 1 };
}

describe("YAML policies", () => {
  const yaml = [
    "name: shop",
    "origins:",
    "  app:",
    "    servers:",
    "      - address: 127.0.0.1:3000",
    "        weight: 2",
    "      - address: 127.0.0.1:3001",
    "        backup: true",
    "cache:",
    "  ttl:",
    "    200: 1h",
    '    "404": 30s',
    "",
  ].join("\n");

  it("loads the value, with numeric keys as strings", async () => {
    const dir = await fixture({ "policy.yaml": yaml });
    const { loaded, diagnostics } = await loadPolicy(path.join(dir, "policy.yaml"));
    expect(diagnostics).toEqual([]);
    expect(loaded?.format).toBe("yaml");
    expect(loaded?.file).toBe(path.join(dir, "policy.yaml"));
    expect(loaded?.value).toEqual({
      name: "shop",
      origins: {
        app: {
          servers: [
            { address: "127.0.0.1:3000", weight: 2 },
            { address: "127.0.0.1:3001", backup: true },
          ],
        },
      },
      cache: { ttl: { "200": "1h", "404": "30s" } },
    });
    const ttl = (loaded?.value as { cache: { ttl: Record<string, unknown> } }).cache.ttl;
    expect(Object.keys(ttl)).toEqual(["200", "404"]);
  });

  it("locates map keys, sequence items and the nearest ancestor", async () => {
    const dir = await fixture({ "policy.yml": yaml });
    const { loaded } = await loadPolicy(path.join(dir, "policy.yml"));
    const locate = loaded!.locate;
    expect(locate("")).toEqual({ line: 1, col: 1 });
    expect(locate("/origins/app")).toEqual({ line: 3, col: 3 });
    expect(locate("/origins/app/servers/0/weight")).toEqual({ line: 6, col: 9 });
    expect(locate("/origins/app/servers/1")).toEqual({ line: 7, col: 9 });
    expect(locate("/origins/app/servers/1/backup")).toEqual({ line: 8, col: 9 });
    expect(locate("/cache/ttl/200")).toEqual({ line: 11, col: 5 });
    expect(locate("/cache/ttl/404")).toEqual({ line: 12, col: 5 });
    // Missing nodes: the nearest existing ancestor.
    expect(locate("/cache/ttl/500")).toEqual({ line: 10, col: 3 });
    expect(locate("/origins/app/servers/9/address")).toEqual({ line: 4, col: 5 });
    expect(locate("/name/deeper")).toEqual({ line: 1, col: 1 });
    expect(locate("not-a-pointer")).toBeUndefined();
  });

  it("resolves aliases when locating", async () => {
    const text = "name: shop\nbase: &srv\n  address: 127.0.0.1:1\norigins:\n  app:\n    servers: [*srv]\n";
    const dir = await fixture({ "policy.yaml": text });
    const { loaded, diagnostics } = await loadPolicy(path.join(dir, "policy.yaml"));
    expect(diagnostics).toEqual([]);
    expect(loaded?.value).toMatchObject({ origins: { app: { servers: [{ address: "127.0.0.1:1" }] } } });
    expect(loaded?.locate("/origins/app/servers/0")).toEqual(posOf(text, "*srv"));
    expect(loaded?.locate("/origins/app/servers/0/address")).toEqual({ line: 3, col: 3 });
  });

  it("reports a syntax error with its position (CDN0001)", async () => {
    const dir = await fixture({ "policy.yaml": "name: shop\norigins:\n  app: 1\n bad: 2\n" });
    const { loaded, diagnostics } = await loadPolicy(path.join(dir, "policy.yaml"));
    expect(loaded).toBeUndefined();
    expect(diagnostics).toHaveLength(1);
    expect(diagnostics[0]).toMatchObject({
      code: "CDN0001",
      severity: "error",
      path: "",
      file: path.join(dir, "policy.yaml"),
      line: 4,
      col: 1,
    });
  });

  it("reports the position inside a line", async () => {
    const text = "name: shop\norigins:\n  app: @oops\n";
    const dir = await fixture({ "policy.yaml": text });
    const { diagnostics } = await loadPolicy(path.join(dir, "policy.yaml"));
    expect(diagnostics.map((d) => [d.code, d.line, d.col])).toEqual([["CDN0001", ...Object.values(posOf(text, "@oops"))]]);
  });

  it("reports duplicate keys (CDN0001)", async () => {
    const dir = await fixture({ "policy.yaml": "name: a\norigins: {}\nname: b\n" });
    const { loaded, diagnostics } = await loadPolicy(path.join(dir, "policy.yaml"));
    expect(loaded).toBeUndefined();
    expect(diagnostics).toHaveLength(1);
    expect(diagnostics[0]).toMatchObject({ code: "CDN0001", path: "/name", line: 3, col: 1 });
    expect(diagnostics[0]!.message).toMatch(/unique/);
    expect(diagnostics[0]!.message).toContain('"name"');
  });

  it("reports every error of the document", async () => {
    const text = "name: a\nname: b\norigins:\n  app:\n    servers:\n      - address: x\n        address: y\n";
    const dir = await fixture({ "policy.yaml": text });
    const { diagnostics } = await loadPolicy(path.join(dir, "policy.yaml"));
    expect(diagnostics.map((d) => [d.code, d.path, d.line, d.col])).toEqual([
      ["CDN0001", "/name", 2, 1],
      ["CDN0001", "/origins/app/servers/0/address", 7, 9],
    ]);
  });

  it("returns parser warnings with the loaded policy", async () => {
    const dir = await fixture({ "policy.yaml": "name: !custom shop\norigins: {}\n" });
    const { loaded, diagnostics } = await loadPolicy(path.join(dir, "policy.yaml"));
    expect(loaded?.value).toEqual({ name: "shop", origins: {} });
    expect(diagnostics).toMatchObject([{ code: "CDN0006", severity: "warning", line: 1, col: 7 }]);
  });

  it("rejects a document that is not a mapping (CDN0004)", async () => {
    const dir = await fixture({ "list.yaml": "- a\n- b\n", "empty.yaml": "" });
    const list = await loadPolicy(path.join(dir, "list.yaml"));
    expect(list.loaded).toBeUndefined();
    expect(list.diagnostics).toMatchObject([{ code: "CDN0004", line: 1, col: 1 }]);
    const empty = await loadPolicy(path.join(dir, "empty.yaml"));
    expect(empty.loaded).toBeUndefined();
    expect(empty.diagnostics.map((d) => d.code)).toEqual(["CDN0004"]);
  });
});

describe("JSON policies", () => {
  const policy = { name: "shop", origins: { app: { servers: [{ address: "127.0.0.1:3000" }] } }, cache: { ttl: { "200": "1h" } } };

  it("loads and locates", async () => {
    const text = JSON.stringify(policy, null, 2);
    const dir = await fixture({ "policy.json": text });
    const { loaded, diagnostics } = await loadPolicy(path.join(dir, "policy.json"));
    expect(diagnostics).toEqual([]);
    expect(loaded?.format).toBe("json");
    expect(loaded?.value).toEqual(policy);
    // "address" is on line 7, indented by 10 spaces.
    expect(loaded?.locate("/origins/app/servers/0/address")).toEqual({ line: 7, col: 11 });
    expect(loaded?.locate("/origins/app/servers/0")).toEqual(posOf(text, "{", 3));
    expect(loaded?.locate("/cache/ttl/200")).toEqual(posOf(text, '"200"'));
    expect(loaded?.locate("/cache/ttl/404")).toEqual(posOf(text, '"ttl"'));
  });

  it("accepts tab-indented JSON", async () => {
    const dir = await fixture({ "policy.json": JSON.stringify(policy, null, "\t") });
    const { loaded, diagnostics } = await loadPolicy(path.join(dir, "policy.json"));
    expect(diagnostics).toEqual([]);
    expect(loaded?.value).toEqual(policy);
  });

  it("reports a syntax error with its position (CDN0001)", async () => {
    const text = '{"name": "x",\n  "origins": {"a": 1]\n}\n';
    const dir = await fixture({ "policy.json": text });
    const { loaded, diagnostics } = await loadPolicy(path.join(dir, "policy.json"));
    expect(loaded).toBeUndefined();
    expect(diagnostics.length).toBeGreaterThan(0);
    expect(diagnostics.every((d) => d.code === "CDN0001" && d.file === path.join(dir, "policy.json"))).toBe(true);
    expect(diagnostics[0]).toMatchObject({ line: 2, col: 21 });
  });
});

describe("TypeScript policies", () => {
  const policyTs = [
    'import { definePolicy } from "cdn-build";',
    "",
    "export default definePolicy({",
    '  name: "shop",',
    "  origins: {",
    "    app: {",
    "      servers: [",
    '        { address: "127.0.0.1:3000", weight: 3 },',
    '        { address: "127.0.0.1:3001", backup: true },',
    "      ],",
    "    },",
    "  },",
    '  cache: { ttl: { 200: "1h" } },',
    "});",
    "",
  ].join("\n");

  it("type-checks and evaluates a policy importing definePolicy from cdn-build", async () => {
    const dir = await fixture({ "policy.ts": policyTs });
    const { loaded, diagnostics } = await loadPolicy(path.join(dir, "policy.ts"));
    expect(diagnostics).toEqual([]);
    expect(loaded?.format).toBe("ts");
    expect(loaded?.file).toBe(path.join(dir, "policy.ts"));
    expect(loaded?.value).toEqual({
      name: "shop",
      origins: {
        app: {
          servers: [
            { address: "127.0.0.1:3000", weight: 3 },
            { address: "127.0.0.1:3001", backup: true },
          ],
        },
      },
      cache: { ttl: { "200": "1h" } },
    });
  });

  it("locates nested properties of the default export", async () => {
    const dir = await fixture({ "policy.ts": policyTs });
    const { loaded } = await loadPolicy(path.join(dir, "policy.ts"));
    const locate = loaded!.locate;
    expect(locate("/origins/app/servers/1/backup")).toEqual({ line: 9, col: 38 });
    expect(locate("/origins/app/servers/1")).toEqual({ line: 9, col: 9 });
    expect(locate("/origins/app")).toEqual({ line: 6, col: 5 });
    expect(locate("/cache/ttl/200")).toEqual({ line: 13, col: 19 });
    expect(locate("/origins/app/servers/7/address")).toEqual({ line: 7, col: 7 });
    expect(locate("")).toEqual({ line: 3, col: 29 });
  });

  it("locates through `satisfies Policy` and a const exported as default", async () => {
    const text = [
      'import type { Policy } from "cdn-build";',
      "",
      "const servers = [{ address: '127.0.0.1:3000' }];",
      "const policy = {",
      '  name: "shop",',
      "  origins: { app: { servers } },",
      "} satisfies Policy;",
      "",
      "export default policy;",
      "",
    ].join("\n");
    const dir = await fixture({ "policy.ts": text });
    const { loaded, diagnostics } = await loadPolicy(path.join(dir, "policy.ts"));
    expect(diagnostics).toEqual([]);
    expect(loaded?.value).toEqual({ name: "shop", origins: { app: { servers: [{ address: "127.0.0.1:3000" }] } } });
    expect(loaded?.locate("/name")).toEqual(posOf(text, "name:"));
    expect(loaded?.locate("/origins/app/servers")).toEqual(posOf(text, "servers }"));
    expect(loaded?.locate("/origins/app/servers/0/address")).toEqual(posOf(text, "address"));
  });

  it("reports type errors (CDN0002) and does not evaluate the module", async () => {
    const dir = await fixture({});
    const marker = path.join(dir, "evaluated.marker");
    const source = (weight: string) =>
      [
        'import { definePolicy } from "cdn-build";',
        'const fs: any = await import("node:" + "fs");',
        `fs.writeFileSync(${JSON.stringify(marker)}, "evaluated");`,
        "export default definePolicy({",
        '  name: "shop",',
        `  origins: { app: { servers: [{ address: "127.0.0.1:3000", weight: ${weight} }] } },`,
        "});",
        "",
      ].join("\n");
    const bad = source('"three"');
    await writeFile(path.join(dir, "bad.ts"), bad);
    const { loaded, diagnostics } = await loadPolicy(path.join(dir, "bad.ts"));
    expect(loaded).toBeUndefined();
    expect(diagnostics).toHaveLength(1);
    expect(diagnostics[0]).toMatchObject({
      code: "CDN0002",
      severity: "error",
      path: "",
      file: path.join(dir, "bad.ts"),
      ...posOf(bad, "weight"),
    });
    expect(diagnostics[0]!.message).toMatch(/not assignable to type 'number'/);
    expect(existsSync(marker)).toBe(false);

    // The same module without the error is evaluated (so the marker really proves it).
    await writeFile(path.join(dir, "good.ts"), source("3"));
    const good = await loadPolicy(path.join(dir, "good.ts"));
    expect(good.diagnostics).toEqual([]);
    expect(existsSync(marker)).toBe(true);
  });

  it("reports every type error with its position", async () => {
    const text = [
      'import type { Policy } from "cdn-build";',
      "const policy: Policy = {",
      "  name: 42,",
      "  origins: {},",
      "};",
      'const port: number = "80";',
      "export default { ...policy, port };",
      "",
    ].join("\n");
    const dir = await fixture({ "policy.mts": text });
    const { loaded, diagnostics } = await loadPolicy(path.join(dir, "policy.mts"));
    expect(loaded).toBeUndefined();
    expect(diagnostics.map((d) => [d.code, d.line, d.col])).toEqual([
      ["CDN0002", ...Object.values(posOf(text, "name"))],
      ["CDN0002", ...Object.values(posOf(text, "port:"))],
    ]);
  });

  it("reports TypeScript syntax errors (CDN0002)", async () => {
    const text = 'export default {\n  name: "shop",\n  origins: { app: { servers: [ } },\n};\n';
    const dir = await fixture({ "policy.ts": text });
    const { loaded, diagnostics } = await loadPolicy(path.join(dir, "policy.ts"));
    expect(loaded).toBeUndefined();
    expect(diagnostics.length).toBeGreaterThan(0);
    expect(diagnostics[0]).toMatchObject({ code: "CDN0002", line: 3 });
  });

  it("reports a module that throws (CDN0003) with the throw site", async () => {
    const text = [
      'import type { Policy } from "cdn-build";',
      "function build(): Policy {",
      '  throw new Error("no origins configured");',
      "}",
      "export default build();",
      "",
    ].join("\n");
    const dir = await fixture({ "policy.ts": text });
    const { loaded, diagnostics } = await loadPolicy(path.join(dir, "policy.ts"));
    expect(loaded).toBeUndefined();
    expect(diagnostics).toHaveLength(1);
    expect(diagnostics[0]).toMatchObject({ code: "CDN0003", file: path.join(dir, "policy.ts"), line: 3 });
    expect(diagnostics[0]!.message).toContain("no origins configured");
  });

  it("reports a module without default export (CDN0004)", async () => {
    const dir = await fixture({ "policy.ts": 'export const policy = { name: "shop", origins: {} };\n' });
    const { loaded, diagnostics } = await loadPolicy(path.join(dir, "policy.ts"));
    expect(loaded).toBeUndefined();
    expect(diagnostics).toMatchObject([{ code: "CDN0004", file: path.join(dir, "policy.ts") }]);
  });

  it("reports a default export that is not an object (CDN0004)", async () => {
    const dir = await fixture({ "policy.ts": "const n = 1;\nexport default [n];\n" });
    const { loaded, diagnostics } = await loadPolicy(path.join(dir, "policy.ts"));
    expect(loaded).toBeUndefined();
    expect(diagnostics).toMatchObject([{ code: "CDN0004", line: 2, col: 16 }]);
    expect(diagnostics[0]!.message).toContain("array");
  });

  it("follows relative imports of the user's own files", async () => {
    const dir = await fixture({
      "lib/servers.ts": [
        'import type { OriginServer } from "cdn-build";',
        "export function server(port: number): OriginServer {",
        "  return { address: `127.0.0.1:${port}` };",
        "}",
        "",
      ].join("\n"),
      "lib/name.ts": 'export const NAME = "shop";\n',
      "policy.ts": [
        'import { definePolicy } from "cdn-build";',
        'import { server } from "./lib/servers.js";',
        'import { NAME } from "./lib/name";',
        "",
        "export default definePolicy({",
        "  name: NAME,",
        "  origins: { app: { servers: [server(3000), server(3001)] } },",
        "});",
        "",
      ].join("\n"),
    });
    const { loaded, diagnostics } = await loadPolicy(path.join(dir, "policy.ts"));
    expect(diagnostics).toEqual([]);
    expect(loaded?.value).toEqual({
      name: "shop",
      origins: { app: { servers: [{ address: "127.0.0.1:3000" }, { address: "127.0.0.1:3001" }] } },
    });
    // The element is a call, not a literal: located at the element.
    expect(loaded?.locate("/origins/app/servers/0/address")).toEqual({ line: 7, col: 31 });
    expect(loaded?.locate("/origins/app/servers/1")).toEqual({ line: 7, col: 45 });
  });

  it("reports type errors and throws in imported helpers at their own file", async () => {
    const helper = "export const port: number = 'eighty';\n";
    const dir = await fixture({
      "helper.ts": helper,
      "policy.ts": 'import { port } from "./helper.js";\nexport default { name: "x", port };\n',
      "thrower.ts": 'export const x = 1;\nthrow new TypeError("bad helper");\n',
      "policy2.ts": 'import { x } from "./thrower.js";\nexport default { name: "x", x };\n',
    });
    const typed = await loadPolicy(path.join(dir, "policy.ts"));
    expect(typed.diagnostics).toMatchObject([{ code: "CDN0002", file: path.join(dir, "helper.ts"), line: 1, col: 14 }]);
    const thrown = await loadPolicy(path.join(dir, "policy2.ts"));
    expect(thrown.diagnostics).toMatchObject([{ code: "CDN0003", file: path.join(dir, "thrower.ts"), line: 2 }]);
    expect(thrown.diagnostics[0]!.message).toContain("TypeError: bad helper");
  });
});

describe("file problems (CDN0005)", () => {
  it("reports a missing file", async () => {
    const dir = await fixture({});
    const { loaded, diagnostics } = await loadPolicy(path.join(dir, "nope.yaml"));
    expect(loaded).toBeUndefined();
    expect(diagnostics).toMatchObject([{ code: "CDN0005", severity: "error", file: path.join(dir, "nope.yaml") }]);
    expect((await loadPolicy(path.join(dir, "nope.ts"))).diagnostics).toMatchObject([{ code: "CDN0005" }]);
  });

  it("reports an unknown extension, even for an existing file", async () => {
    const dir = await fixture({ "policy.toml": 'name = "shop"\n' });
    const { loaded, diagnostics } = await loadPolicy(path.join(dir, "policy.toml"));
    expect(loaded).toBeUndefined();
    expect(diagnostics).toMatchObject([{ code: "CDN0005" }]);
    expect(diagnostics[0]!.message).toContain(".toml");
  });

  it("reports a directory", async () => {
    const dir = await fixture({ "policy.yaml/keep": "" });
    const { diagnostics } = await loadPolicy(path.join(dir, "policy.yaml"));
    expect(diagnostics).toMatchObject([{ code: "CDN0005" }]);
  });

  it("resolves relative paths to absolute ones", async () => {
    const dir = await fixture({ "p.json": '{"name": "x", "origins": {}}' });
    const rel = path.relative(process.cwd(), path.join(dir, "p.json"));
    const { loaded } = await loadPolicy(rel);
    expect(loaded?.file).toBe(path.join(dir, "p.json"));
  });
});
