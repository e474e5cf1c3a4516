/** Rate limits' policy data (src/features/rate-limit.ts builds it: `RateLimitData`, `LimitData`). */

interface RateLimitLimitData {
  name: string;
  prefix: string;
  /** Seconds per request. */
  interval: number;
  /** burst * interval, seconds. */
  tolerance: number;
  /** burst + 1 */
  limit: number;
  key: "ip" | "header" | "claim" | "group";
  arg?: string;
  group?: import("../core/gate-scope").PathSetData;
  scope?: import("../core/gate-scope").ScopeData;
  cluster: boolean;
  failOpen: boolean;
  headers: boolean;
}

interface RateLimitData {
  limits: RateLimitLimitData[];
  dict: string;
  script: string;
  sha: string;
}

interface FeaturesData {
  rateLimit?: RateLimitData;
}

interface Ngx {
  /** Refreshes nginx's cached clock (ngx.now is otherwise the time of the current event loop turn). */
  update_time(this: void): void;
}

interface RedisClient {
  /** EVALSHA: the script's reply, `false` + message on an error reply (NOSCRIPT...), nil + error on I/O failure. */
  evalsha(sha: string, numKeys: number, ...args: (string | number)[]): LuaMultiReturn<[unknown, string | undefined]>;
  eval(script: string, numKeys: number, ...args: (string | number)[]): LuaMultiReturn<[unknown, string | undefined]>;
}
