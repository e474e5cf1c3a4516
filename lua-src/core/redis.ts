import { features } from "./policy";
import { readEnv } from "./env";

/**
 * Connections to the fleet's Redis server (policy `redis`), pooled per worker with keepalive. Every call
 * is bounded by the policy's timeout; callers decide what a failure means (fail open / closed).
 */

function loadModule(): RedisModule | undefined {
  for (const name of ["nginx.redis", "resty.redis"]) {
    const [ok, mod] = pcall(require, name);
    if (ok) return mod as RedisModule;
  }
  return undefined;
}

const redisModule = loadModule();
const data = features.redis;
const password = data !== undefined && data.passwordEnv !== undefined ? readEnv(data.passwordEnv) : undefined;

/** True when the policy configures Redis and a client library is installed. */
export function redisConfigured(): boolean {
  return data !== undefined && redisModule !== undefined;
}

/** A connected client (AUTH and SELECT done on new connections), or undefined and the reason. */
export function redisConnect(): LuaMultiReturn<[RedisClient | undefined, string | undefined]> {
  if (data === undefined) return $multi(undefined, "no redis in the policy");
  if (redisModule === undefined) return $multi(undefined, "no Redis client library (nginx.redis / resty.redis)");
  const [red, err] = redisModule.new();
  if (red === undefined) return $multi(undefined, err);
  red.set_timeout(data.timeoutMs);
  const [ok, cerr] = red.connect(data.host, data.port);
  if (ok === undefined) return $multi(undefined, cerr);
  const [reused] = red.get_reused_times();
  if (reused === 0) {
    if (password !== undefined) {
      const [res, aerr] = red.auth(password);
      if (res === undefined) {
        red.close();
        return $multi(undefined, "AUTH: " + tostring(aerr));
      }
    }
    if (data.db !== 0) {
      const [res, serr] = red.select(data.db);
      if (res === undefined) {
        red.close();
        return $multi(undefined, "SELECT: " + tostring(serr));
      }
    }
  }
  return $multi(red, undefined);
}

/** Returns a healthy connection to the pool (after a failed call, `close()` it instead). */
export function redisRelease(red: RedisClient): void {
  red.set_keepalive(data!.idleMs, data!.poolSize);
}
