import { freshnessLifetime, initialAge, parseCacheControl, staleWindows, FLAG_NO_CACHE, cc } from "../../core/cache-rfc";
import { joined, single } from "./headers";

export { cc };

/**
 * The one freshness computation of the cache (RFC 9111 4.2), for a response from the origin (stored, or a
 * 304 that revalidates) and for a stored response whose metadata must be rebuilt.
 *
 * `CDN-Cache-Control` (RFC 9213), when present, replaces `Cache-Control` and `Expires`. Date, Expires and
 * Age must appear once: a repeated one is invalid (a repeated Expires means "already expired", a repeated
 * Date or Age is ignored). `heuristic` is the lifetime to use without explicit freshness (-1: none).
 *
 * Returns: the lifetime (-1 when the response has neither explicit nor heuristic freshness; 0 with
 * no-cache; capped at `maxLifetime`), the corrected initial age, the stale-while-revalidate and
 * stale-if-error windows, the flags (FLAG_NO_STALE, FLAG_NO_CACHE), and whether the response carried
 * explicit freshness information. The parsed directives are left in `cc` for the storage decision.
 */
export function freshnessOf(
  this: void,
  h: LuaTable<string, NgxHeaderValue>,
  now: number,
  requestTime: number,
  heuristic: number,
  defSwr: number,
  defSie: number,
  maxLifetime: number,
): LuaMultiReturn<[number, number, number, number, number, boolean]> {
  const cdncc = joined(h.get("cdn-cache-control"));
  parseCacheControl(cdncc ?? joined(h.get("cache-control")));
  const date = single(h.get("date"));
  const d = typeof date === "string" ? ngx.parse_http_time(date) : undefined;
  let expPresent = false;
  let expT: number | undefined = undefined;
  if (cdncc === undefined) {
    const exp = single(h.get("expires"));
    if (exp !== undefined) {
      expPresent = true;
      expT = typeof exp === "string" ? ngx.parse_http_time(exp) : undefined;
    }
  }
  const explicit = cc.maxAge >= 0 || cc.sMaxAge >= 0 || expPresent;
  let lt = freshnessLifetime(expT, expPresent, d, now, heuristic);
  const age = single(h.get("age"));
  const ia = initialAge(typeof age === "string" ? age : undefined, d, now, requestTime);
  const [swr, sie, flags] = staleWindows(defSwr, defSie);
  if (lt >= 0) {
    lt = math.min(lt, maxLifetime);
    if ((flags & FLAG_NO_CACHE) !== 0) lt = 0;
  }
  return $multi(lt, ia, swr, sie, flags, explicit || cc.present);
}
