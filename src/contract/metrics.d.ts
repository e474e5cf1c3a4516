/**
 * The metrics feature's data (src/features/metrics.ts -> lua-src/features/metrics.ts). Everything a label
 * can take is decided here, at build time, so the series stay bounded whatever the traffic.
 */
export interface MetricsData {
  /** The shared dict the counters live in. */
  dict: "cdn_metrics";
  /** Exact server names (lower case): a request's `host` label is its host when listed here, else "other". */
  hosts: string[];
  /** Wildcard server names (`*.example.com` or `example.*`): a matching host is labelled with the pattern. */
  wildcards: string[];
  /**
   * True when the host label needs the request's `Host` (more than one name, or a wildcard); otherwise every
   * request gets `fixedHost`.
   */
  readHost: boolean;
  /** The host label of every request when `readHost` is false. */
  fixedHost: string;
  /** The pool requests go to unless a rule routes them. */
  defaultPool: string;
  /** With rules that route to pools: `$cdn_origin_url` value -> pool name. Absent when nothing is routed. */
  routedUrls?: Record<string, string>;
  /** True when the cache feature labels responses (`$cdn_cache_status`). */
  cache: boolean;
  /** Upper bounds (seconds) of the edge response time histogram, ascending. */
  edgeBuckets: number[];
  /** Upper bounds (seconds) of the origin response time histogram, ascending. */
  originBuckets: number[];
  /** The policy's name (the `policy` label of `cdn_build_info`, and /__stats). */
  name: string;
  /**
   * With `redis` in the policy: the prefix of the per-minute fleet aggregates worker 0 adds to Redis
   * (`<prefix>:<minute start>`, a hash of summed totals).
   */
  redisPrefix?: string;
}
