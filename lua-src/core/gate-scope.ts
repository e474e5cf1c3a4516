/** Path scoping of access gates: compiled once at init from `ScopeData` (src/features/shared/gate-scope.ts). */
import type { PathSetData, ScopeData } from "../../src/contract/index";
import { compileOrFail, warnLimited } from "./regex";

/** Returns true when the gate applies to the current request. */
export type ScopeMatcher = () => boolean;

/**
 * Whether the path is in the set. The regexes are the compiler's linear-time globs; should PCRE still give up
 * on one, the answer is `onError`, the one that keeps the gate applied.
 */
function inSet(set: PathSetData, uri: string, onError: boolean): boolean {
  if (set.exact[uri] === true) return true;
  const prefixes = set.prefix;
  for (let i = 0; i < prefixes.length; i++) {
    const p = prefixes[i];
    if (string.sub(uri, 1, p.length) === p) return true;
  }
  const res = set.re;
  for (let i = 0; i < res.length; i++) {
    const [from, , err] = ngx.re.find(uri, res[i], "jo");
    if (from !== undefined) return true;
    if (err !== undefined) {
      warnLimited("scope", "gate scope: a path pattern could not be evaluated (" + err + "), the gate applies");
      return onError;
    }
  }
  return false;
}

const always: ScopeMatcher = () => true;

/** A matcher for a gate's scope; gates without a scope get one that always applies. */
export function compileScope(scope: ScopeData | undefined): ScopeMatcher {
  if (scope === undefined) return always;
  const only = scope.only;
  const except = scope.except;
  for (const set of [only, except]) if (set !== undefined) for (const re of set.re) compileOrFail(re, "jo", "gate path scope");
  return () => {
    const uri = ngx.var.get("uri")!;
    if (only !== undefined && !inSet(only, uri, true)) return false;
    if (except !== undefined && inSet(except, uri, false)) return false;
    return true;
  };
}
