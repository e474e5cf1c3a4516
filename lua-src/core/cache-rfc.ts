/**
 * RFC 9111 arithmetic of the cache, free of nginx state so it can be unit-tested in plain LuaJIT:
 * parsing `Cache-Control` / `CDN-Cache-Control`, the freshness lifetime, the corrected initial age, the
 * stale windows, and the decision a purge marker implies for a stored object.
 *
 * Parsing results go to one reused table (`cc`), so the header filter allocates nothing per response.
 */

export interface CacheControl {
  present: boolean;
  maxAge: number; // -1 when absent
  sMaxAge: number; // -1 when absent
  noStore: boolean;
  noCache: boolean;
  private: boolean;
  public: boolean;
  mustRevalidate: boolean;
  proxyRevalidate: boolean;
  swr: number; // -1 when absent
  sie: number; // -1 when absent
}

export const cc: CacheControl = {
  present: false,
  maxAge: -1,
  sMaxAge: -1,
  noStore: false,
  noCache: false,
  private: false,
  public: false,
  mustRevalidate: false,
  proxyRevalidate: false,
  swr: -1,
  sie: -1,
};

function delta(v: string | undefined): number {
  if (v === undefined) return 0;
  const n = tonumber(v);
  if (n === undefined || n < 0) return 0; // invalid delta-seconds: treat as stale (RFC 9111 4.2.1)
  return math.floor(n);
}

/** Parses a Cache-Control (or CDN-Cache-Control) value into `cc`; `undefined` resets it to "absent". */
export function parseCacheControl(value: string | undefined): CacheControl {
  cc.present = value !== undefined;
  cc.maxAge = -1;
  cc.sMaxAge = -1;
  cc.noStore = false;
  cc.noCache = false;
  cc.private = false;
  cc.public = false;
  cc.mustRevalidate = false;
  cc.proxyRevalidate = false;
  cc.swr = -1;
  cc.sie = -1;
  if (value === undefined) return cc;
  for (const [part] of string.gmatch(value, "[^,]+")) {
    const [name, arg] = string.match(part, '^%s*([%w%-]+)%s*=?%s*"?([^"]*)"?%s*$');
    if (name !== undefined) {
      const n = string.lower(name);
      const a = arg === "" ? undefined : arg;
      if (n === "max-age") cc.maxAge = delta(a);
      else if (n === "s-maxage") cc.sMaxAge = delta(a);
      else if (n === "no-store") cc.noStore = true;
      else if (n === "no-cache") cc.noCache = true;
      else if (n === "private") cc.private = true;
      else if (n === "public") cc.public = true;
      else if (n === "must-revalidate") cc.mustRevalidate = true;
      else if (n === "proxy-revalidate") cc.proxyRevalidate = true;
      else if (n === "stale-while-revalidate") cc.swr = delta(a);
      else if (n === "stale-if-error") cc.sie = delta(a);
    }
  }
  return cc;
}

/**
 * Freshness lifetime in seconds (RFC 9111 4.2.1) from the parsed `cc` and the Expires/Date times;
 * `heuristic` (the policy's TTL for the status, -1 when none) is used only without explicit freshness.
 * Returns -1 when the response has neither explicit nor heuristic freshness.
 */
export function freshnessLifetime(expires: number | undefined, expiresPresent: boolean, date: number | undefined, now: number, heuristic: number): number {
  if (cc.sMaxAge >= 0) return cc.sMaxAge;
  if (cc.maxAge >= 0) return cc.maxAge;
  if (expiresPresent) {
    if (expires === undefined) return 0; // an invalid Expires means "already expired"
    const lt = expires - (date ?? now); // relative to the origin's Date, not our clock
    return lt > 0 ? lt : 0;
  }
  return heuristic;
}

/** Corrected initial age (RFC 9111 4.2.3): the Age header plus what the Date says about transit. */
export function initialAge(ageHeader: string | undefined, date: number | undefined, responseTime: number, requestTime: number): number {
  let age = 0;
  if (ageHeader !== undefined) {
    const n = tonumber(ageHeader);
    if (n !== undefined && n > 0) age = math.floor(n);
  }
  // Date has a resolution of one second: compare whole seconds, or every response would look up to 1 s old
  const apparent = date === undefined ? 0 : math.max(0, math.floor(responseTime) - date);
  const delay = math.max(0, responseTime - requestTime);
  return math.max(apparent, age + delay);
}

/** Flags of a stored object (metadata `flags`). */
export const FLAG_NO_STALE = 1; // must-revalidate / proxy-revalidate / s-maxage / no-cache: never serve stale
export const FLAG_NO_CACHE = 2; // no-cache: stored, but revalidated before every reuse

/** What a purge marker means for an object stored at `storedAt`. */
export const PURGE_NONE = 0;
export const PURGE_HARD = 1;
export const PURGE_SOFT = 2;

/**
 * Decision of the purge markers for one object (contract with the purge feature): `keyT/keyFlags` is the
 * marker of the object's key (`m:<K>` in `cdn_purge`), `allT/allFlags` the purge-all marker (`m:*`); a
 * marker applies when its time is at or after the object's stored-at time. Hard wins over soft.
 * Returns the decision and, for a soft purge, the time the object became stale (else 0).
 */
export function purgeDecision(storedAt: number, keyT: number | undefined, keyFlags: number | undefined, allT: number | undefined, allFlags: number | undefined): LuaMultiReturn<[number, number]> {
  let d = PURGE_NONE;
  let at = 0;
  if (keyT !== undefined && keyT >= storedAt) {
    if (keyFlags === PURGE_SOFT) {
      d = PURGE_SOFT;
      at = keyT;
    } else return $multi(PURGE_HARD, 0);
  }
  if (allT !== undefined && allT >= storedAt) {
    if (allFlags === PURGE_SOFT) {
      if (d === PURGE_NONE || allT < at) at = allT;
      d = PURGE_SOFT;
    } else return $multi(PURGE_HARD, 0);
  }
  return $multi(d, at);
}

/** Stale windows an object may use, given the parsed `cc` and the policy defaults (seconds). */
export function staleWindows(defaultSwr: number, defaultSie: number): LuaMultiReturn<[number, number, number]> {
  let flags = 0;
  if (cc.noCache) flags = flags | FLAG_NO_CACHE;
  // explicit prohibitions: must-revalidate, proxy-revalidate (and s-maxage, which implies it), no-cache
  const prohibit = cc.mustRevalidate || cc.proxyRevalidate || cc.noCache;
  const implied = cc.sMaxAge >= 0;
  if (prohibit) return $multi(0, 0, flags | FLAG_NO_STALE);
  // an explicit stale-* directive of the origin permits stale serving (RFC 5861), even with s-maxage
  const swr = cc.swr >= 0 ? cc.swr : implied ? 0 : defaultSwr;
  const sie = cc.sie >= 0 ? cc.sie : implied ? 0 : defaultSie;
  if (swr === 0 && sie === 0 && implied) flags = flags | FLAG_NO_STALE;
  return $multi(swr, sie, flags);
}

/** Weak comparison of an If-None-Match list with an entity tag (RFC 9110 13.1.2). */
export function etagMatches(ifNoneMatch: string, etag: string): boolean {
  if (ifNoneMatch === "*") return true;
  const [bare] = string.gsub(etag, "^W/", "");
  for (const [tag] of string.gmatch(ifNoneMatch, '[^,%s][^,]*')) {
    const [t] = string.gsub(string.gsub(tag, "%s+$", "")[0], "^W/", "");
    if (t === bare) return true;
  }
  return false;
}
