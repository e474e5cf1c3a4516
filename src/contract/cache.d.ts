import type { CookieVar, HeaderVar } from "./names.js";

/** The cache feature's data (src/features/cache.ts -> lua-src/features/cache/). */
export interface CacheData {
  /** Query string in the key: all (sorted), none, or the `allow` list (sorted). */
  query: "all" | "none" | "allow";
  allow: Record<string, true>;
  /** Scheme and host in the key. */
  host: boolean;
  bypassHeaderVars: HeaderVar[];
  /**
   * Request headers whose values (every one a client sent) are part of the key: forwarding headers the policy
   * lets through (`headers.allowOverrides` with `cache: "key"`); lower-case names, sorted; absent when none.
   */
  keyHeaders?: string[];
  bypassCookieVars: CookieVar[];
  /** Requests with Authorization skip the lookup (stored only when the response allows it). */
  authBypass: boolean;
  /** TTL in seconds per status ("200", ..., "any") when the origin gives no freshness. */
  ttl: Record<string, number>;
  /** Policy defaults of the stale windows (seconds), used when the origin neither grants nor forbids. */
  swr: number;
  sie: number;
  revalidate: boolean;
  /** Cap of any freshness lifetime (seconds); nginx keeps objects this long at most. */
  maxLifetime: number;
  /** How long requests wait for another request refreshing the same key (seconds). */
  lockTimeout: number;
  /** Timeout of a refresh through the edge itself (ms). */
  refreshTimeoutMs: number;
  ram?: { maxObjectSize: number; minHits: number };
  /** Disk cache folder (relative: to the nginx prefix), levels 1:2. */
  diskPath: string;
  /** Folder of the state that outlives restarts: the markers journal (relative: to the nginx prefix). */
  statePath: string;
  /** Seconds a purge / invalidation marker lives: the longest an object stored before it can stay. */
  markerTtl: number;
  /** The workers' user (given the state folder when the master runs as root). */
  workerUser: string;
  /** Keep the purge tags (Cache-Tag, Surrogate-Key) of stored objects: the purge feature is on. */
  tags: boolean;
  /** Honour the client's Cache-Control / Pragma request directives (RFC 9111 5.2.1). */
  clientDirectives: boolean;
  /** Keep `$cdn_cache_status` set on every response (the access log reads it); else only the header filters use the label. */
  statusVar: boolean;
  /** Store responses with Set-Cookie (the header is then sent only to the client that fetched it). */
  storeSetCookie: boolean;
  /** The edge's Surrogate-Control device token (lower case); absent when the policy ignores Surrogate-Control. */
  surrogateToken?: string;
  /** Heuristic freshness without explicit freshness: this fraction of the time since Last-Modified, at most `max` seconds. */
  heuristic: { fraction: number; max: number };
}
