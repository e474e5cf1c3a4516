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

/**
 * How gate scopes read a request's path (policy-wide): nginx's normalised `$uri`, the same with `;params`
 * removed from every segment, and decoded once more when it still holds `%`; with `caseInsensitive` (an
 * origin declared so), lower-cased and read as Windows reads a file name too.
 */
export interface PathMatchingData {
  caseInsensitive: boolean;
}
