import type { Feature } from "./feature.js";
import type { Cache } from "../policy/types.js";
import { error, pointer, type Diagnostic } from "../validate/diagnostic.js";
import { checkDuration, checkSize, checkUnique } from "../validate/checks.js";

const ZONE = "cdn_disk";
const STATUS_KEY = /^([1-5][0-9][0-9]|any)$/;
const QUERY_PARAM = /^[A-Za-z0-9._~!*'()+,;:@[\]-]{1,128}$/;

/** The TTL table with defaults applied, sorted so output is stable ("any" last). */
function ttlTable(cache: Cache): { status: string; ttl: string }[] {
  const ttl = cache.ttl ?? { "200": "10m", "301": "10m", "302": "10m" };
  return Object.keys(ttl)
    .sort((a, b) => (a === "any" ? 1 : b === "any" ? -1 : Number(a) - Number(b)))
    .map((status) => ({ status, ttl: ttl[status]! }));
}

/** Lower-cased nginx variable name for a request header, e.g. `X-Preview` -> `http_x_preview`. */
export function headerVar(name: string): string {
  return "http_" + name.toLowerCase().replace(/-/g, "_");
}

/** The disk cache tier: zone, key, TTLs, bypass, coalescing, stale serving, revalidation. */
export const cache: Feature = {
  name: "cache",
  check(policy) {
    const c = policy.cache;
    if (!c) return [];
    const out: Diagnostic[] = [];
    const at = (...s: (string | number)[]) => pointer("cache", ...s);
    out.push(...checkSize(c.disk?.size, at("disk", "size"), { min: 1024 * 1024, minText: '"1m"' }));
    out.push(...checkSize(c.disk?.keysZone, at("disk", "keysZone"), { min: 64 * 1024, minText: '"64k"' }));
    out.push(...checkDuration(c.disk?.inactive, at("disk", "inactive")));
    if (c.disk?.path !== undefined && c.disk.path.split("/").includes("..")) {
      out.push(error("CDN2025", at("disk", "path"), "the cache path must not contain '..'", 'use a path inside the bundle like "cache/disk", or an absolute path'));
    }
    for (const [status, ttl] of Object.entries(c.ttl ?? {})) {
      if (!STATUS_KEY.test(status)) out.push(error("CDN2009", at("ttl", status), `"${status}" is not a status code`, 'use a status from 100 to 599, or "any"'));
      out.push(...checkDuration(ttl, at("ttl", status), { allowZero: true }));
    }
    const b = c.bypass;
    if (b?.cookies !== undefined && b.cookies.length === 0) {
      out.push(error("CDN2008", at("bypass", "cookies"), "the bypass cookie list is empty", "list at least one cookie name, or remove the key"));
    }
    if (b?.headers !== undefined && b.headers.length === 0) {
      out.push(error("CDN2008", at("bypass", "headers"), "the bypass header list is empty", "list at least one header name, or remove the key"));
    }
    out.push(...checkUnique(b?.cookies ?? [], (i) => at("bypass", "cookies", i), "cookie"));
    out.push(...checkUnique(b?.headers ?? [], (i) => at("bypass", "headers", i), "header"));
    const q = c.key?.query;
    if (typeof q === "object") {
      q.allow.forEach((p, i) => {
        if (!QUERY_PARAM.test(p)) out.push(error("CDN2014", at("key", "query", "allow", i), `"${p}" is not a query parameter name`, "use letters, digits and -._~ (no '=', '&', '#', spaces)"));
      });
      out.push(...checkUnique(q.allow, (i) => at("key", "query", "allow", i), "query parameter"));
    }
    out.push(...checkDuration(c.staleIfError, at("staleIfError")));
    out.push(...checkDuration(c.staleWhileRevalidate, at("staleWhileRevalidate")));
    if (c.lock) {
      out.push(...checkDuration(c.lock.timeout, at("lock", "timeout"), { timer: true }));
      out.push(...checkDuration(c.lock.age, at("lock", "age"), { timer: true }));
    }
    return out;
  },
  lower(policy, ir) {
    const c = policy.cache;
    if (!c) return;
    const disk = c.disk ?? {};
    ir.slots.http.push({
      partial: "cache-zone",
      data: {
        path: disk.path ?? "cache/disk",
        zone: ZONE,
        keysZone: disk.keysZone ?? "10m",
        maxSize: disk.size ?? "1g",
        inactive: disk.inactive ?? "7d",
      },
    });
    const lock = c.lock === false ? null : { timeout: c.lock?.timeout ?? "5s", age: c.lock?.age ?? "5s" };
    const stale: string[] = [];
    if (c.staleIfError) stale.push("error", "timeout", "invalid_header", "http_500", "http_502", "http_503", "http_504");
    if (c.staleWhileRevalidate) stale.push("updating");
    ir.luaVars.push({ name: "cdn_cache_key", value: "" }, { name: "cdn_cache_bypass", value: "" });
    ir.slots.proxy.push({
      partial: "cache",
      data: {
        zone: ZONE,
        ttl: ttlTable(c),
        lock,
        useStale: stale.length ? stale : null,
        backgroundUpdate: c.staleWhileRevalidate !== undefined,
        revalidate: c.revalidate ?? true,
      },
    });
    const bypass = c.bypass ?? {};
    const headers = [...(bypass.authorization === false ? [] : ["Authorization"]), ...(bypass.headers ?? [])];
    const q = c.key?.query ?? "all";
    ir.luaData.cache = {
      query: typeof q === "string" ? q : "allow",
      allow: typeof q === "object" ? Object.fromEntries([...q.allow].sort().map((p) => [p, true])) : {},
      host: c.key?.host ?? true,
      bypassHeaderVars: [...new Set(headers.map(headerVar))].sort(),
      bypassCookieVars: [...new Set((bypass.cookies ?? []).map((n) => "cookie_" + n))].sort(),
    };
  },
};
