/** Path scoping of access gates: compiled once at init from `ScopeData` (src/features/shared/gate-scope.ts). */
import type { PathSetData, ScopeData } from "../../src/contract/index";

/** Returns true when the gate applies to the current request. */
export type ScopeMatcher = () => boolean;

function inSet(set: PathSetData, uri: string): boolean {
  if (set.exact[uri] === true) return true;
  const prefixes = set.prefix;
  for (let i = 0; i < prefixes.length; i++) {
    const p = prefixes[i];
    if (string.sub(uri, 1, p.length) === p) return true;
  }
  const res = set.re;
  for (let i = 0; i < res.length; i++) {
    const [from] = ngx.re.find(uri, res[i], "jo");
    if (from !== undefined) return true;
  }
  return false;
}

const always: ScopeMatcher = () => true;

/** A matcher for a gate's scope; gates without a scope get one that always applies. */
export function compileScope(scope: ScopeData | undefined): ScopeMatcher {
  if (scope === undefined) return always;
  const only = scope.only;
  const except = scope.except;
  return () => {
    const uri = ngx.var.get("uri")!;
    if (only !== undefined && !inSet(only, uri)) return false;
    if (except !== undefined && inSet(except, uri)) return false;
    return true;
  };
}
