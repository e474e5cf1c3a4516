/**
 * Rule conditions in normal form: the tree the Lua runtime evaluates and the compile-time analysis
 * reasons about. Every key of a policy `Condition` becomes one conjunct; `all` is flattened into the
 * conjunction, `any` becomes an `or` node, `not` a `not` node.
 */
import type { Condition, CountrySource, PathMatch, PathPattern } from "../../policy/types.js";

/** One alternative of a path condition. `glob` keeps the source so the analysis can reason about it. */
export type PathAlt =
  | { kind: "exact"; value: string }
  | { kind: "prefix"; value: string }
  | { kind: "glob"; value: string; regex: string; literal: string }
  | { kind: "regex"; value: string };

export type CondNode =
  | { t: "and"; c: CondNode[] }
  | { t: "or"; c: CondNode[] }
  | { t: "not"; c: CondNode }
  | { t: "path"; alts: PathAlt[] }
  | { t: "ext"; set: string[] }
  | { t: "method"; set: string[] }
  | { t: "host"; exact: string[]; suffix: string[] }
  | { t: "header"; name: string; op: ValueOp; value?: string }
  | { t: "cookie"; name: string; op: "exists" | "absent" | "equals"; value?: string }
  | { t: "arg"; name: string; op: "exists" | "absent" | "equals"; value?: string }
  | { t: "country"; source: string; set: string[] }
  | { t: "cidr"; nets: string[] }
  | { t: "ua"; patterns: string[] };

export type ValueOp = "exists" | "absent" | "equals" | "matches";

export const DEFAULT_COUNTRY_HEADER = "X-Geoip-Country-Code";

/** The nginx variable a country comes from: the explicit variable, or `http_<header>`. */
export function countryVar(src: CountrySource | undefined): string {
  if (src?.variable) return src.variable;
  return "http_" + (src?.header ?? DEFAULT_COUNTRY_HEADER).toLowerCase().replace(/-/g, "_");
}

/** Matching runs on nginx's decoded, normalised `$uri`; percent-escapes in patterns are decoded to match. */
export function decodePath(p: string): string {
  try {
    return decodeURIComponent(p);
  } catch {
    return p;
  }
}

/** Glob text as PCRE: letters, digits, `/`, `_`, `-` and `.`-free bytes as themselves, every other byte as `\xHH`. */
function globLiteral(s: string): string {
  let out = "";
  for (const b of Buffer.from(s, "utf8")) {
    const c = String.fromCharCode(b);
    out += /^[A-Za-z0-9/_-]$/.test(c) ? c : "\\x" + b.toString(16).padStart(2, "0");
  }
  return out;
}

/**
 * A glob (`*` = any bytes, `/` and newlines included) as an anchored PCRE regex that runs in linear time,
 * plus its literal prefix. The text between two stars is searched leftmost-first inside an atomic group, so
 * no star is ever tried again: the leftmost place of each middle part is always the best one for the parts
 * after it, and the last part must end the path. (A plain `.*` per star is polynomial in the path length.)
 */
export function globToRegex(glob: string): { regex: string; literal: string } {
  const parts = glob.split("*");
  const literal = parts[0]!;
  if (parts.length === 1) return { regex: "^" + globLiteral(glob) + "\\z", literal };
  let regex = "^" + globLiteral(literal);
  for (const mid of parts.slice(1, -1)) if (mid !== "") regex += "(?>[\\x00-\\xff]*?" + globLiteral(mid) + ")";
  regex += "[\\x00-\\xff]*" + globLiteral(parts[parts.length - 1]!) + "\\z";
  return { regex, literal };
}

/** Whether a path matches a glob, by the same leftmost-first rule as globToRegex (for compile-time analysis). */
export function globMatches(glob: string, path: string): boolean {
  const parts = glob.split("*");
  if (parts.length === 1) return glob === path;
  const first = parts[0]!;
  const last = parts[parts.length - 1]!;
  if (!path.startsWith(first) || path.length < first.length + last.length) return false;
  let pos = first.length;
  for (const mid of parts.slice(1, -1)) {
    if (mid === "") continue;
    const at = path.indexOf(mid, pos);
    if (at === -1) return false;
    pos = at + mid.length;
  }
  return path.length - last.length >= pos && path.endsWith(last);
}

export function pathAlt(p: PathPattern | PathMatch): PathAlt {
  if (typeof p === "string") {
    if (!p.includes("*")) return { kind: "exact", value: decodePath(p) };
    p = { glob: p };
  }
  if (p.exact !== undefined) return { kind: "exact", value: decodePath(p.exact) };
  if (p.prefix !== undefined) return { kind: "prefix", value: decodePath(p.prefix) };
  if (p.glob !== undefined) {
    const g = decodePath(p.glob);
    const star = g.indexOf("*");
    // "/assets/*" is a prefix: cheaper to match and to index
    if (star === g.length - 1 && g.indexOf("*") === g.lastIndexOf("*")) return { kind: "prefix", value: g.slice(0, -1) };
    if (star === -1) return { kind: "exact", value: g };
    return { kind: "glob", value: g, ...globToRegex(g) };
  }
  return { kind: "regex", value: p.regex ?? "" };
}

function valueOp(c: { exists?: boolean; equals?: string; matches?: string }): ValueOp {
  if (c.equals !== undefined) return "equals";
  if (c.matches !== undefined) return "matches";
  return c.exists === false ? "absent" : "exists";
}

/** The conjuncts of a condition (an empty list matches everything). */
export function conjuncts(c: Condition | undefined): CondNode[] {
  if (!c) return [];
  const out: CondNode[] = [];
  if (c.path !== undefined) out.push({ t: "path", alts: (Array.isArray(c.path) ? c.path : [c.path]).map(pathAlt) });
  if (c.extension) out.push({ t: "ext", set: [...new Set(c.extension.map((e) => e.toLowerCase()))].sort() });
  if (c.method) out.push({ t: "method", set: [...new Set(c.method)].sort() });
  if (c.host) {
    const hosts = c.host.map((h) => h.toLowerCase());
    out.push({
      t: "host",
      exact: hosts.filter((h) => !h.startsWith("*.")).sort(),
      suffix: hosts.filter((h) => h.startsWith("*.")).map((h) => h.slice(1)).sort(),
    });
  }
  if (c.header) {
    const op = valueOp(c.header);
    const value = c.header.equals ?? c.header.matches;
    out.push(value === undefined ? { t: "header", name: c.header.name.toLowerCase(), op } : { t: "header", name: c.header.name.toLowerCase(), op, value });
  }
  for (const [key, t] of [["cookie", "cookie"], ["query", "arg"]] as const) {
    const v = c[key];
    if (!v) continue;
    const op = v.equals !== undefined ? "equals" : v.exists === false ? "absent" : "exists";
    out.push(v.equals === undefined ? { t, name: v.name, op } : { t, name: v.name, op, value: v.equals });
  }
  if (c.country) out.push({ t: "country", source: countryVar(c.country), set: [...new Set(c.country.in)].sort() });
  if (c.clientIp) out.push({ t: "cidr", nets: [...c.clientIp] });
  if (c.userAgent) out.push({ t: "ua", patterns: [...c.userAgent] });
  for (const sub of c.all ?? []) out.push(...conjuncts(sub));
  if (c.any) out.push({ t: "or", c: c.any.map((s) => and(conjuncts(s))) });
  if (c.not) out.push({ t: "not", c: and(conjuncts(c.not)) });
  return out;
}

export function and(c: CondNode[]): CondNode {
  return c.length === 1 ? c[0]! : { t: "and", c };
}
