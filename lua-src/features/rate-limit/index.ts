import type { LuaFeature } from "../../core/feature";
import type { RateLimitData, RateLimitLimitData } from "../../../src/contract/index";
import { compileScope, type ScopeMatcher } from "../../core/gate-scope";
import { isRedisAuthError, redisConnect, redisRelease } from "../../core/redis";
import { clientAddress } from "../../core/client-address";
import { bucketKey, claimOf } from "./key";
import { isEdgeRefresh } from "../cache/refresh";
import { countRateLimit, countRedisError, countRefusal } from "../../core/metrics";

/**
 * Rate limits: token buckets in the GCRA form. A bucket is one number, its "theoretical arrival time"
 * (TAT): with T = 1/rate and tau = burst * T, a request at `now` is admitted when TAT - now <= tau, and then
 * TAT = max(TAT, now) + T. That is exactly a token bucket of burst + 1 tokens refilled at `rate`
 * (TAT - now is the time the bucket needs to be full again; no TAT, or one in the past, is a full bucket).
 *
 * Node scope (lua_shared_dict `cdn_ratelimit`, shared by every worker of this nginx):
 *   The dict has no compare-and-swap, and `max(TAT, now) + T` is not expressible with `incr` alone (an
 *   idle bucket must be clamped to now, and two workers clamping at once would both add their catch-up).
 *   So the read-modify-write of one bucket runs under a per-bucket lock taken with `add` (atomic: only one
 *   worker can create the lock key). The critical section is get + arithmetic + set, with nothing that
 *   yields, so inside one worker no other request can ever hold the lock we wait for; only another worker
 *   can, for a microsecond or two. We therefore spin on `add` a few times, then sleep 1 ms between tries
 *   (the holder may have been descheduled), and the lock key expires after LOCK_TTL so a worker that dies
 *   holding it cannot wedge the bucket (the price: a holder descheduled for longer than LOCK_TTL may race
 *   with the next holder, which can cost one extra admission). The clock is refreshed (ngx.update_time)
 *   inside the lock, so the holders see non-decreasing times. Refused requests do not write: the bucket
 *   only changes when a token is taken.
 *
 * Cluster scope (Redis): one EVALSHA per request and limit of the same algorithm, run atomically by Redis
 *   on Redis' clock (TIME), so nodes with skewed clocks still share one exact bucket. The script's SHA-1 is
 *   computed at build time; a NOSCRIPT reply (new or flushed Redis) is answered with EVAL, which also
 *   caches the script for the next EVALSHA, so there is never an extra round trip for SCRIPT LOAD. On a
 *   Redis error the limit fails open (admits) or closed (429, Retry-After: 1) as the policy says; a failed
 *   connect or AUTH (a wrong or missing password) makes the worker skip Redis for DOWN_BACKOFF seconds,
 *   and a warning (saying "AUTH failed" for refused credentials) is logged at most once per WARN_EVERY
 *   seconds per node.
 *
 * Headers: the access phase leaves "limit;remaining;reset[;retry]" of the most constrained limit in
 * $cdn_ratelimit (a variable survives internal redirects, ngx.ctx would not); the header phase turns it
 * into RateLimit-Limit / RateLimit-Remaining / RateLimit-Reset (+ Retry-After on a 429).
 *
 * Refreshes the cache sends through the edge itself (stale-while-revalidate) are not limited: they are
 * the edge's own traffic, triggered by a client request that already took its token.
 *
 * Claim-keyed limits need the claims the JWT gate verified (ngx.ctx.cdn_jwt_claims), so they run in the
 * stage "gate:rate-claims", after the JWT gate; every other limit runs in "gate:rate", right after the IP
 * rules.
 */

const LOCK_TTL = 0.1;
const SPIN = 16;
const MAX_TRIES = 120;
const DOWN_BACKOFF = 1;
const WARN_EVERY = 10;

const ngxVar = ngx.var;
const ngxHeader = ngx.header;
const ngxNow = ngx.now;
const updateTime = ngx.update_time;
const ngxSleep = ngx.sleep;
const ngxLog = ngx.log;
const floor = math.floor;
const ceil = math.ceil;

interface Limit {
  d: RateLimitLimitData;
  applies: ScopeMatcher | undefined;
  inGroup: ScopeMatcher | undefined;
  intervalUs: number;
  toleranceUs: number;
}

/** Per worker: Redis is not tried again before this time after a failed connect. */
let redisDownUntil = 0;

function compileLimits(data: RateLimitData, late: boolean): Limit[] {
  const out: Limit[] = [];
  for (const d of data.limits) {
    if ((d.key === "claim") !== late) continue;
    out.push({
      d,
      applies: d.scope === undefined ? undefined : compileScope(d.scope),
      inGroup: d.group === undefined ? undefined : compileScope({ only: d.group }),
      intervalUs: d.interval * 1e6,
      toleranceUs: d.tolerance * 1e6,
    });
  }
  return out;
}

function keyOf(d: RateLimitLimitData): string {
  const kind = d.key;
  let value: unknown = undefined;
  if (kind === "header") value = ngxVar.get(d.headerVar!);
  else if (kind === "claim") value = claimOf(ngx.ctx.get("cdn_jwt_claims"), d.claim!);
  return bucketKey(kind, value, undefined) ?? bucketKey("ip", undefined, clientAddress())!;
}

/** Takes a token from a node bucket: admitted, and TAT - now after the decision (seconds). */
function nodeTake(dict: NgxSharedDict, d: RateLimitLimitData, key: string): LuaMultiReturn<[boolean, number]> {
  const k = d.prefix + key;
  const lockKey = k + "\0lock";
  let locked = false;
  for (let i = 1; i <= MAX_TRIES; i++) {
    const [ok, err] = dict.add(lockKey, true, LOCK_TTL);
    if (ok) {
      locked = true;
      break;
    }
    if (err !== "exists") break; // out of memory: go on unlocked rather than refuse or stall
    if (i > SPIN) ngxSleep(0.001);
  }
  updateTime();
  const now = ngxNow();
  const [stored] = dict.get(k);
  let tat = stored as number | undefined;
  if (tat === undefined || tat < now) tat = now;
  let admitted = false;
  if (tat - now <= d.tolerance) {
    tat = tat + d.interval;
    admitted = true;
    dict.set(k, tat, tat - now + 0.01);
  }
  if (locked) dict.delete(lockKey);
  return $multi(admitted, tat - now);
}

function warnOnce(dict: NgxSharedDict | undefined, message: string): void {
  if (dict !== undefined) {
    const [ok] = dict.add("\0redis-warned", true, WARN_EVERY);
    if (!ok) return;
  }
  ngxLog(ngx.WARN, message);
}

/**
 * Takes a token from a Redis bucket: 1 admitted / 0 refused / -1 Redis failed, and TAT - now (seconds).
 */
function clusterTake(data: RateLimitData, dict: NgxSharedDict | undefined, lim: Limit, key: string): LuaMultiReturn<[number, number]> {
  const d = lim.d;
  const now = ngxNow();
  if (now < redisDownUntil) return $multi(-1, 0);
  const [red, cerr, kind] = redisConnect();
  if (red === undefined) {
    redisDownUntil = now + DOWN_BACKOFF;
    const what = kind === "auth" ? `Redis ${tostring(cerr)}` : `Redis unreachable (${tostring(cerr)})`;
    warnOnce(dict, `rate limit "${d.name}": ${what}, failing ${d.failOpen ? "open" : "closed"}; retried every ${DOWN_BACKOFF}s per worker`);
    return $multi(-1, 0);
  }
  const k = d.prefix + key;
  let [res, err] = red.evalsha(data.sha, 1, k, lim.intervalUs, lim.toleranceUs);
  if (res === false && string.sub(tostring(err), 1, 8) === "NOSCRIPT") {
    [res, err] = red.eval(data.script, 1, k, lim.intervalUs, lim.toleranceUs);
  }
  if (res === false && isRedisAuthError(err)) {
    countRedisError("auth");
    // credentials refused on a pooled connection (password or ACL changed): drop it, back off like a failed connect
    red.close();
    redisDownUntil = now + DOWN_BACKOFF;
    warnOnce(dict, `rate limit "${d.name}": Redis AUTH failed (${tostring(err)}), failing ${d.failOpen ? "open" : "closed"}; retried every ${DOWN_BACKOFF}s per worker`);
    return $multi(-1, 0);
  }
  if (res === undefined || res === null) {
    countRedisError("command");
    red.close();
    warnOnce(dict, `rate limit "${d.name}": Redis call failed (${tostring(err)}), failing ${d.failOpen ? "open" : "closed"}`);
    return $multi(-1, 0);
  }
  redisRelease(red);
  if (res === false || type(res) !== "table") {
    countRedisError("command");
    warnOnce(dict, `rate limit "${d.name}": Redis script error (${tostring(err)}), failing ${d.failOpen ? "open" : "closed"}`);
    return $multi(-1, 0);
  }
  const r = res as LuaTable<number, number>;
  return $multi(r.get(1) === 1 ? 1 : 0, (tonumber(r.get(2)) ?? 0) / 1e6);
}

function refuse(d: RateLimitLimitData, wait: number, full: number, decision = "limited"): never {
  countRefusal("rate-limit", decision === "limited" ? "limited" : "redis unavailable");
  countRateLimit(d.name, decision);
  const retry = ceil(wait);
  ngxVar.set("cdn_ratelimit", `${d.limit};0;${ceil(full)};${retry < 1 ? 1 : retry}`);
  return ngx.exit(429);
}

function makeAccess(data: RateLimitData, limits: Limit[], late: boolean): () => void {
  const dict = ngx.shared.get(data.dict);
  const n = limits.length;
  return () => {
    if (isEdgeRefresh()) return;
    let best: string | undefined = undefined;
    let bestRemaining = math.huge;
    for (let i = 0; i < n; i++) {
      const lim = limits[i];
      const d = lim.d;
      if (lim.applies !== undefined && !lim.applies()) continue;
      if (lim.inGroup !== undefined && !lim.inGroup()) continue;
      const key = keyOf(d);
      let admitted: boolean;
      let ahead: number;
      if (d.cluster) {
        // pcall: whatever goes wrong on the Redis path (a reply of an unexpected shape...) is a Redis
        // failure handled as the policy says, never a 500 (pcall is yieldable in LuaJIT, cosockets work)
        const [ok, st, a] = pcall(clusterTake, data, dict, lim, key);
        let status = -1;
        if (ok) status = st as unknown as number;
        else warnOnce(dict, `rate limit "${d.name}": ${tostring(st)}, failing ${d.failOpen ? "open" : "closed"}`);
        if (status === -1) {
          if (d.failOpen) {
            countRateLimit(d.name, "failed_open");
            continue;
          }
          refuse(d, 1, 1, "failed_closed");
        }
        admitted = status === 1;
        ahead = a as unknown as number;
      } else {
        [admitted, ahead] = nodeTake(dict!, d, key);
      }
      if (!admitted) refuse(d, ahead - d.tolerance, ahead);
      if (d.headers) {
        const remaining = floor((d.tolerance + d.interval - ahead) / d.interval + 1e-9);
        if (remaining < bestRemaining) {
          bestRemaining = remaining;
          best = `${d.limit};${remaining < 0 ? 0 : remaining};${ceil(ahead)}`;
        }
      }
    }
    if (best === undefined) return;
    if (late) {
      // an early limit may already have reported: keep the more constrained one
      const prev = ngxVar.get("cdn_ratelimit");
      if (prev !== undefined && prev !== "") {
        const [, r] = string.match(prev, "^(%d+);(%d+)");
        if (r !== undefined && tonumber(r)! <= bestRemaining) return;
      }
    }
    ngxVar.set("cdn_ratelimit", best);
  };
}

function sendHeaders(): void {
  const v = ngxVar.get("cdn_ratelimit");
  if (v === undefined || v === "") return;
  const [limit, remaining, reset, retry] = string.match(v, "^(%d+);(%d+);(%d+);?(%d*)$");
  if (limit === undefined) return;
  ngxHeader.set("RateLimit-Limit", limit);
  ngxHeader.set("RateLimit-Remaining", remaining);
  ngxHeader.set("RateLimit-Reset", reset);
  if (retry !== undefined && retry !== "") ngxHeader.set("Retry-After", retry);
}

/**
 * Limits not keyed by a JWT claim run right after the IP rules ("gate:rate"); limits keyed by a claim run
 * after the JWT gate verified the token ("gate:rate-claims"). The header phase sends RateLimit-* headers.
 */
export const rateLimit: LuaFeature<"rateLimit"> = {
  key: "rateLimit",
  setup(data) {
    const early = compileLimits(data, false);
    const late = compileLimits(data, true);
    return {
      access: {
        "gate:rate": early.length > 0 ? makeAccess(data, early, false) : undefined,
        "gate:rate-claims": late.length > 0 ? makeAccess(data, late, true) : undefined,
      },
      header: { "rate-limit": sendHeaders },
    };
  },
};
