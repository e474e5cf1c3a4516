import type { Feature } from "./shared/feature.js";
import { headerVar } from "../util/nginx-var.js";
import type { Cache } from "../policy/types.js";
import { error, pointer, warning, type Diagnostic } from "../validate/diagnostic.js";
import { sharedDirOf, systemDirOf } from "../validate/host-paths.js";
import { checkDuration, checkSize, checkUnique, SHM_MAX } from "../validate/checks.js";
import { durationMs, durationSeconds, shmSize, sizeBytes } from "../util/units.js";

const ZONE = "cdn_disk";
/** Longest freshness lifetime we honour; nginx keeps every stored object this long, Lua decides freshness. */
const MAX_LIFETIME_S = 365 * 86400;
const STATUS_KEY = /^([1-5][0-9][0-9]|any)$/;
/**
 * Statuses nginx never stores: 502 and 504, which nginx also gives its own errors (origin unreachable,
 * timeout) and would otherwise cache; 206 / 304, which are never a whole object; and the origin's refusals
 * of one client's request (400 bad request, 413 body too large, 414 URI too long, 431 headers too large):
 * what provoked them (an oversized or malformed header) is not in the key, so storing them would serve one
 * client's refusal to everyone (cache poisoning by header oversize or bad characters).
 */
export const UNSTORED_STATUSES = [206, 304, 400, 413, 414, 431, 502, 504] as const;
/**
 * The statuses nginx may store (proxy_cache_valid): every other final status. Which of these is stored, and
 * for how long, the Lua header filter decides.
 */
const STORED_STATUSES = Array.from({ length: 400 }, (_, i) => 200 + i).filter((s) => !(UNSTORED_STATUSES as readonly number[]).includes(s));
const QUERY_PARAM = /^[A-Za-z0-9._~!*'()+,;:@[\]-]{1,128}$/;

/** The TTL table with defaults applied, sorted so output is stable ("any" last). */
function ttlTable(cache: Cache): { status: string; ttl: string }[] {
  const ttl = cache.ttl ?? {};
  return Object.keys(ttl)
    .sort((a, b) => (a === "any" ? 1 : b === "any" ? -1 : Number(a) - Number(b)))
    .map((status) => ({ status, ttl: ttl[status]! }));
}


/** True when the edge answers for exactly one host (one server name, not a wildcard): others get 421. */
function servesOneHost(names: readonly string[] | undefined): boolean {
  return names !== undefined && names.length === 1 && !names[0]!.startsWith("*");
}

/** RAM tier settings: sizes that parse, a dict of at least 1m, objects no bigger than a quarter of it. */
function checkRam(c: Cache): Diagnostic[] {
  const r = c.ram;
  if (!r) return [];
  const out: Diagnostic[] = [];
  const at = (...s: (string | number)[]) => pointer("cache", "ram", ...s);
  const size = r.size === undefined ? 64 * 1024 * 1024 : sizeBytes(r.size);
  const max = r.maxObjectSize === undefined ? 64 * 1024 : sizeBytes(r.maxObjectSize);
  if (size === undefined) out.push(error("ramInvalidSize", at("size"), `"${r.size}" is not a size`, 'write a number and an optional unit k, m or g, e.g. "256m"'));
  else if (size < 1024 * 1024) out.push(error("ramTooSmall", at("size"), `the RAM tier needs at least 1m (got "${r.size}")`, 'use "1m" or more, e.g. "64m"'));
  else out.push(...checkSize(r.size, at("size"), { max: SHM_MAX.ram, maxText: '"16g"' }));
  if (max === undefined) out.push(error("ramInvalidSize", at("maxObjectSize"), `"${r.maxObjectSize}" is not a size`, 'write a number and an optional unit k or m, e.g. "64k"'));
  else if (max < 1) out.push(error("ramMaxObjectSize", at("maxObjectSize"), "maxObjectSize must be at least 1 byte", 'e.g. "64k"'));
  else if (size !== undefined && size >= 1024 * 1024 && max > size / 4) {
    out.push(error("ramMaxObjectSize", at("maxObjectSize"), `maxObjectSize "${r.maxObjectSize ?? "64k"}" is more than a quarter of the RAM tier ("${r.size ?? "64m"}")`, "keep objects small (the hot tier is for small objects) or make ram.size larger"));
  }
  return out;
}

/** The disk cache tier: zone, key, TTLs, bypass, coalescing, stale serving, revalidation. */
/**
 * The `$cdn_req` map (templates/partials/cache-zone.hbs): the request headers the cache decides on, joined
 * (empty when the request has none of them), and the key's source with "1" (none) or "0" in front.
 */
function requestMap(host: boolean, headerVars: string[]): { headers: string; plain: string; other: string } {
  const source = host ? "$scheme://$host$request_uri" : "$request_uri";
  return { headers: [...new Set(headerVars)].map((v) => "$" + v).join(""), plain: "1" + source, other: "0" + source };
}

export const cache: Feature = {
  name: "cache",
  runtime: {
    key: "cache",
    stages: { access: { cache: true }, header: { cache: true }, log: { cache: true } },
  },
  check(policy) {
    const c = policy.cache;
    if (!c) return [];
    const out: Diagnostic[] = [];
    const at = (...s: (string | number)[]) => pointer("cache", ...s);
    out.push(...checkSize(c.disk?.size, at("disk", "size"), { min: 1024 * 1024, minText: '"1m"' }));
    out.push(...checkSize(c.disk?.keysZone, at("disk", "keysZone"), { min: 64 * 1024, minText: '"64k"', max: SHM_MAX.keysZone, maxText: '"4g"' }));
    out.push(...checkDuration(c.disk?.inactive, at("disk", "inactive")));
    out.push(...checkSize(c.disk?.markersSize, at("disk", "markersSize"), { min: 1024 * 1024, minText: '"1m"', max: SHM_MAX.markers, maxText: '"4g"' }));
    if (c.disk?.statePath !== undefined && c.disk.statePath.split("/").includes("..")) {
      out.push(error("cacheDiskPathDotDot", at("disk", "statePath"), "the state path must not contain '..'", 'use a path inside the bundle like "cache/state", or an absolute path'));
    }
    if (c.disk?.path !== undefined && c.disk.path.split("/").includes("..")) {
      out.push(error("cacheDiskPathDotDot", at("disk", "path"), "the cache path must not contain '..'", 'use a path inside the bundle like "cache/disk", or an absolute path'));
    }
    for (const key of ["path", "statePath"] as const) {
      const p = c.disk?.[key];
      if (p === undefined || p.split("/").includes("..")) continue;
      const system = systemDirOf(p, "cache");
      const shared = sharedDirOf(p);
      if (system !== undefined) {
        out.push(error("systemPath", at("disk", key), `"${p}" is in the system directory ${system}: nginx would keep cache files there, and a purge of everything deletes the files it finds`, 'use a folder of the edge\'s own, e.g. "cache/disk" (in the bundle) or "/var/cache/edge"'));
      } else if (shared !== undefined) {
        out.push(warning("cachePathShared", at("disk", key), `"${p}" is a directory other programs share: give the cache a folder of its own`, `e.g. "${shared === "/" ? "" : shared}/edge-cache"`));
      }
    }
    for (const [status, ttl] of Object.entries(c.ttl ?? {})) {
      if (!STATUS_KEY.test(status)) out.push(error("invalidTtlStatus", at("ttl", status), `"${status}" is not a status code`, 'use a status from 100 to 599, or "any"'));
      out.push(...checkDuration(ttl, at("ttl", status), { allowZero: true }));
      if ((UNSTORED_STATUSES as readonly number[]).includes(Number(status))) {
        out.push(warning("ttlForUnstoredStatus", at("ttl", status), `${status} answers are never stored, so this TTL never applies`, "remove the entry"));
      }
    }
    const b = c.bypass;
    if (b?.cookies !== undefined && b.cookies.length === 0) {
      out.push(error("emptyBypassList", at("bypass", "cookies"), "the bypass cookie list is empty", "list at least one cookie name, or remove the key"));
    }
    if (b?.headers !== undefined && b.headers.length === 0) {
      out.push(error("emptyBypassList", at("bypass", "headers"), "the bypass header list is empty", "list at least one header name, or remove the key"));
    }
    out.push(...checkUnique(b?.cookies ?? [], (i) => at("bypass", "cookies", i), "cookie"));
    out.push(...checkUnique(b?.headers ?? [], (i) => at("bypass", "headers", i), "header"));
    const q = c.key?.query;
    if (typeof q === "object") {
      q.allow.forEach((p, i) => {
        if (!QUERY_PARAM.test(p)) out.push(error("invalidQueryParamName", at("key", "query", "allow", i), `"${p}" is not a query parameter name`, "use letters, digits and -._~ (no '=', '&', '#', spaces)"));
      });
      out.push(...checkUnique(q.allow, (i) => at("key", "query", "allow", i), "query parameter"));
    }
    if (c.heuristic) out.push(...checkDuration(c.heuristic.max, at("heuristic", "max")));
    out.push(...checkDuration(c.staleIfError, at("staleIfError")));
    out.push(...checkDuration(c.staleWhileRevalidate, at("staleWhileRevalidate")));
    if (c.lock) {
      out.push(...checkDuration(c.lock.timeout, at("lock", "timeout"), { timer: true }));
      out.push(...checkDuration(c.lock.age, at("lock", "age"), { timer: true }));
    }
    out.push(...checkRam(c));
    if (c.key?.host === false && !servesOneHost(policy.serverNames)) {
      out.push(
        error(
          "cacheKeyHostOff",
          at("key", "host"),
          policy.serverNames === undefined || policy.serverNames.length === 0
            ? "the cache key leaves the host out, but the edge answers for any host: a request with another Host stores its object under the shared key"
            : `the cache key leaves the host out, but the edge answers for ${policy.serverNames.join(", ")}: a request for one host stores its object under a key the others share`,
          "remove `host: false`, or list exactly one host in serverNames",
        ),
      );
    }
    return out;
  },
  lower(policy, ir) {
    const c = policy.cache;
    if (!c) return;
    const disk = c.disk ?? {};
    const bypass = c.bypass ?? {};
    // forwarding headers let through to the origin (headers.allowOverrides) join the key or bypass the cache
    const overrides = policy.headers?.allowOverrides ?? [];
    const keyHeaders = overrides.filter((a) => (a.cache ?? "key") === "key").map((a) => a.header.toLowerCase());
    const bypassHeaders = [...(bypass.headers ?? []), ...overrides.filter((a) => a.cache === "bypass").map((a) => a.header)];
    const bypassHeaderVars = [...new Set(bypassHeaders.map(headerVar))].sort();
    const bypassCookieVars = [...new Set((bypass.cookies ?? []).map((n) => `cookie_${n}` as const))].sort();
    const clientDirectives = (c.clientDirectives ?? "honour") === "honour";
    const authBypass = bypass.authorization !== false;
    ir.slots.http.push({
      partial: "cache-zone",
      data: {
        path: disk.path ?? "cache/disk",
        zone: ZONE,
        keysZone: shmSize(disk.keysZone ?? "10m"),
        maxSize: disk.size ?? "1g",
        inactive: disk.inactive ?? "7d",
        request: requestMap(c.key?.host ?? true, [
          ...(authBypass ? ["http_authorization"] : []),
          // the edge's own refresh marker, the conditionals, ranges, a body on a GET
          "http_x_cdn_refresh",
          "http_if_none_match",
          "http_if_modified_since",
          "http_range",
          "http_content_length",
          "http_transfer_encoding",
          ...(clientDirectives ? ["http_cache_control", "http_pragma"] : []),
          ...bypassHeaderVars,
          // bypass cookies are looked up one by one, only when the request has cookies
          ...(bypassCookieVars.length ? ["http_cookie"] : []),
        ]),
      },
    });
    const lock = c.lock === false ? null : { timeout: c.lock?.timeout ?? "5s", age: c.lock?.age ?? "5s" };
    const surrogateToken = c.surrogateControl === false ? undefined : (c.surrogateControl?.token ?? policy.name).toLowerCase();
    for (const name of ["cdn_cache_key", "cdn_disk_key", "cdn_cache_bypass", "cdn_nostore", "cdn_cache_status", "cdn_cache_mkey", "cdn_cache_refresh", "cdn_cache_lock", "cdn_inm", "cdn_ims"] as const) {
      ir.luaVars.push({ name, value: "" });
    }
    // freshness metadata per key and variant (about 300 bytes each): twice the keys zone
    const keysZone = sizeBytes(disk.keysZone ?? "10m") ?? 10 * 1024 * 1024;
    ir.sharedDicts.push({ name: "cdn_meta", size: `${Math.max(2 * 1024, Math.ceil((2 * keysZone) / 1024))}k` });
    // purge and invalidation markers: a dict of their own, so no other churn can evict one
    ir.sharedDicts.push({ name: "cdn_markers", size: shmSize(disk.markersSize ?? "16m") });
    if (c.ram) ir.sharedDicts.push({ name: "cdn_ram", size: shmSize(c.ram.size ?? "64m") });
    ir.slots.proxy.push({
      partial: "cache",
      data: { zone: ZONE, maxAge: `${MAX_LIFETIME_S}s`, statuses: STORED_STATUSES, lock, surrogateToken, surrogateCapability: surrogateToken && `${surrogateToken}="Surrogate/1.0"` },
    });
    const q = c.key?.query ?? "all";
    const ttl: Record<string, number> = {};
    for (const { status, ttl: t } of ttlTable(c)) ttl[status] = durationSeconds(t) ?? 0;
    ir.luaData.cache = {
      query: typeof q === "string" ? q : "allow",
      allow: typeof q === "object" ? Object.fromEntries([...q.allow].sort().map((p) => [p, true])) : {},
      host: c.key?.host ?? true,
      bypassHeaderVars,
      ...(keyHeaders.length > 0 ? { keyHeaders: [...new Set(keyHeaders)].sort() } : {}),
      bypassCookieVars,
      authBypass,
      ttl,
      swr: c.staleWhileRevalidate ? durationSeconds(c.staleWhileRevalidate) ?? 0 : 0,
      sie: c.staleIfError ? durationSeconds(c.staleIfError) ?? 0 : 0,
      revalidate: c.revalidate ?? true,
      maxLifetime: MAX_LIFETIME_S,
      lockTimeout: lock ? (durationMs(lock.timeout) ?? 5000) / 1000 : 5,
      refreshTimeoutMs: 30_000,
      ram: c.ram
        ? { maxObjectSize: sizeBytes(c.ram.maxObjectSize ?? "64k") ?? 65536, minHits: c.ram.minHits ?? 2 }
        : undefined,
      diskPath: disk.path ?? "cache/disk",
      statePath: disk.statePath ?? "cache/state",
      markerTtl: MAX_LIFETIME_S,
      workerUser: policy.workers?.user ?? "nobody",
      tags: policy.purge !== undefined,
      clientDirectives,
      // the label goes to the JSON access log and to the metrics (lua-src/features/metrics.ts reads it)
      statusVar: (policy.accessLog?.format ?? "json") === "json" || policy.metrics !== undefined,
      storeSetCookie: c.storeSetCookie ?? false,
      ...(surrogateToken !== undefined ? { surrogateToken } : {}),
      heuristic:
        c.heuristic === false
          ? { fraction: 0, max: 0 }
          : { fraction: c.heuristic?.fraction ?? 0.1, max: durationSeconds(c.heuristic?.max ?? "1d") ?? 86400 },
    };
  },
};
