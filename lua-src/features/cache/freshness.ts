import {
  ageValue,
  cc,
  FLAG_NO_CACHE,
  freshnessLifetime,
  heuristicLifetime,
  httpDate,
  initialAge,
  MAX_DELTA,
  parseCacheControl,
  staleWindows,
  surrogateDirectives,
  validTargetedField,
} from "../../core/cache-rfc";
import { joined, single } from "./headers";

export { cc };

/** How the policy asks for lifetimes when the origin gives none. */
export interface FreshnessPolicy {
  /** The policy's TTL for this status (its `cache.ttl` table), -1 when none: then RFC 9111 heuristics apply. */
  ttl: number;
  /** Heuristic freshness: this fraction of the time since Last-Modified, at most `heuristicMax` seconds. */
  heuristicFraction: number;
  heuristicMax: number;
  /** Policy defaults of the stale windows (seconds). */
  swr: number;
  sie: number;
  /** Cap of any lifetime (seconds). */
  maxLifetime: number;
  /** This edge's Surrogate-Control device token (lower case); undefined: Surrogate-Control is ignored. */
  surrogate: string | undefined;
}

/**
 * The one freshness computation of the cache (RFC 9111 4.2), for a response from the origin (stored, or a
 * 304 that revalidates) and for a stored response whose metadata must be rebuilt.
 *
 * `CDN-Cache-Control` (RFC 9213), when present and valid (a Structured Field Dictionary), replaces
 * `Cache-Control` and `Expires`; an invalid one is ignored. Without it, the `Surrogate-Control` directives for
 * this edge (if any, and if the policy honours the header) do the same. Date, Expires and Age must appear once and be
 * valid: a repeated or malformed Expires means "already expired" (an HTTP-date in GMT only), a repeated or
 * malformed Date is ignored, and a repeated or malformed Age means "stale on arrival" (the largest age). Without explicit freshness, the policy's TTL for the status applies if it
 * has one, else the RFC heuristic (a fraction of the time since Last-Modified, for heuristically cacheable
 * statuses only). `no-cache` makes the lifetime 0 (stored, revalidated before every reuse).
 *
 * Returns: the lifetime (-1 when the response has no freshness at all; capped at `maxLifetime`), the corrected
 * initial age, the stale-while-revalidate and stale-if-error windows, the flags (FLAG_NO_STALE,
 * FLAG_NO_CACHE), and whether the response carried explicit freshness information. The parsed directives are
 * left in `cc` for the storage decision.
 */
export function freshnessOf(
  this: void,
  h: LuaTable<string, NgxHeaderValue>,
  status: number,
  now: number,
  requestTime: number,
  p: FreshnessPolicy,
): LuaMultiReturn<[number, number, number, number, number, boolean]> {
  // the field for this cache: a valid CDN-Cache-Control, else Surrogate-Control's directives for this edge,
  // else Cache-Control (with Expires)
  let cdncc = joined(h.get("cdn-cache-control"));
  if (cdncc !== undefined && !validTargetedField(cdncc)) cdncc = undefined;
  if (cdncc === undefined && p.surrogate !== undefined) {
    const sc = joined(h.get("surrogate-control"));
    if (sc !== undefined) cdncc = surrogateDirectives(sc, p.surrogate);
  }
  parseCacheControl(cdncc ?? joined(h.get("cache-control")));
  const date = single(h.get("date"));
  const d = typeof date === "string" ? httpDate(date) : undefined;
  let expPresent = false;
  let expT: number | undefined = undefined;
  if (cdncc === undefined) {
    const exp = single(h.get("expires"));
    if (exp !== undefined) {
      expPresent = true;
      expT = typeof exp === "string" ? httpDate(exp) : undefined;
    }
  }
  const explicit = cc.maxAge >= 0 || cc.sMaxAge >= 0 || expPresent;
  let heuristic = p.ttl;
  if (heuristic < 0 && !explicit) {
    const lm = single(h.get("last-modified"));
    heuristic = heuristicLifetime(status, typeof lm === "string" ? httpDate(lm) : undefined, d, now, p.heuristicFraction, p.heuristicMax);
  }
  let lt = freshnessLifetime(expT, expPresent, d, now, heuristic);
  // an Age the cache cannot read (not one non-negative integer on one line) leaves the response's age unknown:
  // it is taken as the largest age, so the response is stale on arrival and revalidated before any reuse
  const ageField = h.get("age");
  let age: number | undefined = undefined;
  if (ageField !== undefined) {
    const one = single(ageField);
    age = (typeof one === "string" ? ageValue(one) : undefined) ?? MAX_DELTA;
  }
  const ia = initialAge(age, d, now, requestTime);
  const [swr, sie, flags] = staleWindows(p.swr, p.sie);
  if ((flags & FLAG_NO_CACHE) !== 0) lt = 0;
  else if (lt >= 0) lt = math.min(lt, p.maxLifetime);
  return $multi(lt, ia, swr, sie, flags, explicit || cc.present);
}
