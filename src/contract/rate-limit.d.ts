import type { HeaderVar, SharedDictName } from "./names.js";
import type { PathSetData, ScopeData } from "./gate-scope.js";

/** One limit (src/features/rate-limit.ts -> lua-src/features/rate-limit/). */
export interface RateLimitLimitData {
  name: string;
  /**
   * Bucket key prefix: `<limit>:` in the shared dict, `cdn:rl:<policy>:<limit>:` in Redis (the nodes of one
   * policy share buckets; other policies using the same Redis do not).
   */
  prefix: string;
  /** Emission interval: seconds per request. */
  interval: number;
  /** Tolerance: burst * interval, seconds. */
  tolerance: number;
  /** Capacity (burst + 1), the RateLimit-Limit value. */
  limit: number;
  key: "ip" | "header" | "claim" | "group";
  /** The header's nginx variable (key "header"). */
  headerVar?: HeaderVar;
  /** The claim name (key "claim"). */
  claim?: string;
  group?: PathSetData;
  scope?: ScopeData;
  cluster: boolean;
  failOpen: boolean;
  /** RateLimit-* headers on admitted responses. */
  headers: boolean;
}

export interface RateLimitData {
  limits: RateLimitLimitData[];
  dict: SharedDictName;
  /** The cluster limiter's Redis script and its SHA-1. */
  script: string;
  sha: string;
}
