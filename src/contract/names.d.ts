/**
 * Runtime names shared by nginx.conf (templates, src/) and the Lua runtime (lua-src/). Each is a literal type:
 * a name spelt wrong is a compile error on both sides. Values used at run time on the Node side are listed
 * once in src/ir/names.ts, checked against these types.
 */

/** nginx variables the bundle declares (`set $name "";` in the edge server, or a `map`) for Lua and nginx. */
export type CdnVar =
  // cache
  | "cdn_cache_key"
  | "cdn_disk_key"
  | "cdn_cache_bypass"
  | "cdn_nostore"
  | "cdn_cache_status"
  | "cdn_cache_mkey"
  | "cdn_cache_refresh"
  | "cdn_cache_lock"
  | "cdn_inm"
  | "cdn_ims"
  | "cdn_req"
  | "cdn_indexed_vars"
  // client address (behind trusted proxies)
  | "cdn_client_addr"
  // rate limits
  | "cdn_ratelimit"
  // rules engine
  | "cdn_rules"
  | "cdn_rules_cookie"
  | "cdn_rules_key"
  | "cdn_rules_ttl"
  | "cdn_rules_nostore"
  | "cdn_origin_url"
  | "cdn_origin_host"
  | "cdn_upstream_host"
  // tls: the Strict-Transport-Security value on HTTPS requests ("" otherwise)
  | "cdn_hsts"
  // user hooks: the log hook's fields (the JSON access log's `hook`)
  | "cdn_hook_log"
  // websocket
  | "cdn_ws_upgrade"
  | "cdn_ws_connection"
  | "cdn_ws_rule"
  // request id
  | "cdn_request_id";

/** lua_shared_dict zones. */
export type SharedDictName = "cdn_meta" | "cdn_ram" | "cdn_purge" | "cdn_markers" | "cdn_ratelimit" | "cdn_experiments" | "cdn_metrics" | "cdn_hooks";

/** Keys of `ngx.ctx`, the per-request table the Lua features share. */
export type CtxKey = "cdn_capture" | "cdn_pending_meta" | "cdn_client_ip" | "cdn_jwt_claims" | "cdn_hook_state" | "cdn_hook_body" | "cdn_body_limit" | "cdn_body_read";

/**
 * Metric families the metrics endpoint exposes (lua-src/features/metrics.ts; docs/metrics.md describes each,
 * the bundled Grafana dashboard queries only these). Histograms add `_bucket`, `_sum` and `_count`.
 */
export type MetricName =
  | "cdn_requests_total"
  | "cdn_cache_hits_total"
  | "cdn_sent_bytes_total"
  | "cdn_origin_received_bytes_total"
  | "cdn_origin_requests_total"
  | "cdn_origin_response_seconds"
  | "cdn_edge_response_seconds"
  | "cdn_gate_refusals_total"
  | "cdn_ratelimit_decisions_total"
  | "cdn_waf_matches_total"
  | "cdn_purges_total"
  | "cdn_purged_objects_total"
  | "cdn_redis_errors_total"
  | "cdn_shared_dict_capacity_bytes"
  | "cdn_shared_dict_free_bytes"
  | "cdn_build_info";

/** Other names the generated nginx.conf gives (cache zone, log format). */
export type NginxName = "cdn_disk" | "cdn_json" | "cdn_tls" | "cdn_conn" | "cdn_ws";

/** The nginx variable of a request header: `X-Api-Key` -> `http_x_api_key`. */
export type HeaderVar = `http_${string}`;
/** The nginx variable of a request cookie. */
export type CookieVar = `cookie_${string}`;
/** The nginx variable of a query argument. */
export type ArgVar = `arg_${string}`;
/** A variable nginx reads from a request (headers, cookies, query arguments). */
export type RequestVar = HeaderVar | CookieVar | ArgVar;
