/**
 * Path scoping of access gates: compiled once at init from `ScopeData` (src/features/shared/gate-scope.ts).
 *
 * A gate must not be walked past by another spelling of a gated path that the origin reads as the same one
 * (security issue 11 §7). So a scope reads the request's path several ways, and applies when any reading is
 * in `paths` and not every reading is in `exceptPaths` (a spelling either way gets the gate):
 * - nginx's `$uri`: percent-decoded once, `.` / `..` segments resolved, `//` merged;
 * - the same with `;params` removed from every segment (`/jwt;x/a` is `/jwt/a` to Tomcat, Spring, Jetty),
 *   `\` read as `/` and `//` merged again;
 * - when `%` is left (`/os%252Fa`), that path decoded once more (an origin that decodes twice);
 * - with `caseInsensitive` (an origin declared so: IIS, Windows or macOS file systems), every reading in
 *   lower case, and also with each segment's `:stream` suffix and trailing dots and spaces removed (Windows
 *   reads `a.zip.`, `a.zip ` and `a.zip::$DATA` as `a.zip`); patterns are lower-cased at init.
 */
import type { PathSetData, ScopeData } from "../../src/contract/index";
import { compileOrFail, warnLimited } from "./regex";
import { pathMatching } from "./policy";

/** Returns true when the gate applies to the current request. */
export type ScopeMatcher = () => boolean;

const ci = pathMatching !== undefined && pathMatching.caseInsensitive;
const find = string.find;
const gsub = string.gsub;
const lower = string.lower;

/**
 * Whether the path is in the set. The regexes are the compiler's linear-time globs; should PCRE still give up
 * on one, the answer is `onError`, the one that keeps the gate applied.
 */
function inSet(set: PathSetData, uri: string, reFlags: string, onError: boolean): boolean {
  if (set.exact[uri] === true) return true;
  const prefixes = set.prefix;
  for (let i = 0; i < prefixes.length; i++) {
    const p = prefixes[i];
    if (string.sub(uri, 1, p.length) === p) return true;
  }
  const res = set.re;
  for (let i = 0; i < res.length; i++) {
    const [from, , err] = ngx.re.find(uri, res[i], reFlags);
    if (from !== undefined) return true;
    if (err !== undefined) {
      warnLimited("scope", "gate scope: a path pattern could not be evaluated (" + err + "), the gate applies");
      return onError;
    }
  }
  return false;
}

/** `;params` removed from every segment, `\` as `/`, runs of `/` as one. */
function withoutParams(p: string): string {
  let [out] = gsub(p, ";[^/]*", "");
  [out] = gsub(out, "\\", "/");
  [out] = gsub(out, "//+", "/");
  return out;
}

/** How Windows reads a path: each segment without its `:stream` suffix and trailing dots and spaces. */
function windowsForm(p: string): string {
  let [out] = gsub(p, ":[^/]*", "");
  [out] = gsub(out, "[%. ]+/", "/");
  [out] = gsub(out, "([^/])[%. ]+$", "%1");
  return out;
}

/** True when `base` (lower-cased when `ci`) has other readings than itself. */
function hasReadings(base: string): boolean {
  if (find(base, "[;\\%%]")[0] !== undefined) return true;
  return ci && (find(base, ":", 1, true)[0] !== undefined || find(base, "[%. ]/")[0] !== undefined || find(base, "[%. ]$")[0] !== undefined);
}

/** Every reading of `base` the scope is checked against (see above). */
function readings(base: string): string[] {
  const out = [base];
  const plain = withoutParams(base);
  if (plain !== base) out.push(plain);
  if (find(plain, "%", 1, true)[0] !== undefined) {
    const again = withoutParams(ci ? lower(ngx.unescape_uri(plain)) : ngx.unescape_uri(plain));
    if (again !== plain) out.push(again);
  }
  if (ci) {
    const n = out.length;
    for (let i = 0; i < n; i++) {
      const w = windowsForm(out[i]);
      if (w !== out[i]) out.push(w);
    }
  }
  return out;
}

/** A copy of `set` with every pattern lower-cased (case-insensitive matching; regexes get the "i" flag). */
function lowered(set: PathSetData): PathSetData {
  const exact: Record<string, true> = {};
  for (const [k] of pairs(set.exact)) exact[lower(k as string)] = true;
  return { exact, prefix: set.prefix.map((p) => lower(p)), re: set.re };
}

const always: ScopeMatcher = () => true;

/** A matcher for a gate's scope; gates without a scope get one that always applies. */
export function compileScope(scope: ScopeData | undefined): ScopeMatcher {
  if (scope === undefined) return always;
  const only = scope.only !== undefined && ci ? lowered(scope.only) : scope.only;
  const except = scope.except !== undefined && ci ? lowered(scope.except) : scope.except;
  const flags = ci ? "joi" : "jo";
  for (const set of [only, except]) if (set !== undefined) for (const re of set.re) compileOrFail(re, flags, "gate path scope");
  return () => {
    const uri = ngx.var.get("uri")!;
    const base = ci ? lower(uri) : uri;
    // most paths have one reading: no table is built for them
    if (!hasReadings(base)) return (only === undefined || inSet(only, base, flags, true)) && (except === undefined || !inSet(except, base, flags, false));
    const rs = readings(base);
    if (only !== undefined) {
      let any = false;
      for (const r of rs) {
        if (inSet(only, r, flags, true)) {
          any = true;
          break;
        }
      }
      if (!any) return false;
    }
    if (except !== undefined) {
      for (const r of rs) if (!inSet(except, r, flags, false)) return true;
      return false;
    }
    return true;
  };
}
