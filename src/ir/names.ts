/**
 * The runtime names of src/contract/names.d.ts as values, for the compiler and the tests. Each table must
 * list exactly the names of its type (a missing or extra entry is a compile error), so a test can check that
 * every `cdn_*` name in templates, src/ and lua-src/ is a declared one.
 */
import type { CdnVar, CtxKey, FeatureStages, FeaturesData, NginxName, Phase, SharedDictName, Stage, StageOrder } from "../contract/index.js";

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
};

export const CTX_KEYS: Record<CtxKey, true> = {
  cdn_capture: true,
  cdn_pending_meta: true,
  cdn_client_ip: true,
  cdn_jwt_claims: true,
  cdn_body_limit: true,
  cdn_body_read: true,
};

export const NGINX_NAMES: Record<NginxName, true> = { cdn_disk: true, cdn_json: true, cdn_conn: true, cdn_ws: true };

/** The run order of src/contract/phases.d.ts as a value (the type makes it exactly that order). */
export const STAGE_ORDER: StageOrder = {
  access: ["client", "purge", "gate:secret", "gate:ip", "gate:rate", "gate:waf", "gate:jwt", "gate:signed", "gate:rate-claims", "rules", "client:body", "websocket", "cache", "headers", "rules:ttl"],
  header: ["rate-limit", "rules:nostore", "cache", "purge", "headers", "rules:headers", "compression"],
  body: [],
  log: ["cache"],
  initWorker: ["origin-secret", "waf", "purge", "rules"],
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
