/**
 * Rule targets that lead somewhere the policy did not mean (security issue 11 §8): a redirect to `//host`
 * (another site, written like a path), and rewrites with `.` / `..` segments (sent to the origin as written).
 */
import type { Actions } from "../../policy/types.js";
import { error, type Diagnostic } from "../../validate/diagnostic.js";

/** True when a path has a `.` or `..` segment, percent-encoded dots included (`%2e%2E`). */
export function hasDotSegment(path: string): boolean {
  const decoded = path.replace(/%2e/gi, ".");
  return decoded.split("/").some((s) => s === "." || s === "..");
}

export function targetFootguns(a: Actions, at: (...s: (string | number)[]) => string): Diagnostic[] {
  const out: Diagnostic[] = [];
  const to = a.redirect?.to;
  if (to !== undefined && to.startsWith("//")) {
    out.push(error("redirectProtocolRelative", at("redirect", "to"), `"${to}" is a protocol-relative URL: clients are sent to the host "${to.slice(2).split("/")[0]}"`, `write a path on this host, or the full URL "https:${to}" if another host is meant`));
  }
  const r = a.rewrite;
  for (const key of ["path", "addPrefix"] as const) {
    const p = r?.[key];
    if (p !== undefined && hasDotSegment(p)) out.push(error("rewriteDotSegments", at("rewrite", key), `"${p}" has a "." or ".." segment, sent to the origin as written`, "write the path without dot segments"));
  }
  const url = a.image?.url;
  if (url !== undefined && hasDotSegment(url)) out.push(error("rewriteDotSegments", at("image", "url"), `"${url}" has a "." or ".." segment, sent to the image origin as written`, "write the path without dot segments"));
  return out;
}
