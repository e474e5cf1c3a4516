/**
 * The fast paths of the loader, for policies of thousands of rules: a JSON policy read by JSON.parse, a
 * TypeScript policy that is pure data read from its syntax tree. Each gives exactly what the slow path gives,
 * and steps aside whenever it could differ.
 */
import { execa } from "execa";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import ts from "typescript";
import { createJiti } from "jiti";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadPolicy } from "../src/load/index.js";
import { staticPolicy } from "../src/load/static-policy.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "cdn-load-fast-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function load(name: string, text: string) {
  await writeFile(path.join(dir, name), text);
  return loadPolicy(path.join(dir, name));
}

describe("JSON policies", () => {
  it("still report a repeated key, also when written with escapes (CDN0001)", async () => {
    for (const text of ['{"name": "a", "origins": {}, "name": "b"}', '{"name": "a", "origins": {"x": 1, "\\u0078": 2}}']) {
      const { loaded, diagnostics } = await load("dup.json", text);
      expect(loaded).toBeUndefined();
      expect(diagnostics.map((d) => d.code)).toEqual(["CDN0001"]);
    }
  });

  it("read keys that only look alike, and strings holding quotes and brackets, as they are", async () => {
    const value = { name: "a", origins: { "x\"y": { servers: [] }, "x}": {}, "[x": [{ "x\"y": "\\\"{[" }] } };
    const text = JSON.stringify(value);
    const { loaded, diagnostics } = await load("ok.json", text);
    expect(diagnostics).toEqual([]);
    expect(loaded?.value).toEqual(value);
    expect(loaded?.locate("/origins/x}")).toEqual({ line: 1, col: text.indexOf('"x}"') + 1 });
  });

  it("are not objects: the same message as before", async () => {
    const { diagnostics } = await load("list.json", "[1, 2]");
    expect(diagnostics.map((d) => d.code)).toEqual(["CDN0004"]);
  });
});

describe("what a load pulls in", () => {
  it("YAML and JSON: neither the TypeScript compiler nor the evaluator; pure-data TypeScript: the compiler only", async () => {
    const probe = path.join(dir, "probe.mts");
    await writeFile(
      probe,
      [
        'import { createRequire } from "node:module";',
        `const { loadPolicy } = await import(${JSON.stringify(path.join(import.meta.dirname, "..", "src", "load", "index.ts"))});`,
        "const r = await loadPolicy(process.argv[2]!);",
        "const cache = Object.keys(createRequire(import.meta.url)(\"node:module\")._cache);",
        "const has = (m: string) => cache.some((k) => k.includes(`/node_modules/${m}/`));",
        'console.log(JSON.stringify({ errors: r.diagnostics.length, typescript: has("typescript"), jiti: has("jiti") }));',
      ].join("\n"),
    );
    const policy = { name: "a", origins: { app: { servers: [{ address: "127.0.0.1:3000" }] } } };
    await writeFile(path.join(dir, "p.yaml"), `name: a\norigins:\n  app:\n    servers:\n      - address: "127.0.0.1:3000"\n`);
    await writeFile(path.join(dir, "p.json"), JSON.stringify(policy));
    await writeFile(path.join(dir, "p.ts"), `import { definePolicy } from "cdn-build";\nexport default definePolicy(${JSON.stringify(policy)});\n`);
    const tsx = path.join(import.meta.dirname, "..", "node_modules", ".bin", "tsx");
    const run = async (f: string) => JSON.parse((await execa(tsx, [probe, path.join(dir, f)])).stdout);
    expect(await run("p.yaml")).toEqual({ errors: 0, typescript: false, jiti: false });
    expect(await run("p.json")).toEqual({ errors: 0, typescript: false, jiti: false });
    expect(await run("p.ts")).toEqual({ errors: 0, typescript: true, jiti: false });
  });
});

describe("TypeScript policies that are pure data", () => {
  async function evaluated(source: string): Promise<unknown> {
    const file = path.join(dir, `eval-${Math.random().toString(16).slice(2)}.ts`);
    await writeFile(file, source.replace(/from "cdn-build"/g, `from ${JSON.stringify(path.join(import.meta.dirname, "..", "src", "index.ts"))}`));
    const jiti = createJiti(import.meta.url, { moduleCache: false, fsCache: false, interopDefault: true });
    return ((await jiti.import(file)) as { default: unknown }).default;
  }
  const read = (source: string) => staticPolicy(ts, ts.createSourceFile("p.ts", source, ts.ScriptTarget.ES2022, true));

  it("are read from the tree exactly as evaluating them gives", async () => {
    const sources = [
      'import { definePolicy } from "cdn-build";\nexport default definePolicy({ name: "a", origins: { app: { servers: [{ address: "h:1", weight: 2.5 }] } } });',
      'import { definePolicy as p, type Policy } from "cdn-build";\ntype X = Policy;\nexport default p(({ name: `t\\u00e9`, n: -0, e: 1e3, ttl: { "404": "1m", "200": "1h", b: null, c: [true, false] } }) satisfies X);',
      'import type { Policy } from "cdn-build";\nexport default { name: "x", "quoted key": \'\\n\', list: [[], {}], n: 1_000 } as const as unknown as Policy;',
    ];
    for (const s of sources) {
      const r = read(s);
      expect(r).toBeDefined();
      expect(JSON.stringify(r!.value)).toBe(JSON.stringify(await evaluated(s)));
    }
  });

  it("step aside for anything that must run", () => {
    const not = [
      'import "./setup";\nexport default { name: "a" };',
      'import { definePolicy, env } from "cdn-build";\nexport default definePolicy({ name: "a" });',
      'import { definePolicy } from "cdn-build";\nconsole.log(1);\nexport default definePolicy({ name: "a" });',
      'const n = "a";\nexport default { name: n };',
      'export default { ["name"]: "a" };',
      'export default { ...{ name: "a" } };',
      'export default { name: `a${1}` };',
      'export default { __proto__: { name: "a" } };',
      "export default { n: undefined };",
      'export default { f() { return 1; } };',
      'import { definePolicy } from "cdn-build";\nexport default definePolicy<{ name: string }>({ name: "a" });',
      'import x from "cdn-build";\nexport default { name: "a" };',
    ];
    for (const s of not) expect(read(s), s).toBeUndefined();
  });

  it("load through the loader, type-checked first", async () => {
    const text = 'import { definePolicy } from "cdn-build";\nexport default definePolicy({ name: "a", origins: { app: { servers: [{ address: "127.0.0.1:3000" }] } } });\n';
    const { loaded, diagnostics } = await load("pure.ts", text);
    expect(diagnostics).toEqual([]);
    expect(loaded?.value).toEqual({ name: "a", origins: { app: { servers: [{ address: "127.0.0.1:3000" }] } } });
    expect(loaded?.locate("/origins/app")).toEqual({ line: 2, col: text.split("\n")[1]!.indexOf("app") + 1 });
    const bad = await load("bad.ts", 'import { definePolicy } from "cdn-build";\nexport default definePolicy({ name: 1, origins: {} });\n');
    expect(bad.diagnostics.map((d) => d.code)).toEqual(["CDN0002"]);
  });
});
