/**
 * RFC 9111 / 9110 / 9213 arithmetic and parsing of the cache, free of nginx state (except ngx.parse_http_time
 * for the date conversion) so it can be unit-tested in plain LuaJIT: `Cache-Control` (response and request
 * directives), `CDN-Cache-Control`, HTTP dates, `Age`, the freshness lifetime (explicit and heuristic), the
 * corrected initial age, the stale windows and entity-tag comparison.
 *
 * Parsing results go to reused tables (`cc`, `rcc`), so the header filter allocates nothing per response.
 * Parsers are byte loops (LuaJIT compiles them; Lua patterns would abort the trace).
 */

const byte = string.byte;
const sub = string.sub;
const lower = string.lower;

/** The largest delta-seconds a cache must represent (RFC 9111 1.2.2: larger values count as 2^31). */
export const MAX_DELTA = 2147483648;

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
  mustUnderstand: boolean;
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
  mustUnderstand: false,
  swr: -1,
  sie: -1,
};

/** Request directives (RFC 9111 5.2.1). */
export interface RequestCacheControl {
  maxAge: number; // -1 when absent
  maxStale: number; // -1 when absent; MAX_DELTA for "any staleness"
  minFresh: number; // -1 when absent
  noCache: boolean;
  noStore: boolean;
  onlyIfCached: boolean;
}

export const rcc: RequestCacheControl = { maxAge: -1, maxStale: -1, minFresh: -1, noCache: false, noStore: false, onlyIfCached: false };

/** delta-seconds (1*DIGIT): the number, or -1 when the text is not one; values past 2^31 count as 2^31. */
export function deltaSeconds(this: void, v: string): number {
  const n = v.length;
  if (n === 0) return -1;
  for (let i = 1; i <= n; i++) {
    const c = byte(v, i);
    if (c < 48 || c > 57) return -1;
  }
  if (n > 10) return MAX_DELTA;
  return math.min(tonumber(v)!, MAX_DELTA);
}

// token characters (RFC 9110 5.6.2): ! # $ % & ' * + - . ^ _ ` | ~ DIGIT ALPHA
const TCHAR = new LuaTable<number, boolean>();
const SPECIALS = "!#$%&'*+-.^_`|~";
for (let i = 1; i <= SPECIALS.length; i++) TCHAR.set(byte(SPECIALS, i), true);
for (let c = 48; c <= 57; c++) TCHAR.set(c, true);
for (let c = 65; c <= 90; c++) TCHAR.set(c, true);
for (let c = 97; c <= 122; c++) TCHAR.set(c, true);

/**
 * Walks a Cache-Control style list: calls `each(name, value, quoted)` for every well-formed directive
 * (`token [ "=" ( token / quoted-string ) ]`, no whitespace around "="); a malformed one is skipped up to the
 * next comma. Empty list elements are allowed.
 */
function directives(value: string, each: (name: string, arg: string | undefined) => void): void {
  const n = value.length;
  let i = 1;
  while (i <= n) {
    // skip OWS and commas between elements
    let c = byte(value, i);
    while (i <= n && (c === 32 || c === 9 || c === 44)) {
      i++;
      c = byte(value, i);
    }
    if (i > n) break;
    const start = i;
    while (i <= n && TCHAR.get(byte(value, i)) === true) i++;
    let ok = i > start;
    const name = lower(sub(value, start, i - 1));
    let arg: string | undefined = undefined;
    if (ok && i <= n && byte(value, i) === 61) {
      // "=" then a token or a quoted-string, immediately
      i++;
      if (i <= n && byte(value, i) === 34) {
        i++;
        const parts: string[] = [];
        let closed = false;
        while (i <= n) {
          const q = byte(value, i);
          if (q === 92 && i < n) {
            parts.push(sub(value, i + 1, i + 1));
            i += 2;
          } else if (q === 34) {
            closed = true;
            i++;
            break;
          } else {
            parts.push(sub(value, i, i));
            i++;
          }
        }
        ok = closed;
        arg = table.concat(parts);
      } else {
        const vs = i;
        while (i <= n && TCHAR.get(byte(value, i)) === true) i++;
        ok = i > vs;
        arg = sub(value, vs, i - 1);
      }
    }
    // after the directive: OWS, then a comma or the end
    while (i <= n && (byte(value, i) === 32 || byte(value, i) === 9)) i++;
    if (i <= n && byte(value, i) !== 44) ok = false;
    if (ok) each(name, arg);
    // skip to the next comma (outside quotes) after a malformed directive
    let inQuote = false;
    while (i <= n) {
      const q = byte(value, i);
      if (q === 34) inQuote = !inQuote;
      else if (q === 44 && !inQuote) break;
      i++;
    }
  }
}

/** The most restrictive of two values of a directive given twice (RFC 9111 4.2.1: conflicting directives). */
function least(cur: number, v: number): number {
  return cur < 0 ? v : math.min(cur, v);
}

/** A delta-seconds argument of a freshness directive: invalid or missing counts as 0 (stale, RFC 9111 5.2.2.1). */
function freshnessArg(arg: string | undefined): number {
  if (arg === undefined) return 0;
  const d = deltaSeconds(arg);
  return d < 0 ? 0 : d;
}

function onResponseDirective(this: void, name: string, arg: string | undefined): void {
  if (name === "max-age") cc.maxAge = least(cc.maxAge, freshnessArg(arg));
  else if (name === "s-maxage") cc.sMaxAge = least(cc.sMaxAge, freshnessArg(arg));
  else if (name === "no-store") cc.noStore = true;
  else if (name === "no-cache") cc.noCache = true; // qualified (field names) is treated as unqualified
  else if (name === "private") cc.private = true;
  else if (name === "public") cc.public = true;
  else if (name === "must-revalidate") cc.mustRevalidate = true;
  else if (name === "proxy-revalidate") cc.proxyRevalidate = true;
  else if (name === "must-understand") cc.mustUnderstand = true;
  else if (name === "stale-while-revalidate") cc.swr = least(cc.swr, freshnessArg(arg));
  else if (name === "stale-if-error") cc.sie = least(cc.sie, freshnessArg(arg));
}

/** Parses a Cache-Control (or a valid CDN-Cache-Control) value into `cc`; `undefined` resets it to "absent". */
export function parseCacheControl(this: void, value: string | undefined): CacheControl {
  cc.present = value !== undefined;
  cc.maxAge = -1;
  cc.sMaxAge = -1;
  cc.noStore = false;
  cc.noCache = false;
  cc.private = false;
  cc.public = false;
  cc.mustRevalidate = false;
  cc.proxyRevalidate = false;
  cc.mustUnderstand = false;
  cc.swr = -1;
  cc.sie = -1;
  if (value !== undefined) directives(value, onResponseDirective);
  return cc;
}

function onRequestDirective(this: void, name: string, arg: string | undefined): void {
  if (name === "max-age") rcc.maxAge = least(rcc.maxAge, freshnessArg(arg));
  else if (name === "max-stale") {
    // no value: any staleness is acceptable
    const d = arg === undefined ? MAX_DELTA : deltaSeconds(arg);
    if (d >= 0) rcc.maxStale = least(rcc.maxStale, d);
  } else if (name === "min-fresh") {
    const d = arg === undefined ? -1 : deltaSeconds(arg);
    if (d >= 0) rcc.minFresh = math.max(rcc.minFresh, d);
  } else if (name === "no-cache") rcc.noCache = true;
  else if (name === "no-store") rcc.noStore = true;
  else if (name === "only-if-cached") rcc.onlyIfCached = true;
}

/**
 * Parses a request's Cache-Control into `rcc`; `Pragma: no-cache` counts as `Cache-Control: no-cache` when the
 * request has no Cache-Control (RFC 9111 5.4). Returns whether the request carries any directive.
 */
export function parseRequestCacheControl(this: void, value: string | undefined, pragma: string | undefined): boolean {
  rcc.maxAge = -1;
  rcc.maxStale = -1;
  rcc.minFresh = -1;
  rcc.noCache = false;
  rcc.noStore = false;
  rcc.onlyIfCached = false;
  if (value !== undefined) {
    directives(value, onRequestDirective);
    return rcc.maxAge >= 0 || rcc.maxStale >= 0 || rcc.minFresh >= 0 || rcc.noCache || rcc.noStore || rcc.onlyIfCached;
  }
  if (pragma !== undefined) {
    directives(pragma, (name) => {
      if (name === "no-cache") rcc.noCache = true;
    });
  }
  return rcc.noCache;
}

// ---- Surrogate-Control (W3C Edge Architecture 1.0) -----------------------------------------------------------

/**
 * The directives of a Surrogate-Control value that apply to the surrogate `token` (lower case): untargeted
 * ones, and those targeted with `;token`. Returned as a Cache-Control value for `parseCacheControl`:
 * `max-age=N` (`max-age=N+M` also gives `stale-if-error=M`) and `no-store` (`no-store-remote` too: an edge is
 * a remote surrogate). Undefined when none applies, so that Cache-Control rules. Names are case-insensitive;
 * `max-age = 60` (spaces around `=`) and unknown directives are not directives.
 */
export function surrogateDirectives(this: void, value: string, token: string): string | undefined {
  let out: string | undefined = undefined;
  const add = (d: string) => {
    out = out === undefined ? d : out + ", " + d;
  };
  for (const [item] of string.gmatch(value, "[^,]+")) {
    let [d, target] = string.match(item, "^%s*([^;]-)%s*;%s*([^;%s]+)%s*$");
    if (d !== undefined) {
      if (lower(target!) !== token) continue;
    } else {
      [d] = string.match(item, "^%s*(.-)%s*$");
    }
    const [name, arg] = string.match(lower(d ?? ""), "^([%w-]+)(.*)$");
    if (name === undefined) continue;
    if (name === "max-age") {
      const [n, plus] = string.match(arg!, "^=(%d+)(.*)$");
      if (n === undefined) continue;
      if (plus === "") add("max-age=" + n);
      else {
        const [m] = string.match(plus!, "^%+(%d+)$");
        if (m === undefined) continue;
        add("max-age=" + n + ", stale-if-error=" + m);
      }
    } else if ((name === "no-store" || name === "no-store-remote") && arg === "") add("no-store");
  }
  return out;
}

// ---- CDN-Cache-Control (RFC 9213): a Structured Field Dictionary (RFC 8941) ---------------------------------

function isLcalpha(c: number): boolean {
  return c >= 97 && c <= 122;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** Length of a bare item at `i` (integer / decimal, string, token, boolean), or 0 when there is none. */
function bareItem(s: string, i: number, n: number): number {
  const c = byte(s, i);
  if (c === 45 || isDigit(c)) {
    let j = c === 45 ? i + 1 : i;
    const d0 = j;
    while (j <= n && isDigit(byte(s, j))) j++;
    if (j === d0 || j - d0 > 15) return 0;
    if (j <= n && byte(s, j) === 46) {
      const f0 = j + 1;
      j++;
      while (j <= n && isDigit(byte(s, j))) j++;
      if (j === f0 || j - f0 > 3) return 0;
    }
    return j - i;
  }
  if (c === 34) {
    let j = i + 1;
    while (j <= n) {
      const q = byte(s, j);
      if (q === 92) {
        const e = byte(s, j + 1);
        if (e !== 34 && e !== 92) return 0;
        j += 2;
      } else if (q === 34) return j - i + 1;
      else if (q < 32 || q > 126) return 0;
      else j++;
    }
    return 0;
  }
  if (c === 63) {
    const b = byte(s, i + 1);
    return b === 48 || b === 49 ? 2 : 0;
  }
  if (c === 42 || (c >= 65 && c <= 90) || isLcalpha(c)) {
    let j = i + 1;
    while (j <= n && (TCHAR.get(byte(s, j)) === true || byte(s, j) === 58 || byte(s, j) === 47)) j++;
    return j - i;
  }
  return 0;
}

/** Length of a key at `i` (lcalpha / "*", then lcalpha, digits, "_", "-", ".", "*"), or 0. */
function sfKey(s: string, i: number, n: number): number {
  const c = byte(s, i);
  if (!(isLcalpha(c) || c === 42)) return 0;
  let j = i + 1;
  while (j <= n) {
    const k = byte(s, j);
    if (isLcalpha(k) || isDigit(k) || k === 95 || k === 45 || k === 46 || k === 42) j++;
    else break;
  }
  return j - i;
}

/** Skips parameters (`;key[=bare-item]`) at `i`; the index after them, or -1 when malformed. */
function params(s: string, i: number, n: number): number {
  while (i <= n && byte(s, i) === 59) {
    i++;
    while (i <= n && byte(s, i) === 32) i++;
    const k = sfKey(s, i, n);
    if (k === 0) return -1;
    i += k;
    if (i <= n && byte(s, i) === 61) {
      const b = bareItem(s, i + 1, n);
      if (b === 0) return -1;
      i += 1 + b;
    }
  }
  return i;
}

/**
 * Whether a CDN-Cache-Control value parses as a Structured Field Dictionary (RFC 8941 3.2; inner lists are
 * not used by any cache directive and count as malformed). An invalid field is ignored as a whole: the cache
 * falls back to Cache-Control (RFC 9213 2.1).
 */
export function validTargetedField(this: void, v: string): boolean {
  const n = v.length;
  let i = 1;
  while (i <= n && byte(v, i) === 32) i++;
  if (i > n) return false;
  for (;;) {
    const k = sfKey(v, i, n);
    if (k === 0) return false;
    i += k;
    if (i <= n && byte(v, i) === 61) {
      const b = bareItem(v, i + 1, n);
      if (b === 0) return false;
      i += 1 + b;
    }
    i = params(v, i, n);
    if (i < 0) return false;
    while (i <= n && (byte(v, i) === 32 || byte(v, i) === 9)) i++;
    if (i > n) return true;
    if (byte(v, i) !== 44) return false;
    i++;
    while (i <= n && (byte(v, i) === 32 || byte(v, i) === 9)) i++;
    if (i > n) return false; // a trailing comma
  }
}

// ---- dates and Age --------------------------------------------------------------------------------------------

const MONTHS = new LuaTable<string, number>();
for (const [i, m] of ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"].entries()) MONTHS.set(m, i + 1);

/** Days from 1970-01-01 to a civil date (proleptic Gregorian). */
function daysFromCivil(y: number, m: number, d: number): number {
  if (m <= 2) y = y - 1;
  const era = math.floor(y / 400);
  const yoe = y - era * 400;
  const mp = (m + 9) % 12;
  const doy = math.floor((153 * mp + 2) / 5) + d - 1;
  const doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function toTime(y: number, mon: string, d: number, hh: number, mm: number, ss: number): number | undefined {
  const m = MONTHS.get(mon);
  if (m === undefined || d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60) return undefined;
  return daysFromCivil(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss;
}

/**
 * An HTTP-date (RFC 9110 5.6.7) as a time, or undefined when the text is not one: IMF-fixdate
 * ("Sun, 06 Nov 1994 08:49:37 GMT"), the obsolete RFC 850 form ("Sunday, 06-Nov-94 08:49:37 GMT", a two-digit
 * year read as the closest past century's) and asctime ("Sun Nov  6 08:49:37 1994"). A zone other than GMT
 * makes it invalid (nginx's own parser accepts any).
 */
export function httpDate(this: void, s: string): number | undefined {
  const n = s.length;
  if (n < 24 || n > 40) return undefined;
  let [d, mon, y, hh, mm, ss] = string.match(s, "^%a%a%a, (%d%d) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$");
  if (d !== undefined) return toTime(tonumber(y)!, mon!, tonumber(d)!, tonumber(hh)!, tonumber(mm)!, tonumber(ss)!);
  [d, mon, y, hh, mm, ss] = string.match(s, "^%a+, (%d%d)%-(%a%a%a)%-(%d%d) (%d%d):(%d%d):(%d%d) GMT$");
  if (d !== undefined) {
    const yy = tonumber(y)!;
    return toTime(yy < 70 ? 2000 + yy : 1900 + yy, mon!, tonumber(d)!, tonumber(hh)!, tonumber(mm)!, tonumber(ss)!);
  }
  [mon, d, hh, mm, ss, y] = string.match(s, "^%a%a%a (%a%a%a) ([ %d]%d) (%d%d):(%d%d):(%d%d) (%d%d%d%d)$");
  if (mon !== undefined) return toTime(tonumber(y)!, mon, tonumber(string.gsub(d!, " ", "")[0])!, tonumber(hh)!, tonumber(mm)!, tonumber(ss)!);
  return undefined;
}

/** The value of an Age field line: a non-negative integer (1*DIGIT), else undefined (the field is ignored). */
export function ageValue(this: void, s: string): number | undefined {
  const d = deltaSeconds(s);
  return d < 0 ? undefined : d;
}

// ---- freshness ----------------------------------------------------------------------------------------------

/** Statuses heuristically cacheable by default (RFC 9110 15.1): they may get a heuristic lifetime. */
const HEURISTIC = new LuaTable<number, boolean>();
for (const s of [200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501]) HEURISTIC.set(s, true);

export function heuristicallyCacheable(this: void, status: number): boolean {
  return HEURISTIC.get(status) === true;
}

/**
 * A heuristic freshness lifetime (RFC 9111 4.2.2): `fraction` of the time since Last-Modified (as of the
 * response's Date, else now), at most `max` seconds; -1 when the status is not heuristically cacheable or
 * there is no (valid) Last-Modified.
 */
export function heuristicLifetime(this: void, status: number, lastModified: number | undefined, date: number | undefined, now: number, fraction: number, max: number): number {
  if (lastModified === undefined || !heuristicallyCacheable(status)) return -1;
  const since = (date ?? now) - lastModified;
  if (since <= 0) return 0;
  return math.min(math.floor(since * fraction), max);
}

/**
 * Freshness lifetime in seconds (RFC 9111 4.2.1) from the parsed `cc` and the Expires/Date times;
 * `heuristic` (-1 when none) is used only without explicit freshness. Returns -1 when the response has neither
 * explicit nor heuristic freshness. An invalid Expires (repeated, or not an HTTP-date) means "already expired".
 */
export function freshnessLifetime(this: void, expires: number | undefined, expiresPresent: boolean, date: number | undefined, now: number, heuristic: number): number {
  if (cc.sMaxAge >= 0) return cc.sMaxAge;
  if (cc.maxAge >= 0) return cc.maxAge;
  if (expiresPresent) {
    if (expires === undefined) return 0;
    const lt = expires - (date ?? now); // relative to the origin's Date, not our clock
    return lt > 0 ? lt : 0;
  }
  return heuristic;
}

/**
 * Corrected initial age (RFC 9111 4.2.3): the Age value (undefined when absent or invalid) plus what the
 * Date says about transit.
 */
export function initialAge(this: void, age: number | undefined, date: number | undefined, responseTime: number, requestTime: number): number {
  // Date has a resolution of one second: compare whole seconds, or every response would look up to 1 s old
  const apparent = date === undefined ? 0 : math.max(0, math.floor(responseTime) - date);
  const delay = math.max(0, responseTime - requestTime);
  return math.max(apparent, (age ?? 0) + delay);
}

/** Flags of a stored object (metadata `flags`). */
export const FLAG_NO_STALE = 1; // must-revalidate / proxy-revalidate / s-maxage / no-cache: never serve stale
export const FLAG_NO_CACHE = 2; // no-cache: stored, but revalidated before every reuse

/** Stale windows an object may use, given the parsed `cc` and the policy defaults (seconds). */
export function staleWindows(this: void, defaultSwr: number, defaultSie: number): LuaMultiReturn<[number, number, number]> {
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
export function etagMatches(this: void, ifNoneMatch: string, etag: string): boolean {
  if (ifNoneMatch === "*") return true;
  const [bare] = string.gsub(etag, "^W/", "");
  for (const [tag] of string.gmatch(ifNoneMatch, '[^,%s][^,]*')) {
    const [t] = string.gsub(string.gsub(tag, "%s+$", "")[0], "^W/", "");
    if (t === bare) return true;
  }
  return false;
}
