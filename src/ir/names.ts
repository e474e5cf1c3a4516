/**
 * The runtime names of src/contract/names.d.ts as values, for the compiler and the tests. Each table must
 * list exactly the names of its type (a missing or extra entry is a compile error), so a test can check that
 * every `cdn_*` name in templates, src/ and lua-src/ is a declared one.
 */
import type { CdnVar, CtxKey, FeatureStages, FeaturesData, MetricName, NginxName, Phase, SharedDictName, Stage, StageOrder } from "../contract/index.js";

export const CDN_VARS: Record<CdnVar, true> = {
  cdn_cache_key: true,
  cdn_disk_key: true,
  cdn_cache_bypass: true,
  cdn_nostore: true,
  cdn_cache_status: true,
  cdn_cache_mkey: true,
  cdn_cache_refresh: true,
  cdn_cache_lock: true,
  cdn_inm: true,
  cdn_ims: true,
  cdn_req: true,
  cdn_indexed_vars: true,
  cdn_client_addr: true,
  cdn_ratelimit: true,
  cdn_rules: true,
  cdn_rules_cookie: true,
  cdn_rules_key: true,
  cdn_rules_ttl: true,
  cdn_rules_nostore: true,
  cdn_origin_url: true,
  cdn_origin_host: true,
  cdn_upstream_host: true,
  cdn_hsts: true,
  cdn_hook_log: true,
  cdn_ws_upgrade: true,
  cdn_ws_connection: true,
  cdn_ws_rule: true,
  cdn_request_id: true,
};

export const SHARED_DICTS: Record<SharedDictName, true> = {
  cdn_meta: true,
  cdn_ram: true,
  cdn_purge: true,
  cdn_markers: true,
  cdn_ratelimit: true,
  cdn_experiments: true,
  cdn_metrics: true,
  cdn_hooks: true,
};

export const CTX_KEYS: Record<CtxKey, true> = {
  cdn_capture: true,
  cdn_pending_meta: true,
  cdn_client_ip: true,
  cdn_jwt_claims: true,
  cdn_hook_state: true,
  cdn_hook_body: true,
  cdn_body_limit: true,
  cdn_body_read: true,
};

export const NGINX_NAMES: Record<NginxName, true> = { cdn_disk: true, cdn_json: true, cdn_tls: true, cdn_conn: true, cdn_ws: true };

/** The metric families of the metrics endpoint, with their Prometheus type. */
export const METRIC_NAMES: Record<MetricName, "counter" | "gauge" | "histogram"> = {
  cdn_requests_total: "counter",
  cdn_cache_hits_total: "counter",
  cdn_sent_bytes_total: "counter",
  cdn_origin_received_bytes_total: "counter",
  cdn_origin_requests_total: "counter",
  cdn_origin_response_seconds: "histogram",
  cdn_edge_response_seconds: "histogram",
  cdn_gate_refusals_total: "counter",
  cdn_ratelimit_decisions_total: "counter",
  cdn_waf_matches_total: "counter",
  cdn_purges_total: "counter",
  cdn_purged_objects_total: "counter",
  cdn_redis_errors_total: "counter",
  cdn_shared_dict_capacity_bytes: "gauge",
  cdn_shared_dict_free_bytes: "gauge",
  cdn_build_info: "gauge",
};

/** The run order of src/contract/phases.d.ts as a value (the type makes it exactly that order). */
export const STAGE_ORDER: StageOrder = {
  access: ["client", "purge", "gate:secret", "gate:ip", "gate:rate", "gate:waf", "gate:jwt", "gate:signed", "gate:rate-claims", "rules", "client:body", "hooks:before-cache", "websocket", "cache", "headers", "rules:ttl", "hooks"],
  header: ["rate-limit", "rules:nostore", "cache", "purge", "headers", "rules:headers", "hooks", "compression"],
  body: ["hooks"],
  log: ["cache", "hooks", "metrics"],
  initWorker: ["origin-secret", "waf", "purge", "rules", "tls", "metrics"],
};

export const PHASES: readonly Phase[] = ["access", "header", "body", "log", "initWorker"];

// ---- compile-time checks of the contract itself --------------------------------------------------------

type Exact<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** Every feature with data declares its stages, and only those. */
const sameFeatures: Exact<keyof FeaturesData, keyof FeatureStages> = true;
/** Every declared stage belongs to its phase. */
type StagesOk = {
  [K in keyof FeatureStages]: {
    [P in keyof FeatureStages[K]]: P extends Phase ? (FeatureStages[K][P] extends Stage<P> ? true : false) : false;
  }[keyof FeatureStages[K]];
}[keyof FeatureStages];
const stagesInPhase: Exact<StagesOk | true, true> = true;
void sameFeatures;
void stagesInPhase;
