/** The headers feature's data (src/features/headers.ts -> lua-src/features/headers.ts). */

export interface HeaderRulesData {
  /** [name, value] pairs, sorted by name. */
  set: [string, string][];
  remove: string[];
}

export interface HeadersData {
  request: HeaderRulesData;
  response: HeaderRulesData;
  /** Response header that carries the cache status; absent: none. */
  cacheStatus?: string;
}
