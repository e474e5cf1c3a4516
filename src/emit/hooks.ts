/**
 * The user's hooks, compiled at build time: each hook file is type-checked against the edge API
 * (`cdn-build/edge`, src/edge/api.d.ts) with the TypeScript compiler API, its imports are checked (its own
 * folder and `cdn-build/edge` only), and TypeScriptToLua compiles it and the files it imports into
 * `lua/hooks/<phase>/` (LuaJIT, lualib helpers inlined in the files that use them). The import of
 * `cdn-build/edge` becomes a require of the runtime's `edge.index`; a file's local requires get the
 * `hooks.<phase>.` prefix. `lua/hooks/lines.lua` maps the Lua lines back to TypeScript lines (from
 * TypeScriptToLua's source maps) for the runtime's error log lines.
 *
 * Reads the hook files, writes nothing: the files go into the bundle in memory.
 */
import { existsSync, realpathSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, extname, join, relative, resolve, sep } from "node:path";
import type TS from "typescript";
import type * as Tstl from "typescript-to-lua";
import type { HookData, HooksData } from "../contract/index.js";
import type { Hooks } from "../policy/types.js";
import { packageRoot } from "../util/package.js";
import { luaString } from "./lua-data.js";
import { BODY_MAX_BYTES } from "../features/hooks.js";
import { error, pointer, type Diagnostic } from "../validate/diagnostic.js";
import type { ErrorName } from "../validate/catalogue.js";

/** Policy key -> the phase folder in the bundle and the marker its default export must come from. */
const PHASES = [
  { key: "access", dir: "access", marker: "onAccess", phase: "access" },
  { key: "headers", dir: "headers", marker: "onHeaders", phase: "headers" },
  { key: "body", dir: "body", marker: "onBody", phase: "body" },
  { key: "log", dir: "log", marker: "onLog", phase: "log" },
] as const;

const EDGE_MODULE = "cdn-build/edge";
/** The runtime module implementing the edge API (lua-src/edge/index.ts). */
const EDGE_LUA = "edge.index";

/** Globals of the TypeScript lib with no Lua counterpart in a hook, and what to use instead. */
const NO_LUA_GLOBALS: Record<string, string> = {
  JSON: 'use jsonEncode / jsonDecode from "cdn-build/edge"',
  Date: 'use now() from "cdn-build/edge" (seconds since the epoch)',
  RegExp: "use string methods (startsWith, endsWith, includes, indexOf, split); regular expressions are not translated",
  Promise: "hooks are synchronous: remove the Promise",
  Intl: "format values yourself (toFixed, padStart)",
  Proxy: "use a plain object",
  Reflect: "use plain property access",
  WeakMap: "use a Map (or per-request state)",
  WeakSet: "use a Set",
  WeakRef: "keep a plain reference",
  FinalizationRegistry: "not available in a hook",
  BigInt: "numbers in a hook are doubles (exact integers up to 2^53)",
  ArrayBuffer: "strings in a hook are byte strings: use string methods",
  SharedArrayBuffer: "not available in a hook",
  DataView: "strings in a hook are byte strings: use string methods",
  Atomics: "not available in a hook",
  Uint8Array: "strings in a hook are byte strings: use string methods",
  eval: "not available in a hook",
  encodeURIComponent: "not available in a hook yet: build the value from safe characters",
  decodeURIComponent: "req.path is already decoded; req.arg() values are raw",
  encodeURI: "not available in a hook",
  decodeURI: "not available in a hook",
};

export interface CompiledHooks {
  /** Bundle path -> content (`lua/hooks/...`). */
  files: Map<string, string>;
  data: HooksData;
  diagnostics: Diagnostic[];
}

type FindLuaRequires = (lua: string) => { from: number; to: number; requirePath: string }[];
interface Compilers {
  ts: typeof TS;
  tstl: typeof Tstl;
  findLuaRequires: FindLuaRequires;
}
let modules: Compilers | undefined;
// loaded on the first policy with hooks only (the compilers take a while to load)
function load(): Compilers {
  if (modules) return modules;
  const req = createRequire(import.meta.url);
  const tstl = req("typescript-to-lua") as typeof Tstl;
  const { findLuaRequires } = req("typescript-to-lua/dist/transpilation/find-lua-requires.js") as { findLuaRequires: FindLuaRequires };
  modules = { ts: req("typescript") as typeof TS, tstl, findLuaRequires };
  return modules;
}

/** The declarations users' hooks are checked against. */
export function edgeApiFile(): string {
  return join(packageRoot(), "src", "edge", "api.d.ts");
}

function fileOf(h: Hooks["access" | "headers" | "body" | "log"]): { file: string; failOpen: boolean; beforeCache: boolean; maxBytes: number } | undefined {
  if (h === undefined) return undefined;
  if (typeof h === "string") return { file: h, failOpen: false, beforeCache: false, maxBytes: BODY_MAX_BYTES };
  return {
    file: h.file,
    failOpen: "failOpen" in h ? (h.failOpen ?? false) : false,
    beforeCache: "before" in h && h.before === "cache",
    maxBytes: "maxBytes" in h ? (h.maxBytes ?? BODY_MAX_BYTES) : BODY_MAX_BYTES,
  };
}

function isInside(dir: string, file: string): boolean {
  const rel = relative(dir, file);
  return rel !== "" && !rel.startsWith("..") && !rel.startsWith(sep) && !/^[a-zA-Z]:/.test(rel);
}

function real(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

/** A diagnostic at a position of a TypeScript file. */
function at(ts: typeof TS, name: ErrorName, path: string, file: TS.SourceFile | undefined, start: number | undefined, message: string, hint?: string): Diagnostic {
  const d = error(name, path, message, hint);
  if (!file) return d;
  if (start === undefined) return { ...d, file: file.fileName };
  const { line, character } = ts.getLineAndCharacterOfPosition(file, start);
  return { ...d, file: file.fileName, line: line + 1, col: character + 1 };
}

/** The module specifiers a file imports (static, re-exports, `import()`, `require()`), with their nodes. */
function importsOf(ts: typeof TS, sf: TS.SourceFile): { spec: string; node: TS.Node }[] {
  const out: { spec: string; node: TS.Node }[] = [];
  const visit = (n: TS.Node): void => {
    if ((ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier)) {
      out.push({ spec: n.moduleSpecifier.text, node: n.moduleSpecifier });
    } else if (ts.isImportEqualsDeclaration(n) && ts.isExternalModuleReference(n.moduleReference) && ts.isStringLiteral(n.moduleReference.expression)) {
      out.push({ spec: n.moduleReference.expression.text, node: n.moduleReference.expression });
    } else if (ts.isCallExpression(n) && (n.expression.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(n.expression) && n.expression.text === "require"))) {
      const a = n.arguments[0];
      out.push(a && ts.isStringLiteralLike(a) ? { spec: a.text, node: a } : { spec: "", node: n });
    } else if (ts.isImportTypeNode(n) && ts.isLiteralTypeNode(n.argument) && ts.isStringLiteral(n.argument.literal)) {
      out.push({ spec: n.argument.literal.text, node: n.argument.literal });
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

/** Statements a hook file's top level may hold: declarations and the exports. */
function isDeclaration(ts: typeof TS, st: TS.Statement): boolean {
  return (
    ts.isImportDeclaration(st) ||
    ts.isImportEqualsDeclaration(st) ||
    ts.isExportDeclaration(st) ||
    ts.isExportAssignment(st) ||
    ts.isVariableStatement(st) ||
    ts.isFunctionDeclaration(st) ||
    ts.isClassDeclaration(st) ||
    ts.isInterfaceDeclaration(st) ||
    ts.isTypeAliasDeclaration(st) ||
    ts.isEnumDeclaration(st) ||
    ts.isModuleDeclaration(st) ||
    ts.isEmptyStatement(st)
  );
}

// ---- source maps -> Lua line to TypeScript line ---------------------------------------------------------

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

function decodeVlq(segment: string): number[] {
  const out: number[] = [];
  let value = 0;
  let shift = 0;
  for (const ch of segment) {
    const digit = B64.indexOf(ch);
    if (digit < 0) break;
    value += (digit & 31) << shift;
    if (digit & 32) shift += 5;
    else {
      out.push(value & 1 ? -(value >>> 1) : value >>> 1);
      value = 0;
      shift = 0;
    }
  }
  return out;
}

/** Lua line (1-based) -> the first TypeScript line (1-based) a segment of that line maps to. */
export function lineMap(mappings: string): Map<number, number> {
  const out = new Map<number, number>();
  let srcLine = 0;
  mappings.split(";").forEach((line, i) => {
    for (const seg of line.split(",")) {
      if (seg === "") continue;
      const v = decodeVlq(seg);
      if (v.length < 4) continue;
      srcLine += v[2]!;
      if (!out.has(i + 1)) out.set(i + 1, srcLine + 1);
    }
  });
  return out;
}

/** lua/hooks/lines.lua: `["access/gate"] = { file = "hooks/gate.ts", lines = { [12] = 5, ... } }`. */
function linesModule(maps: { key: string; file: string; lines: Map<number, number> }[]): string {
  const body = maps
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map((m) => {
      const lines = [...m.lines].map(([l, t]) => `[${l}]=${t}`).join(",");
      return `  [${luaString(m.key)}] = { file = ${luaString(m.file)}, lines = { ${lines} } },`;
    });
  return `-- generated by cdn-build: TypeScript lines of the compiled hooks, for error log lines. Do not edit.\nreturn {\n${body.join("\n")}\n}\n`;
}

// ---- one hook --------------------------------------------------------------------------------------------

interface PhaseResult {
  files: Map<string, string>;
  maps: { key: string; file: string; lines: Map<number, number> }[];
  module?: string;
  diagnostics: Diagnostic[];
}

function compileOne(spec: (typeof PHASES)[number], file: string, baseDir: string, policyPath: string, storeOn: boolean): PhaseResult {
  const { ts, tstl, findLuaRequires } = load();
  const result: PhaseResult = { files: new Map(), maps: [], diagnostics: [] };
  const abs = resolve(baseDir, file);
  if (extname(abs) !== ".ts" || !existsSync(abs) || !statSync(abs).isFile()) {
    result.diagnostics.push(error("hookFileMissing", policyPath, `the ${spec.key} hook ${file} is not a TypeScript file (looked for ${abs})`, "paths are relative to the policy file's folder"));
    return result;
  }
  const folder = real(dirname(abs));
  const entry = join(folder, relative(dirname(abs), abs));
  const api = edgeApiFile();
  const outDir = join(folder, "__cdn_build_out__");
  const options: TS.CompilerOptions & Tstl.CompilerOptions = {
    strict: true,
    target: ts.ScriptTarget.ESNext,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    lib: ["lib.esnext.d.ts"],
    types: [],
    paths: { [EDGE_MODULE]: [api] },
    rootDir: folder,
    outDir,
    skipLibCheck: true,
    noEmitOnError: true,
    sourceMap: true,
    luaTarget: tstl.LuaTarget.LuaJIT,
    luaLibImport: tstl.LuaLibImportKind.Inline,
    noImplicitSelf: true,
    noHeader: true,
  };
  const program = ts.createProgram([entry], options);
  const rel = (f: string) => relative(baseDir, f) || f;

  // imports: cdn-build/edge and files of the hook's folder only
  const flagged = new Set<string>();
  for (const sf of program.getSourceFiles()) {
    if (sf.isDeclarationFile || !isInside(folder, real(sf.fileName))) continue;
    for (const { spec: s, node } of importsOf(ts, sf)) {
      if (s === EDGE_MODULE) continue;
      const start = node.getStart(sf);
      if (s.startsWith("./") || s.startsWith("../") || s === "." || s === "..") {
        const target = resolve(dirname(sf.fileName), s);
        if (isInside(folder, target)) continue;
        flagged.add(`${sf.fileName}:${start}`);
        result.diagnostics.push(at(ts, "hookImportOutside", policyPath, sf, start, `the ${spec.key} hook imports "${s}", outside its folder ${rel(folder)}`, "keep the files a hook imports in its folder"));
      } else {
        flagged.add(`${sf.fileName}:${start}`);
        const what = s === "" ? "a computed module name" : `"${s}"`;
        result.diagnostics.push(at(ts, "hookImportModule", policyPath, sf, start, `the ${spec.key} hook imports ${what}: hooks run in nginx, where only "${EDGE_MODULE}" and the hook's own files exist`, `import helpers from "${EDGE_MODULE}" (now, sha256Hex, hmacSha256Hex, base64Encode, jsonEncode...)`));
      }
    }
  }

  // JavaScript globals the TypeScript lib declares but Lua has not: TypeScriptToLua would emit a call to a nil
  // global, an error on the first request
  const checker = program.getTypeChecker();
  for (const sf of program.getSourceFiles()) {
    if (sf.isDeclarationFile || !isInside(folder, real(sf.fileName))) continue;
    const visit = (n: TS.Node): void => {
      // the store exists only when the policy declares it: flag its import (or `edge.store` of a namespace import)
      if (!storeOn && (ts.isImportSpecifier(n) || ts.isPropertyAccessExpression(n))) {
        const name = ts.isImportSpecifier(n) ? (n.propertyName ?? n.name).text : n.name.text;
        const decls = name === "store" ? (checker.getSymbolAtLocation(ts.isImportSpecifier(n) ? n.name : n.name)?.declarations ?? []) : [];
        const target = decls.flatMap((d) => (ts.isImportSpecifier(d) ? (checker.getAliasedSymbol(checker.getSymbolAtLocation(d.name)!).declarations ?? []) : [d]));
        if (target.some((d) => real(d.getSourceFile().fileName) === real(api))) {
          result.diagnostics.push(at(ts, "hookStoreOff", policyPath, sf, n.getStart(sf), `the ${spec.key} hook uses the store, which the policy does not declare`, 'add hooks: { store: { size: "10m" } } to the policy'));
        }
      }
      if (ts.isIdentifier(n) && NO_LUA_GLOBALS[n.text] !== undefined && !(ts.isPropertyAccessExpression(n.parent) && n.parent.name === n) && !ts.isTypeReferenceNode(n.parent) && !ts.isTypeQueryNode(n.parent)) {
        const decls = checker.getSymbolAtLocation(n)?.declarations ?? [];
        if (decls.length && decls.every((d) => program.isSourceFileDefaultLibrary(d.getSourceFile()))) {
          result.diagnostics.push(at(ts, "hookTranspileError", policyPath, sf, n.getStart(sf), `${n.text} does not exist in a hook (hooks run as Lua in nginx)`, NO_LUA_GLOBALS[n.text]));
        }
      }
      ts.forEachChild(n, visit);
    };
    visit(sf);
  }

  // the top level runs once at init, in the master: declarations only
  for (const sf of program.getSourceFiles()) {
    if (sf.isDeclarationFile || !isInside(folder, real(sf.fileName))) continue;
    for (const st of sf.statements) {
      if (isDeclaration(ts, st)) continue;
      result.diagnostics.push(at(ts, "hookTopLevelStatement", policyPath, sf, st.getStart(sf), `the ${spec.key} hook runs a statement at the top level of ${rel(sf.fileName)}, once at nginx start, outside any request`, "move it into the hook function, or into a const initializer"));
    }
  }

  for (const d of ts.getPreEmitDiagnostics(program)) {
    if (d.category !== ts.DiagnosticCategory.Error) continue;
    if (d.file && d.start !== undefined && flagged.has(`${d.file.fileName}:${d.start}`)) continue;
    const msg = ts.flattenDiagnosticMessageText(d.messageText, "\n");
    result.diagnostics.push(at(ts, "hookTypeError", policyPath, d.file, d.start, `TS${d.code}: ${msg}`));
  }
  if (result.diagnostics.length) return result;

  // the default export must be the phase's marker (its type carries the phase)
  const sf = program.getSourceFile(entry)!;
  const sym = checker.getSymbolAtLocation(sf);
  const def = sym && checker.getExportsOfModule(sym).find((s) => s.escapedName === "default");
  const phaseProp = def && checker.getTypeOfSymbolAtLocation(def, sf).getProperty("__phase");
  const phaseType = phaseProp && checker.typeToString(checker.getTypeOfSymbolAtLocation(phaseProp, sf));
  if (phaseType !== `"${spec.phase}"`) {
    const decl = def?.declarations?.[0];
    const found = phaseType ? `it exports a ${phaseType.replace(/"/g, "")} hook` : def ? "its default export is not a hook" : "it has no default export";
    result.diagnostics.push(at(ts, "hookWrongExport", policyPath, sf, decl?.getStart(sf), `the ${spec.key} hook ${file} must \`export default ${spec.marker}(...)\`: ${found}`, `export default ${spec.marker}(${{ access: "(req)", headers: "(res)", body: "(res, body)", log: "(ctx)" }[spec.key]} => { ... })`));
    return result;
  }

  // TypeScriptToLua
  const written = new Map<string, string>();
  // `./tables.js` (the spelling Node's ESM resolution wants, e.g. for a hook also imported by the user's
  // tests) is the file tables.ts: TypeScript knows, TypeScriptToLua's resolver needs telling
  const jsToTs: Tstl.Plugin = {
    moduleResolution(dep, requiringFile) {
      if (!/^\.\.?\//.test(dep) || !dep.endsWith(".js")) return undefined;
      const ts = resolve(dirname(requiringFile), dep.slice(0, -3) + ".ts");
      return existsSync(ts) ? ts : undefined;
    },
  };
  const emitted = new tstl.Transpiler().emit({ program, plugins: [jsToTs], writeFile: (name, text) => written.set(name, text) });
  for (const d of emitted.diagnostics) {
    const msg = ts.flattenDiagnosticMessageText(d.messageText, "\n");
    if (msg.includes(`'${EDGE_MODULE}'`)) continue; // resolved by the require rewrite below
    if (d.category !== ts.DiagnosticCategory.Error && d.category !== ts.DiagnosticCategory.Warning) continue;
    result.diagnostics.push(at(ts, "hookTranspileError", policyPath, d.file, d.start, `TypeScriptToLua: ${msg}`));
  }
  if (result.diagnostics.length) return result;

  const prefix = `hooks.${spec.dir}.`;
  for (const [name, text] of written) {
    const r = relative(outDir, name).split(sep).join("/");
    if (r.startsWith("../") || r.startsWith("/")) {
      // a file outside the hook's folder (a symbolic link out of it): never written outside lua/hooks/<phase>/
      result.diagnostics.push(error("hookImportOutside", policyPath, `the ${spec.key} hook compiles ${name}, outside its folder ${rel(folder)}`, "keep the files a hook imports in its folder (no links out of it)"));
      continue;
    }
    if (r.endsWith(".lua.map")) {
      const map = JSON.parse(text) as { mappings: string };
      const key = `${spec.dir}/${r.slice(0, -".lua.map".length)}`;
      const src = join(folder, r.slice(0, -".lua.map".length) + ".ts");
      result.maps.push({ key, file: rel(src).split(sep).join("/"), lines: lineMap(map.mappings) });
      continue;
    }
    if (!r.endsWith(".lua")) continue;
    let lua = text;
    for (const req of findLuaRequires(text).reverse()) {
      const target = req.requirePath === "cdn-build.edge" ? EDGE_LUA : prefix + req.requirePath;
      lua = lua.slice(0, req.from) + `require(${luaString(target)})` + lua.slice(req.to + 1);
    }
    lua = lua.replace(/\n--# sourceMappingURL=.*\n?$/, "\n");
    // the file name goes into a Lua comment: no line break may end it early
    // eslint-disable-next-line no-control-regex
    const source = rel(join(folder, r.slice(0, -4) + ".ts")).split(sep).join("/").replace(/[\u0000-\u001f\u007f]/g, "?");
    result.files.set(`lua/hooks/${spec.dir}/${r}`, `-- compiled by cdn-build (TypeScriptToLua) from ${source}: do not edit.\n${lua}`);
  }
  if (result.diagnostics.length) return { ...result, files: new Map() };
  const entryLua = relative(folder, entry).split(sep).join("/").replace(/\.ts$/, "");
  result.module = prefix + entryLua.split("/").join(".");
  // the header line added above shifts every Lua line by one
  for (const m of result.maps) m.lines = new Map([...m.lines].map(([l, t]) => [l + 1, t]));
  return result;
}

/**
 * Compiles the policy's hooks (paths relative to `baseDir`, the policy file's folder). On any error the
 * diagnostics say where (the hook's file:line:col) and no file is returned.
 */
export function compileHooks(hooks: Hooks, baseDir: string): CompiledHooks {
  const out: CompiledHooks = { files: new Map(), data: {}, diagnostics: [] };
  const maps: PhaseResult["maps"] = [];
  for (const spec of PHASES) {
    const h = fileOf(hooks[spec.key]);
    if (!h) continue;
    const path = typeof hooks[spec.key] === "string" ? pointer("hooks", spec.key) : pointer("hooks", spec.key, "file");
    const r = compileOne(spec, h.file, baseDir, path, hooks.store !== undefined);
    out.diagnostics.push(...r.diagnostics);
    if (r.diagnostics.length || !r.module) continue;
    for (const [p, t] of r.files) out.files.set(p, t);
    maps.push(...r.maps);
    const data: HookData = { module: r.module, file: h.file, failOpen: h.failOpen };
    if (spec.key === "access") out.data.access = { ...data, beforeCache: h.beforeCache };
    else if (spec.key === "headers") out.data.header = data;
    else if (spec.key === "body") out.data.body = { ...data, maxBytes: h.maxBytes };
    else out.data.log = data;
  }
  if (out.diagnostics.length) return { files: new Map(), data: {}, diagnostics: out.diagnostics };
  if (out.files.size) out.files.set("lua/hooks/lines.lua", linesModule(maps));
  return out;
}
