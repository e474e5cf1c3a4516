import { createHash } from "node:crypto";
import type { Feature } from "./shared/feature.js";
import type { Policy, RateLimit } from "../policy/types.js";
import { error, pointer, warning, type Diagnostic } from "../validate/diagnostic.js";
import { checkScope, lowerScope } from "./shared/gate-scope.js";
import type { RateLimitData, RateLimitLimitData, SharedDictName, CdnVar } from "../contract/index.js";
import { headerVar } from "../util/nginx-var.js";

/*
 * Rate limits (policy `rateLimit`, Lua `lua-src/features/rate-limit.ts`): token buckets, per node in a
 * lua_shared_dict or per fleet in Redis. Diagnostics: the `rateLimit*` and `pathGroup*` entries of
 * src/validate/catalogue.ts.
 */

/** The shared memory zone of node-scoped buckets. */
export const RATE_LIMIT_DICT: SharedDictName = "cdn_ratelimit";
const RATE_LIMIT_DICT_SIZE = "16m";
/** The nginx variable the access phase leaves for the header phase (RateLimit-* values). */
export const RATE_LIMIT_VAR: CdnVar = "cdn_ratelimit";

const RATE = /^([0-9]+(?:\.[0-9]+)?)r\/(s|m|h)$/;
const PER: Record<string, number> = { s: 1, m: 60, h: 3600 };
const MAX_RATE = 1_000_000;
const MAX_BURST = 10_000_000;

/** Requests per second of a rate like `100r/s` / `600r/m`, or undefined when it does not parse. */
export function parseRate(rate: string): number | undefined {
  const m = RATE.exec(rate);
  if (!m) return undefined;
  return Number(m[1]) / PER[m[2]!]!;
}

/**
 * The Redis side of a cluster bucket, run atomically by EVALSHA: GCRA over the theoretical arrival time
 * (TAT, microseconds of Redis' own clock, TIME), so every node agrees on time whatever its clock says.
 * KEYS[1] bucket; ARGV[1] emission interval T (µs per request); ARGV[2] tolerance tau = burst * T (µs).
 * Returns { admitted (1/0), TAT after the decision minus now (µs) }.
 */
export const REDIS_SCRIPT = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local T = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
if tat - now > tau then return { 0, math.ceil(tat - now) } end
tat = tat + T
redis.call('SET', KEYS[1], string.format('%.17g', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
return { 1, math.ceil(tat - now) }
`;
export const REDIS_SCRIPT_SHA = createHash("sha1").update(REDIS_SCRIPT).digest("hex");


function checkLimit(policy: Policy, l: RateLimit, i: number, out: Diagnostic[]): void {
  const at = (...s: (string | number)[]) => pointer("rateLimit", i, ...s);
  const perSecond = parseRate(l.rate);
  if (perSecond === undefined) {
    out.push(error("rateLimitInvalidRate", at("rate"), `"${l.rate}" is not a rate`, 'write requests per second, minute or hour, e.g. "100r/s", "600r/m", "0.5r/s"'));
  } else if (perSecond <= 0 || perSecond > MAX_RATE) {
    out.push(error("rateLimitRateOutOfRange", at("rate"), `rate "${l.rate}" is out of range`, `use more than 0 and at most ${MAX_RATE}r/s`));
  }
  const burst = l.burst ?? 0;
  if (!Number.isInteger(burst) || burst < 0 || burst > MAX_BURST) {
    out.push(error("rateLimitInvalidBurst", at("burst"), `burst must be a whole number from 0 to ${MAX_BURST}, got ${JSON.stringify(l.burst)}`, "burst is how many requests may arrive at once above the rate, e.g. 50"));
  } else if (perSecond !== undefined && perSecond > 0 && burst > perSecond * 86_400) {
    out.push(warning("rateLimitSlowRefill", at("burst"), `a burst of ${burst} takes more than a day to refill at ${l.rate}`, "lower the burst or raise the rate"));
  }
  if (l.scope === "cluster" && !policy.redis) {
    out.push(error("rateLimitClusterWithoutRedis", at("scope"), `limit "${l.name}" is cluster-wide but the policy has no redis`, "add a top-level `redis: { host, port }`, or use scope: \"node\""));
  }
  if (l.onRedisError !== undefined && l.scope !== "cluster") {
    out.push(error("rateLimitRedisErrorOnNode", at("onRedisError"), `limit "${l.name}" is per node and never uses Redis`, 'remove onRedisError, or set scope: "cluster"'));
  }
  const key = l.key;
  if (key !== undefined && typeof key === "object" && "pathGroup" in key) {
    const groups = Object.keys(policy.pathGroups ?? {});
    if (!(key.pathGroup in (policy.pathGroups ?? {}))) {
      out.push(error("rateLimitUnknownPathGroup", at("key", "pathGroup"), `unknown path group "${key.pathGroup}"`, groups.length ? `use one of: ${groups.join(", ")}` : "define it in the top-level `pathGroups`"));
    }
  }
  if (key !== undefined && typeof key === "object" && "claim" in key && !("jwt" in policy)) {
    out.push(warning("rateLimitClaimWithoutJwt", at("key", "claim"), `limit "${l.name}" is keyed by a JWT claim but the policy has no jwt gate: every request is counted by client address`, "add the jwt gate, or key the limit by ip or a header"));
  }
  out.push(...checkScope(l, pointer("rateLimit", i)));
}

/** Keys of `pathGroups` used by at least one limit. */
function usedGroups(policy: Policy): Set<string> {
  const used = new Set<string>();
  for (const l of policy.rateLimit ?? []) if (typeof l.key === "object" && "pathGroup" in l.key) used.add(l.key.pathGroup);
  return used;
}

export function checkRateLimits(policy: Policy): Diagnostic[] {
  const out: Diagnostic[] = [];
  const limits = policy.rateLimit ?? [];
  const seen = new Map<string, number>();
  limits.forEach((l, i) => {
    const first = seen.get(l.name);
    if (first !== undefined) out.push(error("rateLimitDuplicateName", pointer("rateLimit", i, "name"), `duplicate rate limit name "${l.name}" (also at index ${first})`, "give every limit its own name"));
    else seen.set(l.name, i);
    checkLimit(policy, l, i, out);
  });
  const used = usedGroups(policy);
  for (const [name, patterns] of Object.entries(policy.pathGroups ?? {})) {
    if (patterns.length === 0) out.push(error("pathGroupEmpty", pointer("pathGroups", name), `path group "${name}" is empty`, "list at least one path pattern"));
    else if (!used.has(name)) out.push(warning("pathGroupUnused", pointer("pathGroups", name), `path group "${name}" is not used by any rate limit`, `key a limit by { pathGroup: "${name}" }, or remove the group`));
  }
  return out;
}

function lowerLimit(policy: Policy, l: RateLimit): RateLimitLimitData {
  const perSecond = parseRate(l.rate)!;
  const burst = l.burst ?? 0;
  const interval = 1 / perSecond;
  const cluster = l.scope === "cluster";
  const data: RateLimitLimitData = {
    name: l.name,
    prefix: cluster ? `cdn:rl:${policy.name}:${l.name}:` : `${l.name}:`,
    interval,
    tolerance: burst * interval,
    limit: burst + 1,
    key: "ip",
    scope: lowerScope(l),
    cluster,
    failOpen: (l.onRedisError ?? "open") === "open",
    headers: l.headers ?? false,
  };
  const key = l.key ?? "ip";
  if (typeof key === "object") {
    if ("header" in key) {
      data.key = "header";
      data.headerVar = headerVar(key.header);
    } else if ("claim" in key) {
      data.key = "claim";
      data.claim = key.claim;
    } else {
      data.key = "group";
      data.group = lowerScope({ paths: policy.pathGroups![key.pathGroup]! })!.only;
    }
  }
  return data;
}

export const rateLimit: Feature = {
  name: "rate-limit",
  runtime: {
    key: "rateLimit",
    stages: {
      // limits keyed by a JWT claim run after the JWT gate verified the token
      access: { "gate:rate": (d) => d.limits.some((l) => l.key !== "claim"), "gate:rate-claims": (d) => d.limits.some((l) => l.key === "claim") },
      header: { "rate-limit": true },
    },
  },
  check: checkRateLimits,
  lower(policy, ir) {
    const limits = policy.rateLimit ?? [];
    if (limits.length === 0) return;
    const data: RateLimitData = {
      limits: limits.map((l) => lowerLimit(policy, l)),
      dict: RATE_LIMIT_DICT,
      script: REDIS_SCRIPT,
      sha: REDIS_SCRIPT_SHA,
    };
    ir.luaData.rateLimit = data;
    if (data.limits.some((l) => !l.cluster)) ir.sharedDicts.push({ name: RATE_LIMIT_DICT, size: RATE_LIMIT_DICT_SIZE });
    else ir.sharedDicts.push({ name: RATE_LIMIT_DICT, size: "1m" }); // the Redis-down warning throttle only
    ir.luaVars.push({ name: RATE_LIMIT_VAR, value: "" });
    // socket errors of a stopped Redis are silenced by the redis feature; the limiter logs a throttled warning
  },
};
