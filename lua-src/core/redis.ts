import { features } from "./policy";
import { readEnv } from "./env";
import { countRedisError } from "./metrics";

/**
 * Connections to the fleet's Redis server (policy `redis`), pooled per worker with keepalive. Every call
 * is bounded by the policy's timeout; callers decide what a failure means (fail open / closed).
 *
 * A connection enters the pool only once it is ready: on a new connection AUTH (when the policy has a
 * password) and SELECT (when `db` is not 0) must succeed, else it is closed and `redisConnect` reports
 * the failure with its kind, so the callers can say "AUTH failed" once instead of "script error" per
 * request. Without a password a new connection is checked with PING, so a server that requires one
 * (NOAUTH) is recognised at connect, not by every command. Error replies of the client library are
 * `false` + message (a connection error is undefined + message): a false AUTH reply is a failed AUTH.
 */

/** Why `redisConnect` gave no client: unusable configuration, network, refused credentials, SELECT. */
export type RedisFailure = "config" | "connect" | "auth" | "select";

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

/** True for a Redis error reply that means the credentials were refused or are missing. */
export function isRedisAuthError(err: string | undefined): boolean {
  if (err === undefined) return false;
  const [head] = string.match(err, "^(%u+)");
  if (head === "NOAUTH" || head === "WRONGPASS") return true;
  // Redis < 6: "ERR invalid password"; a server without a password: "ERR AUTH <password> called without
  // any password configured..." / "ERR Client sent AUTH, but no password is set"
  const [at] = string.find(err, "password", 1, true);
  return head === "ERR" && at !== undefined;
}

function authHint(): string {
  if (data?.passwordEnv === undefined) return "the policy gives no redis.password";
  return password === undefined ? `environment variable ${data.passwordEnv} (redis.password) is empty or unset` : `check redis.password (environment variable ${data.passwordEnv})`;
}

/** A failed connection, counted in the metrics (`cdn_redis_errors_total{kind}`). */
function failed(this: void, err: string | undefined, kind: RedisFailure): LuaMultiReturn<[undefined, string | undefined, RedisFailure]> {
  countRedisError(kind);
  return $multi(undefined, err, kind);
}

/**
 * A connected, ready client (AUTH and SELECT done on new connections), or undefined, the reason and the
 * kind of failure. A connection that failed AUTH or SELECT is closed, never pooled.
 */
export function redisConnect(): LuaMultiReturn<[RedisClient | undefined, string | undefined, RedisFailure | undefined]> {
  if (data === undefined) return $multi(undefined, "no redis in the policy", "config");
  if (redisModule === undefined) return $multi(undefined, "no Redis client library (nginx.redis / resty.redis)", "config");
  const [red, err] = redisModule.new();
  if (red === undefined) return failed(err, "config");
  red.set_timeout(data.timeoutMs);
  const [ok, cerr] = red.connect(data.host, data.port);
  if (ok === undefined) return failed(cerr, "connect");
  const [reused] = red.get_reused_times();
  if (reused === 0) {
    // undefined: the connection failed (the client closed it); false: Redis answered with an error
    let res: unknown;
    let aerr: string | undefined;
    if (password !== undefined) [res, aerr] = red.auth(password);
    else [res, aerr] = red.ping();
    if (res === undefined || res === false) {
      red.close();
      if (res === false && (password !== undefined || isRedisAuthError(aerr))) {
        return failed(`AUTH failed (${tostring(aerr)}): ${authHint()}`, "auth");
      }
      return failed(tostring(aerr), "connect");
    }
    if (data.db !== 0) {
      const [sres, serr] = red.select(data.db);
      if (sres === undefined || sres === false) {
        red.close();
        if (sres === false && isRedisAuthError(serr)) return failed(`AUTH failed (${tostring(serr)}): ${authHint()}`, "auth");
        return failed("SELECT: " + tostring(serr), sres === false ? "select" : "connect");
      }
    }
  }
  return $multi(red, undefined, undefined);
}

/** Returns a healthy connection to the pool (after a failed call, `close()` it instead). */
export function redisRelease(red: RedisClient): void {
  red.set_keepalive(data!.idleMs, data!.poolSize);
}
