/** The cache feature's policy data beyond the key/bypass fields (src/features/cache.ts builds it). */

interface CacheData {
  /** Requests with Authorization skip the lookup (stored only when the response allows it). */
  authBypass: boolean;
  /** Heuristic TTL in seconds per status ("200", ..., "any") when the origin gives no freshness. */
  ttl: LuaTable<string, number>;
  /** Policy defaults of the stale windows (seconds), used when the origin neither grants nor forbids. */
  swr: number;
  sie: number;
  revalidate: boolean;
  /** Cap of any freshness lifetime (seconds); nginx keeps objects this long at most. */
  maxLifetime: number;
  /** How long requests wait for another request refreshing the same stale key (seconds). */
  lockTimeout: number;
  /** Timeout of a refresh through the edge itself (ms). */
  refreshTimeoutMs: number;
  ram?: { maxObjectSize: number; minHits: number };
}
