/**
 * The contract between the compiler (src/) and the Lua runtime (lua-src/): declarations only, imported with
 * `import type` by both TypeScript projects. A field renamed on one side is a compile error on the other.
 *
 * - `FeaturesData`: what each feature hands from the compiler to its Lua side (`ir.luaData`, emitted as
 *   lua/policy_data.lua; the Lua feature's `setup` receives its entry).
 * - `FeatureStages` / `StageOrder` (phases.d.ts): when each feature's handlers run.
 * - Runtime names (names.d.ts): nginx variables, shared dicts, ngx.ctx keys.
 */
import type { CacheData } from "./cache.js";
import type { ClientData } from "./client.js";
import type { CompressionData } from "./compression.js";
import type { WebSocketData } from "./websocket.js";
import type { ClientAddressData } from "./client-address.js";
import type { HeadersData } from "./headers.js";
import type { HooksData } from "./hooks.js";
import type { IpRulesData } from "./ip-rules.js";
import type { JwtData } from "./jwt.js";
import type { OriginSecretData } from "./origin-secret.js";
import type { PurgeData } from "./purge.js";
import type { RateLimitData } from "./rate-limit.js";
import type { RedisData } from "./redis.js";
import type { RulesData } from "./rules.js";
import type { SignedUrlsData } from "./signed-urls.js";
import type { WafData } from "./waf.js";
import type { TlsData } from "./tls.js";
import type { MetricsData } from "./metrics.js";
import type { FeatureStages, PhasePlan } from "./phases.js";
import type { PathMatchingData } from "./gate-scope.js";

export type * from "./names.js";
export type * from "./phases.js";
export type * from "./gate-scope.js";
export type * from "./ip.js";
export type * from "./cache.js";
export type * from "./client.js";
export type * from "./compression.js";
export type * from "./websocket.js";
export type * from "./client-address.js";
export type * from "./headers.js";
export type * from "./hooks.js";
export type * from "./ip-rules.js";
export type * from "./jwt.js";
export type * from "./origin-secret.js";
export type * from "./purge.js";
export type * from "./rate-limit.js";
export type * from "./redis.js";
export type * from "./rules.js";
export type * from "./signed-urls.js";
export type * from "./waf.js";
export type * from "./tls.js";
export type * from "./metrics.js";

/** The data of every runtime feature, by its key (the camelCase policy key). */
export interface FeaturesData {
  clientAddress: ClientAddressData;
  originSecret: OriginSecretData;
  ipRules: IpRulesData;
  rateLimit: RateLimitData;
  waf: WafData;
  jwt: JwtData;
  signedUrls: SignedUrlsData;
  rules: RulesData;
  cache: CacheData;
  purge: PurgeData;
  headers: HeadersData;
  redis: RedisData;
  tls: TlsData;
  metrics: MetricsData;
  hooks: HooksData;
  client: ClientData;
  websocket: WebSocketData;
  compression: CompressionData;
}

export type FeatureKey = keyof FeaturesData;

/** lua/policy_data.lua: the policy as the runtime sees it. A feature without an entry is off. */
export interface PolicyData {
  name: string;
  features: Partial<FeaturesData>;
  phases: PhasePlan;
  /** How the gates' path scopes read a request's path (lua-src/core/gate-scope.ts). */
  paths: PathMatchingData;
}

// Every feature with data declares its stages, and only those.
type Exact<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export type ContractChecks = [Exact<keyof FeaturesData, keyof FeatureStages>] extends [true] ? true : never;
