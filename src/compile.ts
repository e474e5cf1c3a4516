import { dirname } from "node:path";
import { buildIR } from "./ir/build.js";
import { compileHooks } from "./emit/hooks.js";
import type { Target } from "./ir/targets.js";
import { emitBundle, type Bundle } from "./emit/index.js";
import { validatePolicy } from "./validate/index.js";
import { hasErrors, type Diagnostic } from "./validate/diagnostic.js";
import { loadPolicy, type LoadedPolicy } from "./load/index.js";
import { toolVersion } from "./util/package.js";
import type { Policy } from "./policy/types.js";
// The pipeline's entry is the one importer of the feature registry; the stages get it as a parameter.
import { FEATURES } from "./features/registry.gen.js";

export interface CompileOptions {
  /** @default "openresty" */
  target?: Target;
  /** The folder the policy's hook files are relative to (the policy file's folder). @default process.cwd() */
  baseDir?: string;
}

export interface CompileResult {
  /** Present only when there is no error. */
  bundle?: Bundle;
  diagnostics: Diagnostic[];
  /** The validated policy (present only when there is no error). */
  policy?: Policy;
}

/** Validates a policy value (JSON Schema, then every feature's checks). */
export function validate(value: unknown): { policy?: Policy; diagnostics: Diagnostic[] } {
  return validatePolicy(value, FEATURES);
}

/** Pure: policy value -> validated -> IR -> bundle in memory. */
export function compile(value: unknown, opts: CompileOptions = {}): CompileResult {
  const { policy, diagnostics } = validate(value);
  if (!policy || hasErrors(diagnostics)) return { diagnostics };
  const target = opts.target ?? "openresty";
  for (const f of FEATURES) if (f.checkTarget) diagnostics.push(...f.checkTarget(policy, target));
  const ir = buildIR(policy, target, toolVersion(), FEATURES);
  let hookFiles: Map<string, string> | undefined;
  if (ir.luaData.hooks) {
    // the user's TypeScript hooks: type-checked and compiled by TypeScriptToLua (reads the hook files)
    const hooks = compileHooks(policy.hooks!, opts.baseDir ?? process.cwd());
    if (hasErrors(hooks.diagnostics)) return { diagnostics: [...diagnostics, ...hooks.diagnostics] };
    hookFiles = hooks.files;
  }
  return { bundle: emitBundle(ir, hookFiles), diagnostics, policy };
}

/** Adds file and line:col to diagnostics from a loaded file. */
export function locateAll(diags: Diagnostic[], loaded: LoadedPolicy): Diagnostic[] {
  return diags.map((d) => {
    if (d.file) return d;
    const pos = loaded.locate(d.path);
    return pos ? { ...d, file: loaded.file, line: pos.line, col: pos.col } : { ...d, file: loaded.file };
  });
}

/** Loads a policy file (TS, YAML, JSON) and compiles it. */
export async function compileFile(file: string, opts: CompileOptions = {}): Promise<CompileResult> {
  const { loaded, diagnostics } = await loadPolicy(file);
  if (!loaded || hasErrors(diagnostics)) return { diagnostics };
  const result = compile(loaded.value, { baseDir: dirname(file), ...opts });
  return { ...result, diagnostics: locateAll([...diagnostics, ...result.diagnostics], loaded) };
}
