import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { CATALOGUE, CODE_RANGES, catalogueEntries, type DiagnosticSpec } from "../src/validate/catalogue.js";
import { error, warning } from "../src/validate/diagnostic.js";
import { policySchema } from "../src/validate/schema.js";

const ROOT = join(import.meta.dirname, "..");
const CATALOGUE_FILE = join("src", "validate", "catalogue.ts");
const CODE = /CDN[0-9]{4}/g;

/** TypeScript files under a directory of the repository, as [path relative to the root, text]. */
function sources(dir: string): [string, string][] {
  const out: [string, string][] = [];
  const walk = (abs: string): void => {
    for (const e of readdirSync(abs, { withFileTypes: true })) {
      const p = join(abs, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(".ts")) out.push([relative(ROOT, p), readFileSync(p, "utf8")]);
    }
  };
  walk(join(ROOT, dir));
  return out.sort((a, b) => (a[0] < b[0] ? -1 : 1));
}

/** Codes declared by more than one entry. */
function duplicateCodes(entries: readonly Pick<DiagnosticSpec, "code">[]): string[] {
  const seen = new Set<string>();
  const dup = new Set<string>();
  for (const e of entries) (seen.has(e.code) ? dup : seen).add(e.code);
  return [...dup].sort();
}

const entries = catalogueEntries();
const declared = new Set(entries.map((e) => e.code));
const src = sources("src").filter(([file]) => file !== CATALOGUE_FILE);

describe("the diagnostics catalogue (src/validate/catalogue.ts)", () => {
  it("declares every code once", () => {
    expect(duplicateCodes(entries)).toEqual([]);
    // and the check does catch a code declared twice
    expect(duplicateCodes([...entries, { ...entries[7]!, title: "another meaning" }])).toEqual([entries[7]!.code]);
    // the source declares no code outside an entry (e.g. a code pasted into a second entry's text)
    const text = readFileSync(join(ROOT, CATALOGUE_FILE), "utf8");
    expect((text.match(/code: "CDN[0-9]{4}"/g) ?? []).length).toBe(entries.length);
  });

  it("gives every entry a code in its range, a severity, a title, an explanation, a fix and a place", () => {
    const prefixes: string[] = CODE_RANGES.map((r) => r.prefix);
    for (const e of entries) {
      expect(e.code, e.name).toMatch(/^CDN[0-9]{4}$/);
      expect(prefixes, e.code).toContain(e.code.slice(0, 4));
      expect(e.name, e.code).toMatch(/^[a-z][A-Za-z0-9]*$/);
      expect(["error", "warning"], e.code).toContain(e.severity);
      for (const text of [e.title, e.why, e.fix]) {
        expect(text.trim().length, e.code).toBeGreaterThan(5);
        expect(text, e.code).not.toMatch(/\n/);
      }
      expect(e.at.length, e.code).toBeGreaterThan(0);
    }
  });

  it("is the only place in src/ that spells a code", () => {
    const stray = src.flatMap(([file, text]) =>
      text.split("\n").flatMap((line, i) => (line.match(CODE) ?? []).map((code) => `${file}:${i + 1} ${code}`)),
    );
    expect(stray).toEqual([]);
  });

  it("has no unused entry (retired codes are marked reserved)", () => {
    const used = (name: string) => src.some(([, text]) => text.includes(`"${name}"`));
    const unused = entries.filter((e) => !e.reserved && !used(e.name)).map((e) => `${e.code} ${e.name}`);
    expect(unused).toEqual([]);
    const raisedButReserved = entries.filter((e) => e.reserved && used(e.name)).map((e) => `${e.code} ${e.name}`);
    expect(raisedButReserved).toEqual([]);
  });

  it("declares every code the tests match on", () => {
    const tests = sources("test").filter(([file]) => !file.startsWith(join("test", "fixtures")));
    const unknown = tests.flatMap(([file, text]) => [...new Set(text.match(CODE) ?? [])].filter((c) => !declared.has(c)).map((c) => `${file} ${c}`));
    expect(unknown).toEqual([]);
  });

  it("names policy keys that exist in the schema", () => {
    const schema = policySchema() as { definitions: Record<string, Node> };
    const bad = entries.flatMap((e) => e.at.filter((key) => !key.startsWith("(") && !keyExists(schema.definitions, key)).map((key) => `${e.code} ${key}`));
    expect(bad).toEqual([]);
    // the walk does reject a key the policy does not have
    expect(keyExists(schema.definitions, "cache.disk.paht")).toBe(false);
  });
});

describe("raising a diagnostic by name", () => {
  it("takes the code and the severity from the catalogue", () => {
    expect(error("cacheDiskPathDotDot", "/cache/disk/path", "m", "h")).toEqual({
      code: CATALOGUE.cacheDiskPathDotDot.code,
      severity: "error",
      path: "/cache/disk/path",
      message: "m",
      hint: "h",
    });
    expect(warning("yamlWarning", "", "m")).toEqual({ code: CATALOGUE.yamlWarning.code, severity: "warning", path: "", message: "m" });
  });

  it("does not compile with an undeclared name or the wrong severity", () => {
    const file = join(ROOT, "test", "__catalogue-typecheck__.ts");
    const lines = [
      'import { error, warning } from "../src/validate/diagnostic.js";',
      'error("cacheDiskPathDotDot", "", "fine");',
      'warning("yamlWarning", "", "fine");',
      'error("noSuchDiagnostic", "", "undeclared");',
      'error("yamlWarning", "", "a warning raised as an error");',
      'warning("yamlSyntax", "", "an error raised as a warning");',
      `error("CDN${"2025"}", "", "a code instead of a name");`,
    ];
    const options: ts.CompilerOptions = {
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      lib: ["lib.es2022.d.ts"],
      types: [],
    };
    const host = ts.createCompilerHost(options, true);
    const getSourceFile = host.getSourceFile.bind(host);
    const fileExists = host.fileExists.bind(host);
    host.fileExists = (f) => f === file || fileExists(f);
    host.getSourceFile = (f, v, ...rest) => (f === file ? ts.createSourceFile(f, lines.join("\n"), v) : getSourceFile(f, v, ...rest));
    const program = ts.createProgram({ rootNames: [file], options, host });
    const sf = program.getSourceFile(file)!;
    const failing = ts
      .getPreEmitDiagnostics(program, sf)
      .filter((d) => d.file === sf)
      .map((d) => sf.getLineAndCharacterOfPosition(d.start!).line + 1);
    expect(failing).toEqual([4, 5, 6, 7]);
  }, 30_000);
});

interface Node {
  $ref?: string;
  anyOf?: Node[];
  properties?: Record<string, Node>;
  additionalProperties?: Node | boolean;
  patternProperties?: Record<string, Node>;
  items?: Node;
}

/** Whether a dotted policy key (`origins.<name>.servers[].address`) exists in the policy's JSON Schema. */
function keyExists(defs: Record<string, Node>, key: string): boolean {
  const expand = (n: Node): Node[] => (n.$ref ? expand(defs[n.$ref.replace("#/definitions/", "")]!) : n.anyOf ? n.anyOf.flatMap(expand) : [n]);
  let nodes = expand(defs["Policy"]!);
  const step = (seg: string): void => {
    if (seg === "[]") nodes = nodes.flatMap((n) => (n.items ? expand(n.items) : []));
    else if (/^<.+>$/.test(seg)) {
      nodes = nodes.flatMap((n) => [
        ...(typeof n.additionalProperties === "object" ? expand(n.additionalProperties) : []),
        ...Object.values(n.patternProperties ?? {}).flatMap(expand),
      ]);
    } else nodes = nodes.flatMap((n) => (n.properties?.[seg] ? expand(n.properties[seg]) : []));
  };
  for (const part of key.split(".")) {
    const m = /^([^[]*)((?:\[\])*)$/.exec(part)!;
    if (m[1]) step(m[1]);
    for (let i = 0; i < m[2]!.length / 2; i++) step("[]");
    if (nodes.length === 0) return false;
  }
  return true;
}
