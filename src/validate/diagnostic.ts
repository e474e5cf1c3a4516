import { CATALOGUE, type DiagnosticName, type ErrorName, type WarningName } from "./catalogue.js";

export type { DiagnosticName, ErrorName, WarningName } from "./catalogue.js";

/** A problem found in a policy. Tests match on `code`; users read `message` and `hint`. */
export interface Diagnostic {
  /** Stable code from the catalogue (src/validate/catalogue.ts, docs/diagnostics.md). */
  code: string;
  severity: "error" | "warning";
  /** JSON pointer into the policy, e.g. `/origins/app/servers/0/address` ("" for the root). */
  path: string;
  message: string;
  /** How to fix it. */
  hint?: string;
  /** Source position when known (YAML/JSON line:col, TypeScript file:line:col). */
  file?: string;
  line?: number;
  col?: number;
}

function make(name: DiagnosticName, path: string, message: string, hint: string | undefined): Diagnostic {
  const { code, severity } = CATALOGUE[name];
  return hint === undefined ? { code, severity, path, message } : { code, severity, path, message, hint };
}

/**
 * An error diagnostic, by its catalogue name: `error("cacheDiskPathDotDot", path, message, hint)`. Only names
 * the catalogue declares as errors compile; code and severity come from the catalogue.
 */
export function error(name: ErrorName, path: string, message: string, hint?: string): Diagnostic {
  return make(name, path, message, hint);
}

/** A warning diagnostic, by its catalogue name; only names the catalogue declares as warnings compile. */
export function warning(name: WarningName, path: string, message: string, hint?: string): Diagnostic {
  return make(name, path, message, hint);
}

export function hasErrors(diags: readonly Diagnostic[]): boolean {
  return diags.some((d) => d.severity === "error");
}

/** Build a JSON pointer from segments (RFC 6901 escaping). */
export function pointer(...segments: (string | number)[]): string {
  return segments.map((s) => "/" + String(s).replace(/~/g, "~0").replace(/\//g, "~1")).join("");
}

/** Split a JSON pointer into its segments. */
export function parsePointer(ptr: string): string[] {
  if (ptr === "") return [];
  return ptr.slice(1).split("/").map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

/** One line per diagnostic: `file:line:col error CODE /path: message (hint)`. */
export function formatDiagnostic(d: Diagnostic): string {
  const where = d.file ? `${d.file}${d.line ? `:${d.line}:${d.col ?? 1}` : ""} ` : "";
  const hint = d.hint ? `\n    hint: ${d.hint}` : "";
  return `${where}${d.severity} ${d.code} ${d.path || "/"}: ${d.message}${hint}`;
}
