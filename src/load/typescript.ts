import { readFileSync } from "node:fs";
import { isAbsolute, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import type ts from "typescript";
import { error, warning, type Diagnostic } from "../validate/diagnostic.js";
import { selfPaths, type SelfPaths } from "./self.js";
import { makeTsLocator } from "./ts-locate.js";
import { staticPolicy } from "./static-policy.js";
import type { LoadResult, SourcePosition } from "./types.js";
import { describeValue, isPolicyObject } from "./value.js";

type TS = typeof ts;

// typescript and jiti are loaded on first use: YAML/JSON policies never pay for them.
let tsModule: Promise<TS> | undefined;
const loadTs = (): Promise<TS> => (tsModule ??= import("typescript").then((m) => m.default));

/** Parsed (and bound) lib .d.ts files, shared by every type check of the process: they never change. */
const libCache = new Map<string, ts.SourceFile>();

function compilerOptions(ts: TS, self: SelfPaths): ts.CompilerOptions {
  return {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    lib: ["lib.es2022.d.ts"],
    types: [],
    // Bundler resolution accepts `./helper.js`, `./helper` and `./helper.ts`, like jiti does at run time.
    module: ts.ModuleKind.Preserve,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    allowImportingTsExtensions: true,
    allowJs: true,
    resolveJsonModule: true,
    esModuleInterop: true,
    // "cdn-build" is this package, wherever the policy lives (it may have no node_modules at all).
    paths: { "cdn-build": [self.typesEntry] },
  };
}

function createHost(ts: TS, options: ts.CompilerOptions): ts.CompilerHost {
  const host = ts.createCompilerHost(options, true);
  const libDir = host.getDefaultLibLocation?.();
  if (!libDir) return host;
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (fileName, languageVersion, onError, shouldCreate) => {
    if (!fileName.startsWith(libDir)) return getSourceFile(fileName, languageVersion, onError, shouldCreate);
    let sf = libCache.get(fileName);
    if (!sf) {
      sf = getSourceFile(fileName, languageVersion, onError, shouldCreate);
      if (sf) libCache.set(fileName, sf);
    }
    return sf;
  };
  return host;
}

/** Hints for the errors people hit because Node.js types are not loaded. */
function hintFor(d: ts.Diagnostic, message: string): string | undefined {
  const nodeTypes =
    d.code === 2580 || d.code === 2591 || (d.code === 2307 && message.includes("'node:")) || (d.code === 2339 && message.includes("'ImportMeta'"));
  return nodeTypes
    ? 'Node.js types are not loaded when checking a policy: add `/// <reference types="node" />` at the top of the file (with @types/node installed next to it).'
    : undefined;
}

function toDiagnostic(ts: TS, d: ts.Diagnostic): Diagnostic | undefined {
  const isError = d.category === ts.DiagnosticCategory.Error;
  if (!isError && d.category !== ts.DiagnosticCategory.Warning) return undefined;
  const message = ts.flattenDiagnosticMessageText(d.messageText, "\n");
  const hint = hintFor(d, message);
  const out = isError ? error("typeScriptError", "", message, hint) : warning("typeScriptWarning", "", message, hint);
  if (d.file) {
    out.file = resolve(d.file.fileName);
    if (d.start !== undefined) {
      const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
      out.line = line + 1;
      out.col = character + 1;
    }
  }
  return out;
}

interface CheckResult {
  diagnostics: Diagnostic[];
  /** Absolute paths of the user's own files in the program (the policy and what it imports). */
  userFiles: Set<string>;
  sourceFile: ts.SourceFile | undefined;
}

function typeCheck(ts: TS, file: string, self: SelfPaths): CheckResult {
  const options = compilerOptions(ts, self);
  const program = ts.createProgram({ rootNames: [file], options, host: createHost(ts, options) });
  const userSources: ts.SourceFile[] = [];
  const userFiles = new Set<string>();
  for (const sf of program.getSourceFiles()) {
    const abs = resolve(sf.fileName);
    const notUsers =
      sf.isDeclarationFile ||
      program.isSourceFileDefaultLibrary(sf) ||
      program.isSourceFileFromExternalLibrary(sf) ||
      abs.startsWith(self.ownDir + sep);
    if (abs !== file && notUsers) continue;
    userSources.push(sf);
    userFiles.add(abs);
  }
  // Like tsc: semantic errors only once the syntax is right.
  let raw: readonly ts.Diagnostic[] = userSources.flatMap((sf) => program.getSyntacticDiagnostics(sf));
  if (raw.length === 0) raw = userSources.flatMap((sf) => program.getSemanticDiagnostics(sf));
  const diagnostics = raw.map((d) => toDiagnostic(ts, d)).filter((d): d is Diagnostic => d !== undefined);
  return { diagnostics, userFiles, sourceFile: program.getSourceFile(file) };
}

function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.name && e.name !== "Error" ? `${e.name}: ${e.message}` : e.message;
  try {
    return String(e);
  } catch {
    return "unknown error";
  }
}

/** The first stack frame of the error in one of the user's files. */
function throwSite(e: unknown, userFiles: Set<string>): ({ file: string } & SourcePosition) | undefined {
  const stack = e instanceof Error && typeof e.stack === "string" ? e.stack : "";
  for (const raw of stack.split("\n").slice(1)) {
    const line = raw.trim();
    const m = /\((.+):(\d+):(\d+)\)$/.exec(line) ?? /^at (?:async )?(.+):(\d+):(\d+)$/.exec(line);
    if (!m) continue;
    let path = m[1]!;
    try {
      if (path.startsWith("file://")) path = fileURLToPath(path);
    } catch {
      continue;
    }
    if (!isAbsolute(path)) continue;
    path = resolve(path);
    if (userFiles.has(path)) return { file: path, line: Number(m[2]), col: Number(m[3]) };
  }
  return undefined;
}

async function evaluate(file: string, self: SelfPaths): Promise<{ module: unknown } | { thrown: unknown }> {
  try {
    const { createJiti } = await import("jiti");
    const jiti = createJiti(import.meta.url, {
      alias: { "cdn-build": self.runtimeEntry },
      moduleCache: false,
      fsCache: false,
      interopDefault: true,
    });
    return { module: await jiti.import(file) };
  } catch (e) {
    return { thrown: e };
  }
}

/** Type-check a TypeScript policy (without evaluating it when there are errors), then evaluate it with jiti. */
export async function loadTypeScript(file: string): Promise<LoadResult> {
  const self = selfPaths();
  const ts = await loadTs();
  const check = typeCheck(ts, file, self);
  const diagnostics = check.diagnostics;
  if (diagnostics.some((d) => d.severity === "error")) return { diagnostics };

  // a policy that is pure data is read from the tree the type check parsed; anything else is evaluated
  const data = check.sourceFile && staticPolicy(ts, check.sourceFile);
  const result = data ? { module: { default: data.value } } : await evaluate(file, self);
  if ("thrown" in result) {
    const site = throwSite(result.thrown, check.userFiles);
    const d = error("policyModuleThrew", "", `The policy module threw while being evaluated: ${errorMessage(result.thrown)}`);
    diagnostics.push(Object.assign(d, site ?? { file }));
    return { diagnostics };
  }

  const sourceFile = check.sourceFile ?? ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true);
  const locate = makeTsLocator(ts, sourceFile);
  const mod = result.module;
  if (typeof mod !== "object" || mod === null || !("default" in mod)) {
    const d = error(
      "notAPolicyObject",
      "",
      "The policy module has no default export",
      'Export the policy: `export default definePolicy({ ... })` with `import { definePolicy } from "cdn-build"`.',
    );
    diagnostics.push(Object.assign(d, { file }));
    return { diagnostics };
  }
  const value: unknown = mod.default;
  if (!isPolicyObject(value)) {
    const d = error(
      "notAPolicyObject",
      "",
      `The default export must be a policy object, got ${describeValue(value)}`,
      "Export the object itself: `export default definePolicy({ ... })` (top-level await is supported if you need to compute it).",
    );
    diagnostics.push(Object.assign(d, { file }, locate("") ?? {}));
    return { diagnostics };
  }
  return { loaded: { file, format: "ts", value, locate }, diagnostics };
}
