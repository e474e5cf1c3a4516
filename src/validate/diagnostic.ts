/** A problem found in a policy. Tests match on `code`; users read `message` and `hint`. */
export interface Diagnostic {
  /** Stable code, e.g. `CDN1001`. */
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

export function error(code: string, path: string, message: string, hint?: string): Diagnostic {
  return hint === undefined ? { code, severity: "error", path, message } : { code, severity: "error", path, message, hint };
}

export function warning(code: string, path: string, message: string, hint?: string): Diagnostic {
  return hint === undefined ? { code, severity: "warning", path, message } : { code, severity: "warning", path, message, hint };
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
