/** The headers feature's data (src/features/headers.ts -> lua-src/features/headers.ts). */

/**
 * A header value (lua-src/core/header-value.ts): a fixed string, the nginx variable to read per request
 * (`decode`: URL-decoded first), or an environment variable read at start.
 */
export type HeaderValueData = string | { var: string; decode?: boolean; env?: undefined } | { env: string; var?: undefined; decode?: undefined };

export interface HeaderRulesData {
  /** [name, value] pairs, sorted by name. */
  set: [string, HeaderValueData][];
  remove: string[];
}

export interface HeadersData {
  request: HeaderRulesData;
  response: HeaderRulesData;
  /** Response header that carries the cache status; absent: none. */
  cacheStatus?: string;
}
