import type { Feature } from "./shared/feature.js";
import { pointer } from "../validate/diagnostic.js";
import { checkDuration } from "../validate/checks.js";
import { durationMs } from "../util/units.js";
import { useEnv } from "../ir/env.js";

import type { RedisData } from "../contract/index.js";

/**
 * The fleet's Redis server: connection settings for the Lua features that use it (cluster rate limits,
 * purge fan-out) through `lua-src/core/redis.ts`, and `lua_socket_log_errors off` so a stopped Redis does
 * not log a socket error per request (those features log their own throttled warnings).
 */
export const redis: Feature = {
  name: "redis",
  runtime: { key: "redis", stages: {} },
  check(policy) {
    const r = policy.redis;
    if (!r) return [];
    return [
      ...checkDuration(r.timeout, pointer("redis", "timeout"), { timer: true }),
      ...checkDuration(r.idleTimeout, pointer("redis", "idleTimeout"), { timer: true }),
    ];
  },
  lower(policy, ir) {
    const r = policy.redis;
    if (!r) return;
    const data: RedisData = {
      host: r.host ?? "127.0.0.1",
      port: r.port ?? 6379,
      db: r.db ?? 0,
      timeoutMs: durationMs(r.timeout ?? "50ms")!,
      poolSize: r.poolSize ?? 32,
      idleMs: durationMs(r.idleTimeout ?? "60s")!,
    };
    if (r.password) data.passwordEnv = useEnv(ir, r.password);
    ir.luaData.redis = data;
    ir.slots.http.push({ partial: "redis", data: {} });
  },
};
