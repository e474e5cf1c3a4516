/** Path scoping of access gates (src/features/shared/gate-scope.ts lowers it, lua-src/core/gate-scope.ts matches). */

/** A set of path patterns: a hash of exact paths, then prefixes, then PCRE regexes. */
export interface PathSetData {
  exact: Record<string, true>;
  prefix: string[];
  re: string[];
}

/** The lowered form of a gate's `paths` / `exceptPaths`; absent when the gate applies everywhere. */
export interface ScopeData {
  only?: PathSetData;
  except?: PathSetData;
}
