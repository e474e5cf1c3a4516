import type { LuaFeature } from "../../core/feature";
import { timeText } from "../../core/clock";
import { boundKey, normaliseArgs } from "../../core/cache-key";
import { features } from "../../core/policy";
import { FLAG_NO_CACHE, FLAG_NO_STALE, heuristicallyCacheable, httpDate, parseRequestCacheControl, rcc } from "../../core/cache-rfc";
import { initMarkers } from "../../core/markers";
import { indexObject } from "../purge/tag-index";
import { cc, freshnessOf, type FreshnessPolicy } from "./freshness";
import { acceptsAnyCoding, joined, single, validator } from "./headers";
import { lookupMeta, metaString, parseMeta, sget, type Meta } from "./meta";
import { variantSig, varyNames } from "./vary";
import { forgetKeyMarker, invalidate, MARK_HARD, MARK_SOFT, objectMarkers } from "./markers";
import { initRefresh, refreshNow, refreshToken, REFRESH_HEADER, startBackgroundRefresh, STORED_HEADER } from "./refresh";
import { commitCapture, newCapture, ramDrop, ramHitLabel, ramLookup, ramStripsSurrogate, refreshRamCopy, serveRam, startCapture, takeCapture } from "./ram";
import { cacheFilePath, readStored, type StoredResponse } from "./disk-file";
import { cleanDiskHit, clearDiskHit, dropHandOver, handOver, handOverMarks, setDiskHit, takeMarks, takeOver } from "./hit";
import { latestMarkerTime, markersSnapshot } from "../../core/markers";
import { getWithBody, headerKeyPart } from "./unkeyed";

/**
 * The cache at run time: RFC 9111 decisions for the disk tier (stored by nginx's proxy_cache) and the RAM
 * hot tier (a lua_shared_dict served from the access phase). The parts:
 *   freshness.ts   the one freshness computation (lifetime, initial age, stale windows)
 *   meta.ts        freshness metadata of stored objects (`cdn_meta`) and their Vary variants
 *   disk-file.ts   what nginx stored, read back when metadata is missing (never assumed fresh)
 *   markers.ts     purge and invalidation markers (lua-src/core/markers.ts: persistent, authoritative)
 *   refresh.ts     refreshes through the edge itself (stale-while-revalidate, revalidation)
 *   ram.ts         the RAM tier (lookup, serving, admission)
 *
 * CONTRACT with the purge feature (keep these names): the cache key of a request is `$cdn_cache_key`
 * (computed here, in the access phase). Disk entries are nginx's (`proxy_cache_path ... levels=1:2`), file
 * name = md5 hex of the disk key. With Vary, the first variant stored lives under K; every other variant
 * under its own disk key K .. "\0" .. sig, which `$cdn_disk_key` (the proxy_cache_key) holds for the
 * request. Markers make every variant of K unreachable whether or not its file is deleted.
 * `$cdn_cache_status` is the final status label (HIT, HIT-RAM, STALE-RAM, MISS, EXPIRED, STALE,
 * REVALIDATED, BYPASS).
 *
 * Design: nginx ignores the origin's caching headers and keeps every stored origin response (never one of
 * its own 502/504 errors) for a long time (proxy_cache_valid <max>); freshness lives in the metadata,
 * written only once a response completed (log phase: a truncated, reset or stalled fetch changes nothing),
 * and read by the access phase, which steers nginx: fresh -> nginx serves its HIT; stale -> a background
 * refresh (stale-while-revalidate), a synchronous conditional refresh through the edge itself
 * (revalidation, stale-if-error) or a forced refetch (`$cdn_cache_bypass`). When metadata is missing the
 * access phase reads it back from nginx's own file. Storability is decided in the header filter, which runs
 * before nginx evaluates `proxy_no_cache $cdn_nostore`.
 *
 * Per-request state lives in locals and nginx variables (and ngx.ctx for what the log phase needs): the
 * access handler yields (refreshes, waiting for another request's refresh), so nothing of a request is kept
 * in module variables.
 */

// the safe methods (RFC 9110 9.2.1); every other method (including unknown ones) invalidates (RFC 9111 4.4)
const SAFE = new LuaTable<string, boolean>();
for (const m of ["GET", "HEAD", "OPTIONS", "TRACE"]) SAFE.set(m, true);

// response fields a 304 never updates on the stored object (RFC 9111 3.2, 4.3.4): framing and hop-by-hop
// fields, fields the edge computes or keeps out of stored copies, Vary (it says which variant this is), and
// the fields that describe the stored bytes themselves (their encoding, digest and validator: a 304 cannot
// change the body they belong to)
const NOT_UPDATED = new LuaTable<string, boolean>();
for (const h of ["content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "age", "vary", "set-cookie", "x-cdn-stored", "content-range", "content-encoding", "content-md5", "etag"]) NOT_UPDATED.set(h, true);

// statuses whose caching rules the cache understands (RFC 9111 5.2.2.3 must-understand)
const UNDERSTOOD = new LuaTable<number, boolean>();
for (const st of [200, 203, 204, 300, 301, 302, 303, 307, 308, 404, 405, 410, 414, 501]) UNDERSTOOD.set(st, true);

const find = string.find;
const sub = string.sub;
const byte = string.byte;

// a metadata flag next to cache-rfc's: the stored response has none of the headers the edge removes from
// hits (headers its Connection header names, Cache-Tag / Surrogate-Key, Set-Cookie), so a hit skips looking
const FLAG_CLEAN = 4;

const MAX_TAGS = 64;
const MAX_TAG_LEN = 256;

/** The purge tags of a response (Cache-Tag and Surrogate-Key, any number of lines), comma-separated. */
function tagsOf(h: LuaTable<string, NgxHeaderValue>): string {
  const out: string[] = [];
  for (const name of ["cache-tag", "surrogate-key"]) {
    const v = h.get(name);
    if (v !== undefined) {
      const lines = typeof v === "string" ? [v] : v;
      for (const line of lines) {
        for (const [tag] of string.gmatch(line, "[^,%s]+")) {
          if (tag.length <= MAX_TAG_LEN && out.length < MAX_TAGS) out.push(tag);
        }
      }
    }
  }
  return table.concat(out, ",");
}

/**
 * True when a response has none of the headers the edge removes from hits: those its Connection header
 * (`conn`) names, Cache-Tag / Surrogate-Key, Set-Cookie.
 */
function cleanHeaders(h: LuaTable<string, NgxHeaderValue>, conn: NgxHeaderValue | undefined): boolean {
  if (h.get("cache-tag") !== undefined || h.get("surrogate-key") !== undefined || h.get("set-cookie") !== undefined || h.get("surrogate-control") !== undefined) return false;
  if (conn === undefined) return true;
  for (const line of typeof conn === "string" ? [conn] : conn) {
    for (const [name] of string.gmatch(line, "[^,%s]+")) {
      const l = string.lower(name);
      if (l !== "close" && l !== "keep-alive") return false;
    }
  }
  return true;
}

/** An absolute path for a path relative to the nginx prefix. */
function prefixed(path: string): string {
  return string.sub(path, 1, 1) === "/" ? path : ngx.config.prefix() + path;
}

/** Metadata to write once the response completed (log phase). */
interface PendingMeta {
  mkey: string;
  record: string;
  /** A new object: nginx must have stored exactly this response (its disk key, Date and ETag) for the record to be written. */
  verify?: { disk: string; id: string; etag: string; start: number };
  /** Every variant of this key was replaced: its per-key marker can go. */
  forgetKey?: string;
}

// Requests of this worker with metadata to write / a refetch lock to release in the log phase. The log
// phase only touches ngx.ctx while these are non-zero; a request that ends early leaves a count behind,
// which only costs that lookup, never correctness.
/**
 * Normalised query strings by raw query string, per worker: at most ARGS_MEMO_ENTRIES of at most
 * ARGS_MEMO_MAX_LEN bytes (about 2.5 MB at worst), emptied when full.
 */
let argsMemo = new LuaTable<string, string>();
let argsMemoSize = 0;
const ARGS_MEMO_ENTRIES = 8192;
const ARGS_MEMO_MAX_LEN = 256;
let pendingMeta = 0;
/** Seconds a provisional record of a fetch lives when its log phase never comes (a worker that died). */
const PROVISIONAL_TTL = 600;
let pendingLocks = 0;

export const cache: LuaFeature<"cache"> = {
  key: "cache",
  setup(data) {
    const headerVars = data.bypassHeaderVars;
    const cookieVars = data.bypassCookieVars;
    const authBypass = data.authBypass;
    const useArgs = data.query !== "none";
    const rulesKey = features.rules !== undefined && features.rules.keyParts;
    const keyHeaders = data.keyHeaders;
    const ttlTable = data.ttl;
    const anyTtl = ttlTable["any"];
    const defSwr = data.swr;
    const defSie = data.sie;
    const revalidate = data.revalidate;
    const maxLifetime = data.maxLifetime;
    const lockWait = data.lockTimeout;
    const refreshMs = data.refreshTimeoutMs;
    const ramOn = data.ram !== undefined;
    const ramMax = data.ram !== undefined ? data.ram.maxObjectSize : 0;
    // the purge feature removes the tag headers from client responses unless it exposes them: a RAM copy
    // never stores them then, so a RAM hit needs no purge header work
    const purgeData = features.purge;
    const dropTags = purgeData !== undefined && purgeData.enabled && !purgeData.exposeTags;
    const minHits = data.ram !== undefined ? data.ram.minHits : 0;
    const keepTags = data.tags;
    // a rule may set $cdn_cache_bypass before the cache runs
    const rulesBypass = features.rules !== undefined && features.rules.rules.some((r) => r.bypass !== undefined);
    const diskDir = prefixed(data.diskPath);
    const honourClient = data.clientDirectives;
    const storeSetCookie = data.storeSetCookie;
    const statusVar = data.statusVar;
    const fp: FreshnessPolicy = { ttl: -1, heuristicFraction: data.heuristic.fraction, heuristicMax: data.heuristic.max, swr: defSwr, sie: defSie, maxLifetime, surrogate: data.surrogateToken };
    initRefresh();
    initMarkers({ dir: prefixed(data.statePath), ttl: data.markerTtl, user: data.workerUser });

    const metaDict = ngx.shared.get("cdn_meta")!;
    const ramDict = ngx.shared.get("cdn_ram");

    const setPendingMeta = (m: PendingMeta) => {
      const ctx = ngx.ctx;
      if (ctx.get("cdn_pending_meta") === undefined) pendingMeta++;
      ctx.set("cdn_pending_meta", m);
    };

    /** The freshness policy for a status: the policy's TTL table entry (-1: none, RFC heuristics apply). */
    const policyFor = (status: number): FreshnessPolicy => {
      fp.ttl = ttlTable[tostring(status)] ?? anyTtl ?? -1;
      return fp;
    };

    /** A rule's TTL override for the current request (seconds), if a rule set one. */
    const ruleTtl = (): number | undefined => {
      const v = ngx.var.get("cdn_rules_ttl");
      if (v === undefined || v === "") return undefined;
      const [t] = string.match(v, "_(%d+)$");
      return tonumber(t);
    };
    const RULE_TTL_STATUS = new LuaTable<number, boolean>();
    for (const st of [200, 203, 301, 302, 307, 308]) RULE_TTL_STATUS.set(st, true);

    /**
     * Whether a stored file holds the response with this Date and ETag, written at or after `start` (a new
     * object: after its request started).
     */
    const isStored = (stored: StoredResponse | undefined, id: string, etag: string, start: number): stored is StoredResponse => {
      if (stored === undefined || stored.storedAt < math.floor(start)) return false;
      const h = stored.headers as unknown as LuaTable<string, NgxHeaderValue>;
      if (id !== "" && single(h.get("date")) !== id) return false;
      return etag === "" || validator(h.get("etag")) === etag;
    };

    /**
     * Rebuilds the metadata of `mkey` from what nginx stored under `disk` (when it was lost): the object
     * (stored at the earlier of nginx's store time and the response's Date, so a purge never misses it),
     * `false` when the stored response cannot be trusted as an object of this request (an nginx error page,
     * a response this policy would not store), undefined when nothing is stored, or "nginx" for a varying
     * response whose Vary index was lost (a fresh, unretired one: nginx's own Vary check then serves it only
     * to a request of its variant, or misses).
     */
    const recover = (key: string, mkey: string, disk: string, varies: boolean): Meta | false | undefined | "nginx" => {
      const stored = readStored(diskDir, disk);
      if (stored === undefined) return undefined;
      // a fetch whose response is on disk but whose log phase has not written the record yet (another
      // worker, or this one between events): its provisional record, once the file proves it is that response
      const p = sget(metaDict, "P:" + mkey);
      if (p !== undefined) {
        const rec = parseMeta(p);
        if (rec !== undefined && isStored(stored, rec.id, rec.etag, rec.storedAt)) {
          metaDict.set(mkey, p);
          return rec;
        }
      } else {
        // that log phase may have run since this request looked: it writes the record, then drops the copy
        const cur = sget(metaDict, mkey);
        const rec = cur === undefined ? undefined : parseMeta(cur);
        if (rec !== undefined) return rec;
      }
      // read-only use of the stored headers, like ngx.header
      const h = stored.headers as unknown as LuaTable<string, NgxHeaderValue>;
      const status = stored.status;
      if (status < 200 || status === 206 || status === 304 || status === 502 || status === 504) return false;
      const names = varyNames(h.get("vary"));
      if (names === "*" || (names === "" && varies)) return false;
      const date = single(h.get("date"));
      const d = typeof date === "string" ? httpDate(date) : undefined;
      const at = d !== undefined && d < stored.storedAt ? d : stored.storedAt;
      const rt = ruleTtl();
      let [lt, ia, swr, sie, flags] = freshnessOf(h, status, at, at, policyFor(status));
      if (cc.noStore || cc.private || (h.get("set-cookie") !== undefined && !storeSetCookie)) return false;
      if (cleanHeaders(h, h.get("connection"))) flags = flags | FLAG_CLEAN;
      if (rt !== undefined && RULE_TTL_STATUS.get(status) === true) lt = (flags & FLAG_NO_CACHE) !== 0 ? 0 : math.min(rt, maxLifetime);
      const rec: Meta = {
        storedAt: at,
        lifetime: lt < 0 ? 0 : lt,
        initAge: ia,
        swr,
        sie,
        flags,
        lm: validator(h.get("last-modified")),
        id: typeof date === "string" ? date : "",
        tags: keepTags ? tagsOf(h) : "",
        hdrs: "",
        etag: validator(h.get("etag")),
      };
      if (names !== "" && !varies) {
        // which variant the file holds is unknown here: no record; fresh and not retired -> nginx decides
        const [mark] = marked(key, rec.storedAt, rec.tags);
        return mark === 0 && rec.initAge + ngx.now() - rec.storedAt < rec.lifetime ? "nginx" : false;
      }
      metaDict.set(mkey, metaString(rec));
      if (keepTags) indexObject(key, rec.tags);
      return rec;
    };

    /**
     * When the answer of this request, fetched from the origin, counts as stored: the request's start, or,
     * when no marker was set since the access phase sent it to the origin (the snapshot it took is
     * unchanged), just after the markers that existed then: a purge and the request that follows it can
     * fall in one millisecond of the request clock, and that request's answer is newer than the purge.
     */
    const fetchedAt = (key: string): number => {
      const start = ngx.req.start_time();
      const snap = takeMarks();
      if (snap === undefined || snap !== markersSnapshot(key)) return start;
      return math.max(start, latestMarkerTime(key) + 1e-6);
    };

    /** Access phase: this request goes to the origin; what the markers were at that moment. */
    const fetching = (key: string) => handOverMarks(markersSnapshot(key));

    /** The markers' decision for the object of `key`: MARK_NONE / HARD / SOFT, and when a soft one applies. */
    const marked = (key: string, storedAt: number, tags: string) => objectMarkers(key, storedAt, tags, data.host);

    /** Computes the cache key of a URL (path + query) the way the access phase does, for invalidation. */
    const keyOf = (scheme: string, host: string, uri: string): string => {
      const [q] = string.find(uri, "?", 1, true);
      const path = q === undefined ? uri : string.sub(uri, 1, q - 1);
      let key = data.host ? scheme + "://" + host + path : path;
      if (useArgs && q !== undefined) {
        const args = normaliseArgs(data, ngx.decode_args(string.sub(uri, q + 1), 100));
        if (args !== "") key = key + "?" + args;
      }
      return boundKey(key);
    };

    /**
     * The request's cache key from `req` ($cdn_req: a flag byte, then `scheme://host` unless the policy
     * leaves it out, then the request URI): the raw path, the normalised query.
     */
    const requestKey = (req: string): string => {
      const [q] = find(req, "?", 1, true);
      let key = q === undefined ? sub(req, 2) : sub(req, 2, q - 1);
      if (q !== undefined && useArgs) {
        // the normalised query is a function of the query string alone: hot objects repeat theirs, so it is
        // remembered per worker (parsing, sorting and escaping cost more than the rest of a RAM hit)
        const raw = ngx.var.get("args") ?? "";
        let norm = argsMemo.get(raw);
        if (norm === undefined) {
          const [args] = ngx.req.get_uri_args(100);
          norm = normaliseArgs(data, args);
          if (raw.length <= ARGS_MEMO_MAX_LEN) {
            if (argsMemoSize >= ARGS_MEMO_ENTRIES) {
              argsMemo = new LuaTable();
              argsMemoSize = 0;
            }
            argsMemo.set(raw, norm);
            argsMemoSize++;
          }
        }
        if (norm !== "") key = key + "?" + norm;
      }
      if (rulesKey) {
        // cache key additions of the rules engine (variant, image format, rule key parts)
        const extra = ngx.var.get("cdn_rules_key");
        if (extra !== undefined && extra !== "") key = key + "#" + extra;
      }
      // forwarding headers the policy lets through (see ./unkeyed.ts)
      if (keyHeaders !== undefined) key = key + headerKeyPart(keyHeaders);
      // at most 2 KB, so nginx can write it into its cache file header (core/cache-key.ts)
      return boundKey(key);
    };

    /**
     * Policy bypass (cookies, headers, a rule) or Authorization: sets the variables, returns true. `plain`:
     * the request has none of the headers $cdn_req watches (bypass headers, Authorization, Cookie when
     * bypass cookies are set), so only a rule can still bypass.
     */
    const bypassed = (plain: boolean): boolean => {
      const vars = ngx.var;
      if (plain) {
        if (rulesBypass && vars.get("cdn_cache_bypass") === "1") {
          vars.set("cdn_nostore", "1");
          return true;
        }
        return false;
      }
      const hasAuth = authBypass && vars.get("http_authorization") !== undefined;
      let bypass = false;
      for (const name of headerVars) {
        const value = vars.get(name);
        if (value !== undefined && value !== "") {
          bypass = true;
          break;
        }
      }
      if (!bypass) {
        for (const name of cookieVars) {
          if (vars.get(name) !== undefined) {
            bypass = true;
            break;
          }
        }
      }
      // a GET or HEAD with a body: unkeyed input (see ./unkeyed.ts)
      if (!bypass && getWithBody(ngx.req.get_method())) bypass = true;
      if (bypass || (rulesBypass && vars.get("cdn_cache_bypass") === "1")) {
        // policy (or rule) bypass: neither served from the cache nor stored
        vars.set("cdn_cache_bypass", "1");
        vars.set("cdn_nostore", "1");
        return true;
      }
      if (authBypass && hasAuth) {
        // Authorization: not served from the cache; stored only when the response allows it (header filter)
        vars.set("cdn_cache_bypass", "1");
        return true;
      }
      return false;
    };

    /** The RAM tier's answer for a fresh or stale-while-revalidate object; returns when it has none. */
    const tryRam = (ram: NgxSharedDict, meta: NgxSharedDict, key: string, method: string, now: number, inm: boolean, ims: boolean): void => {
      const [obj, ramKey] = ramLookup(ram, key, now);
      if (obj === undefined) return;
      const [p, purgeAt] = marked(key, obj.storedAt, obj.tags);
      if (p === MARK_HARD) {
        ramDrop(ram, key);
        return;
      }
      const age = obj.initAge + now - obj.storedAt;
      if (p === 0 && age < obj.lifetime) return serveRam(obj, age, "HIT-RAM", method, inm, ims, statusVar);
      const staleness = p === MARK_SOFT ? now - purgeAt : age - obj.lifetime;
      if ((obj.flags & FLAG_NO_STALE) === 0 && staleness < obj.swr) {
        const lockKey = "R:" + ramKey;
        if (meta.add(lockKey, true, 60)[0]) startBackgroundRefresh(lockKey, refreshMs);
        return serveRam(obj, age, "STALE-RAM", method, inm, ims, statusVar);
      }
    };

    const access = () => {
      const vars = ngx.var;
      // "1" + key source when the request has none of the headers the cache decides on (the common case:
      // none of them is then read), "0" + key source otherwise
      const req = vars.get("cdn_req")!;
      const plain = byte(req, 1) === 49;
      const bypass = bypassed(plain);
      const key = requestKey(req);

      const marker = plain ? undefined : vars.get("http_x_cdn_refresh");
      if (marker !== undefined) {
        vars.set("cdn_cache_key", key);
        ngx.req.clear_header(REFRESH_HEADER);
        if (marker === refreshToken()) {
          // a refresh sent by this edge: fetch (conditionally when we hold validators) and store
          vars.set("cdn_cache_refresh", "1");
          vars.set("cdn_cache_bypass", "1");
          const [st, m, mkey, disk] = lookupMeta(metaDict, key);
          vars.set("cdn_disk_key", disk);
          // conditional only for an object that still exists (not invalidated, not hard-purged)
          if (revalidate && st === "O" && marked(key, m!.storedAt, m!.tags)[0] !== MARK_HARD) {
            vars.set("cdn_cache_mkey", mkey);
            if (m!.etag !== "") vars.set("cdn_inm", m!.etag);
            if (m!.lm !== "") vars.set("cdn_ims", m!.lm);
          }
          fetching(key);
          return;
        }
      }
      const method = ngx.req.get_method();
      if (method !== "GET" && method !== "HEAD") {
        vars.set("cdn_cache_key", key);
        vars.set("cdn_disk_key", key);
        return;
      }
      const meta = metaDict;
      // the client's own directives (RFC 9111 5.2.1), unless the policy ignores them
      let asks = false;
      if (honourClient && !plain) {
        const rcc = vars.get("http_cache_control");
        const pragma = rcc === undefined ? vars.get("http_pragma") : undefined;
        asks = (rcc !== undefined || pragma !== undefined) && parseRequestCacheControl(rcc, pragma);
      }
      if (asks && rcc.noStore) vars.set("cdn_nostore", "1"); // nothing of this exchange is stored
      if (bypass) {
        // not looked up, but a response stored for it must land under its variant's disk key
        const [, , , disk] = lookupMeta(meta, key);
        vars.set("cdn_cache_key", key);
        vars.set("cdn_disk_key", disk);
        return;
      }
      const now = ngx.now();
      // If-None-Match takes precedence over If-Modified-Since (RFC 9110 13.2.2): nginx, which answers the
      // conditionals of a disk hit, would otherwise also require the date to match
      const inm = !plain && vars.get("http_if_none_match") !== undefined;
      const ims = !plain && vars.get("http_if_modified_since") !== undefined;
      if (inm && ims) ngx.req.clear_header("If-Modified-Since");

      // RAM tier first (a request with directives of its own, or a range request, takes the disk path)
      if (ramDict !== undefined && !asks && (plain || vars.get("http_range") === undefined)) tryRam(ramDict, meta, key, method, now, inm, ims);

      // disk tier: steer nginx with the metadata ($cdn_disk_key is set here, a RAM hit never needs it)
      let [state, m, mkey, disk, varies] = lookupMeta(meta, key);
      vars.set("cdn_disk_key", disk);
      const recovered = state === undefined;
      if (recovered) {
        // no metadata: read back what nginx stored, if anything (never assume it is fresh)
        const r = recover(key, mkey, disk, varies);
        vars.set("cdn_cache_key", key);
        if (r === undefined) {
          if (asks && rcc.onlyIfCached) return ngx.exit(504);
          fetching(key);
          return; // nothing stored: nginx fetches (MISS; proxy_cache_lock coalesces)
        }
        if (r === "nginx") return;
        if (r === false) state = "X"; // a stored response that cannot be trusted: fetch again
        else {
          state = "O";
          m = r;
        }
      }
      let staleness: number;
      let gone = state === "X";
      // the client asks for validation of a fresh object (no-cache, max-age, min-fresh)
      let validate = false;
      let age = 0;
      if (gone) staleness = 1e9;
      else {
        const [p, purgeAt] = marked(key, m!.storedAt, m!.tags);
        age = m!.initAge + now - m!.storedAt;
        gone = p === MARK_HARD;
        if (gone) staleness = 1e9;
        else if (p === MARK_SOFT) staleness = now - purgeAt;
        else if (age < m!.lifetime) {
          if (!asks || (!rcc.noCache && (rcc.maxAge < 0 || age <= rcc.maxAge) && (rcc.minFresh < 0 || m!.lifetime - age > rcc.minFresh))) {
            // fresh: nginx serves its HIT; the header filter gets the key and record without variables
            // (they are written there when nginx does not have the object after all)
            handOver(key, mkey, m!);
            return;
          }
          validate = true;
          staleness = 0;
        } else staleness = age - m!.lifetime;
      }
      if (!recovered) vars.set("cdn_cache_key", key);
      vars.set("cdn_cache_mkey", mkey);
      // a client that asks for validation (no-cache, an age or freshness it requires) gets no stale object
      if (asks && (rcc.noCache || (rcc.maxAge >= 0 && age > rcc.maxAge) || rcc.minFresh >= 0)) validate = true;
      const canStale = state === "O" && (m!.flags & FLAG_NO_STALE) === 0 && staleness < 1e9 && !validate;
      if (asks) {
        // max-stale: the client takes this much staleness without validation (never past must-revalidate)
        if (canStale && rcc.maxStale >= 0 && staleness <= rcc.maxStale) {
          vars.set("cdn_cache_status", "STALE");
          return;
        }
        // only-if-cached: nothing usable without asking the origin
        if (rcc.onlyIfCached) return ngx.exit(504);
      }
      if (canStale && staleness < m!.swr) {
        // stale-while-revalidate: this request gets the stale object, one background refresh per key
        const lockKey = "R:" + mkey;
        if (meta.add(lockKey, true, 60)[0]) startBackgroundRefresh(lockKey, refreshMs);
        vars.set("cdn_cache_status", "STALE");
        return;
      }
      const sieOk = canStale && staleness < m!.sie;
      const conditional = !gone && revalidate && (m!.etag !== "" || m!.lm !== "");
      const lockKey = "L:" + mkey;
      if (meta.add(lockKey, true, lockWait + refreshMs / 1000)[0]) {
        if (sieOk || conditional) {
          // synchronous refresh through the edge (conditional when we hold validators), then serve what
          // the disk now holds: the revalidated or new object, or the stale one if the origin failed. An
          // answer the edge does not store is relayed to this client (one origin request, never two),
          // unless it is an error that stale-if-error lets us answer with the stale object instead.
          vars.set("cdn_cache_status", "EXPIRED");
          const [status, stored] = refreshNow(refreshMs, sieOk ? "answers" : "all", lockKey);
          meta.delete(lockKey);
          // the refresh wrote new metadata: the disk holds the revalidated (or new) object, serve it once
          // even when its lifetime is 0 (no-cache). A new object's record is written in the refresh's log
          // phase, which can trail its answer by a moment when another worker served it: wait for it
          let [st2, m2] = lookupMeta(meta, key);
          const newer = () => st2 === "O" && (m === undefined || state !== "O" || m2!.storedAt > m.storedAt);
          if (stored && !newer()) {
            const until = ngx.now() + 0.25;
            while (!newer() && ngx.now() < until) {
              ngx.sleep(0.005);
              [st2, m2] = lookupMeta(meta, key);
            }
          }
          if (newer()) {
            vars.set("cdn_cache_status", status === 304 ? "REVALIDATED" : "EXPIRED");
            return;
          }
          // a failed refresh (no answer, a 5xx, or one the edge meant to store but did not get whole)
          if (sieOk && (status === 0 || status >= 500 || stored)) {
            vars.set("cdn_cache_status", "STALE");
            return;
          }
        }
        // refetch: nginx goes to the origin and replaces the stored object (lock released in the log phase)
        vars.set("cdn_cache_lock", lockKey);
        pendingLocks++;
        vars.set("cdn_cache_bypass", "1");
        // a hard-purged (or invalidated) object no longer exists: to the client this is a MISS
        vars.set("cdn_cache_status", gone ? "MISS" : "EXPIRED");
        fetching(key);
        return;
      }
      // another request is refreshing this key: wait for it (request coalescing for stale objects)
      const deadline = now + lockWait;
      const was = state === "O" ? m!.storedAt : -1;
      while (ngx.now() < deadline) {
        ngx.sleep(0.01);
        const [st2, m2] = lookupMeta(meta, key);
        if (st2 === "O" && m2!.storedAt !== was) return; // refreshed by the other request
        if (meta.get(lockKey)[0] === undefined) break;
      }
      if (sieOk) {
        vars.set("cdn_cache_status", "STALE");
        return;
      }
      vars.set("cdn_cache_bypass", "1");
      vars.set("cdn_cache_status", gone ? "MISS" : "EXPIRED");
      fetching(key);
    };

    /** Removes the response headers the origin named in `Connection` (RFC 9110 7.6.1); returns that header. */
    const dropConnectionHeaders = (): string | undefined => {
      const conn = ngx.var.get("upstream_http_connection");
      if (conn === undefined) return undefined;
      for (const [name] of string.gmatch(conn, "[^,%s]+")) {
        const l = string.lower(name);
        if (l !== "close" && l !== "keep-alive") ngx.header.set(name, undefined);
      }
      return conn;
    };

    /** A successful unsafe request invalidates the target URI and same-host Location / Content-Location. */
    const invalidateAfterUnsafe = (key: string, status: number) => {
      if (status < 200 || status >= 400) return;
      const vars = ngx.var;
      invalidate(metaDict, ramDict, key, cacheFilePath(diskDir, key));
      const scheme = vars.get("scheme")!;
      const host = vars.get("host")!;
      for (const name of ["Location", "Content-Location"]) {
        const v = single(ngx.header.get(name));
        if (typeof v === "string") {
          let u: string | undefined = v;
          if (string.sub(v, 1, 1) !== "/") {
            const [s, hst, rest] = string.match(v, "^(https?)://([^/]+)(.*)$");
            u = s !== undefined && string.lower(hst!) === string.lower(host) ? (rest === "" ? "/" : rest) : undefined;
          }
          if (u !== undefined) {
            const k = keyOf(scheme, host, u);
            invalidate(metaDict, ramDict, k, cacheFilePath(diskDir, k));
          }
        }
      }
    };

    /**
     * The header fields of a 304 that update the stored object (RFC 9111 3.2: every field, except framing,
     * hop-by-hop and a few the edge manages), merged over those of earlier 304s: "name \2 line \3 line \1".
     */
    const updatedHeaders = (old: string): string => {
      const fields = new LuaTable<string, string>();
      const order: string[] = [];
      for (const [name, value] of string.gmatch(old, "([^\u0001\u0002]+)\u0002([^\u0001]*)\u0001")) {
        fields.set(string.lower(name), name + "\u0002" + value);
        order.push(string.lower(name));
      }
      const conn = ngx.var.get("upstream_http_connection");
      const dropped = new LuaTable<string, boolean>();
      if (conn !== undefined) for (const [n] of string.gmatch(conn, "[^,%s]+")) dropped.set(string.lower(n), true);
      for (const [name, value] of pairs(ngx.resp.get_headers(100, true))) {
        const l = string.lower(name);
        if (NOT_UPDATED.get(l) !== true && dropped.get(l) !== true) {
          const v = typeof value === "object" ? table.concat(value, "\u0003") : value;
          if (fields.get(l) === undefined) order.push(l);
          fields.set(l, name + "\u0002" + v);
        }
      }
      table.sort(order);
      const parts: string[] = [];
      let last = "";
      for (const l of order) {
        if (l !== last) parts.push(fields.get(l)! + "\u0001");
        last = l;
      }
      return table.concat(parts);
    };

    /** Applies the fields of earlier 304s to the stored response going out (a disk hit). */
    const applyUpdatedHeaders = (hdrs: string) => {
      const h = ngx.header;
      for (const [name, value] of string.gmatch(hdrs, "([^\u0001\u0002]+)\u0002([^\u0001]*)\u0001")) {
        const [multi] = string.find(value, "\u0003", 1, true);
        if (multi === undefined) h.set(name, value);
        else {
          const lines: string[] = [];
          for (const [line] of string.gmatch(value, "[^\u0003]+")) lines.push(line);
          h.set(name, lines);
        }
      }
    };

    let mismatchWarnedAt = 0;

    /**
     * A disk hit: the metadata the access phase used (read back from the stored response when the access
     * phase found none, e.g. a request racing the one that stored it), checked against the response nginx
     * serves; Age; RAM admission.
     */
    const diskHit = (key: string, status: number, method: string, preset: string | undefined, now: number, mkey: string | undefined, m: Meta | undefined) => {
      const vars = ngx.var;
      const meta = metaDict;
      const h = ngx.header;
      if (m === undefined && mkey !== undefined && mkey !== "") {
        const s = sget(meta, mkey);
        if (s !== undefined) m = parseMeta(s);
      }
      const date = single(h.get("date"));
      if (m !== undefined && m.id !== "" && date !== m.id) {
        // the record describes another response than the one on disk: drop it, the next request reads the
        // stored file back (this one is served with the age its own headers give)
        meta.delete(mkey!);
        if (now - mismatchWarnedAt > 10) {
          mismatchWarnedAt = now;
          ngx.log(ngx.WARN, "cache: the metadata of ", key, " did not describe the stored response; rebuilt from the file");
        }
        m = undefined;
      }
      const clean = m !== undefined && (m.flags & FLAG_CLEAN) !== 0;
      const label = preset !== undefined && preset !== "" ? preset : "HIT";
      setDiskHit(label, clean);
      if (statusVar) vars.set("cdn_cache_status", label);
      if (!clean) {
        dropConnectionHeaders();
        // a stored Set-Cookie (storeSetCookie) is for the client that fetched the object only
        if (storeSetCookie && h.get("set-cookie") !== undefined) h.set("Set-Cookie", undefined);
      }
      if (m === undefined) {
        // served with the age the stored headers give (Date: the earliest it can have been stored)
        const d = typeof date === "string" ? httpDate(date) : undefined;
        const at = d !== undefined && d < now ? d : now;
        const [, ia] = freshnessOf(h, status, at, at, policyFor(status));
        h.set("Age", tostring(math.floor(ia + now - at)));
        return;
      }
      if (m.hdrs !== "") applyUpdatedHeaders(m.hdrs);
      h.set("Age", tostring(math.floor(m.initAge + now - m.storedAt)));
      if (ramOn && status === 200 && method === "GET" && vars.get("http_range") === undefined) {
        const [n] = meta.incr("H:" + key, 1, 0, 60);
        if (n !== undefined && n >= minHits) {
          const names = varyNames(h.get("vary"));
          // admitted now, with the body of the file being served (if it still is the response going out)
          const cap = names === "*" ? undefined : newCapture(key, names, m, ramMax, dropTags, vars.get("cdn_disk_key") ?? key, typeof date === "string" ? date : "");
          if (cap !== undefined) {
            const stored = readStored(diskDir, cap.disk, ramMax);
            if (isStored(stored, cap.id, cap.etag, 0) && stored.body !== undefined) commitCapture(ramDict!, cap, stored.body);
          }
        }
      }
    };

    /** The origin answered a revalidation with 304: the stored object is fresh again, updated headers. */
    const revalidated = (key: string, now: number): boolean => {
      const vars = ngx.var;
      vars.set("cdn_nostore", "1");
      const mkey = vars.get("cdn_cache_mkey");
      if (mkey === undefined || mkey === "") return false;
      const s = sget(metaDict, mkey);
      const old = s === undefined ? undefined : parseMeta(s);
      if (old === undefined) return false;
      const h = ngx.header;
      const start = fetchedAt(key);
      fp.ttl = old.lifetime;
      let [lt, ia, swr, sie, flags, explicit] = freshnessOf(h, 200, now, start, fp);
      if (!explicit) {
        // no freshness information in the 304: the stored lifetime and windows stay
        lt = old.lifetime;
        swr = old.swr;
        sie = old.sie;
        flags = old.flags;
      } else if (lt < 0) lt = old.lifetime;
      const hdrs = updatedHeaders(old.hdrs);
      // still clean when no header a hit must lose came with the 304s
      const lh = string.lower(hdrs);
      const clean =
        (old.flags & FLAG_CLEAN) !== 0 &&
        find(lh, "cache-tag\u0002", 1, true)[0] === undefined &&
        find(lh, "surrogate-key\u0002", 1, true)[0] === undefined &&
        find(lh, "surrogate-control\u0002", 1, true)[0] === undefined;
      if ((flags & FLAG_CLEAN) !== 0) flags = flags - FLAG_CLEAN;
      if (clean) flags = flags + FLAG_CLEAN;
      const lmNew = validator(h.get("last-modified"));
      // the body (and the headers nginx stored with it) stay: the record still describes that response
      // the stored ETag stays (a 304 never replaces it, NOT_UPDATED), and so does the validator sent upstream
      const rec: Meta = { storedAt: start, lifetime: lt, initAge: ia, swr, sie, flags, lm: lmNew !== "" ? lmNew : old.lm, id: old.id, tags: old.tags, hdrs, etag: old.etag };
      // nothing new goes to disk: the record is the whole update, written now so that the request waiting
      // for this revalidation (refreshNow) finds it as soon as it has the answer
      metaDict.set(mkey, metaString(rec));
      if (ramDict !== undefined) {
        // a 304 that changed stored headers drops the RAM copy (the next disk hit copies the updated one);
        // otherwise the RAM copy's freshness is refreshed in place (same body, same headers)
        if (hdrs !== old.hdrs) ramDrop(ramDict, mkey);
        else refreshRamCopy(ramDict, mkey, start, lt, ia, swr, sie, flags);
      }
      return true;
    };

    /** A response from the origin: decides whether it is stored, and with which freshness. Returns true when stored. */
    const fromOrigin = (key: string, status: number, method: string, refresh: boolean, now: number, conn: string | undefined): boolean => {
      const vars = ngx.var;
      const nostore = (): false => {
        vars.set("cdn_nostore", "1");
        // a refresh the origin answered with something unstorable retires the stale object (clients go to
        // the origin); a failed one (5xx, nginx's own 502/504) keeps it for stale-if-error
        if (refresh && status < 500) setPendingMeta({ mkey: key, record: "X|" + timeText(now) });
        return false;
      };
      // nginx's own 502/504 (origin unreachable, timeout) are never stored, and neither are the origin's;
      // nor its refusals of one client's request (400, 413, 414, 431: src/features/cache.ts UNSTORED_STATUSES)
      if (status < 200 || status === 206 || status === 304 || status === 502 || status === 504) return nostore();
      if (status === 400 || status === 413 || status === 414 || status === 431) return nostore();
      if (refresh && status >= 500) return nostore();
      const h = ngx.header;
      // the object counts as stored when its request started: a purge during the fetch retires it
      const start = fetchedAt(key);
      const rt = ruleTtl();
      let [lt, ia, swr, sie, flags] = freshnessOf(h, status, now, start, policyFor(status));
      // must-understand (RFC 9111 5.2.2.3): stored only for a status whose rules the cache knows, no-store then
      // does not apply
      if (cc.mustUnderstand) {
        if (UNDERSTOOD.get(status) !== true) return nostore();
      } else if (cc.noStore) return nostore();
      if (cc.private) return nostore();
      if (vars.get("http_authorization") !== undefined && !(cc.public || cc.sMaxAge >= 0 || cc.mustRevalidate)) return nostore();
      if (h.get("set-cookie") !== undefined && !storeSetCookie) return nostore();
      const names = varyNames(h.get("vary"));
      if (names === "*") return nostore();
      // a body the origin encoded without Vary: Accept-Encoding would go to every client: gzip is decoded for
      // those that do not accept it (gunzip, templates/partials/cache.hbs). Any other encoding is stored only
      // when this request did not ask for it: then the origin did not pick it from Accept-Encoding and sends
      // it to every client alike; one it may have negotiated (a client's `br`) could poison the cache
      const ce = h.get("content-encoding");
      if (ce !== undefined && find(names, "http_accept_encoding", 1, true)[0] === undefined) {
        const enc = string.lower(joined(ce) ?? "");
        if (enc !== "gzip" && enc !== "identity" && enc !== "" && acceptsAnyCoding(vars.get("http_accept_encoding"), enc)) return nostore();
      }
      if (rt !== undefined && RULE_TTL_STATUS.get(status) === true) {
        lt = math.min(rt, maxLifetime); // a rule's TTL overrides the origin's freshness
        if ((flags & FLAG_NO_CACHE) !== 0) lt = 0;
      }
      const etag = validator(h.get("etag"));
      const lm = validator(h.get("last-modified"));
      // no freshness at all: a heuristically cacheable response with a validator is kept to be revalidated
      if (lt < 0 && heuristicallyCacheable(status) && (etag !== "" || lm !== "")) lt = 0;
      if (lt < 0) return nostore();
      if (lt === 0 && swr === 0 && sie === 0 && (!revalidate || (etag === "" && lm === ""))) return nostore();
      const date = single(h.get("date"));
      if (cleanHeaders(h, conn)) flags = flags | FLAG_CLEAN;
      const rec: Meta = { storedAt: start, lifetime: lt, initAge: ia, swr, sie, flags, lm, id: typeof date === "string" ? date : "", tags: keepTags ? tagsOf(h) : "", hdrs: "", etag };
      const sig = names === "" ? "" : variantSig(names, true);
      const mkey = names === "" ? key : key + "\u0000" + sig;
      if (names !== "") {
        // the Vary index (the Vary names, and the signature of the variant stored under K itself) is written
        // now, before the response goes out, so the next request of another variant already finds it; if this
        // store fails, nginx's own Vary check still keeps a wrong variant from being served
        const cur = sget(metaDict, key);
        if (cur === undefined || string.byte(cur, 1) !== 86) metaDict.set(key, "V|" + names + "|" + (vars.get("cdn_disk_key") === key ? sig : ""));
        else {
          const [curNames, curBase] = string.match(cur, "^V|([^|]*)|(.*)$");
          if (curNames !== names) metaDict.set(key, "V|" + names + "|" + (curBase ?? ""));
        }
      }
      const record = metaString(rec);
      // the record is written in the log phase, once nginx has this response on disk; until then, readers
      // that find the file use this provisional copy (the client can have the whole body before the log phase)
      metaDict.set("P:" + mkey, record, PROVISIONAL_TTL);
      setPendingMeta({
        mkey,
        record,
        verify: { disk: vars.get("cdn_disk_key") ?? key, id: rec.id, etag, start },
        forgetKey: names === "" ? key : undefined,
      });
      if (ramDict !== undefined) {
        // a new body: the RAM copy is outdated; hot objects are captured again
        const hot = ramDict.get(mkey)[0] !== undefined;
        ramDrop(ramDict, mkey);
        let n = 0;
        if (!refresh) n = metaDict.incr("H:" + key, 1, 0, 60)[0] ?? 0;
        if (status === 200 && method === "GET" && vars.get("http_range") === undefined && (hot || n >= minHits)) {
          // admitted in the log phase, once nginx has the response on disk
          const cap = newCapture(key, names, rec, ramMax, dropTags, vars.get("cdn_disk_key") ?? key, rec.id);
          if (cap !== undefined) startCapture(cap);
        }
      }
      return true;
    };

    const decide = () => {
      if (ramHitLabel() !== undefined) return; // served from RAM: nothing to decide
      clearDiskHit();
      const vars = ngx.var;
      // a fresh disk hit the access phase found: its key and record come along (no variable to read), unless
      // nginx did not have the object after all
      const [liveKey, liveMkey, liveMeta] = takeOver();
      const ucs = vars.get("upstream_cache_status");
      if (liveKey !== undefined && ucs === "HIT") return diskHit(liveKey, ngx.status, ngx.req.get_method(), "", ngx.now(), liveMkey, liveMeta);
      if (liveKey !== undefined) {
        vars.set("cdn_cache_key", liveKey); // the purge feature's header filter reads it
        vars.set("cdn_cache_mkey", liveMkey);
      }
      const key = liveKey ?? vars.get("cdn_cache_key");
      if (key === undefined || key === "") return;
      const preset = vars.get("cdn_cache_status");
      if (preset === "HIT-RAM" || preset === "STALE-RAM") return;
      const status = ngx.status;
      const method = ngx.req.get_method();
      const now = ngx.now();
      if (ucs === "HIT" && (method === "GET" || method === "HEAD")) return diskHit(key, status, method, preset, now, vars.get("cdn_cache_mkey"), undefined);
      const conn = dropConnectionHeaders();
      if (SAFE.get(method) !== true) return invalidateAfterUnsafe(key, status);
      if (method !== "GET" && method !== "HEAD") return;
      if (ucs === undefined || ucs === "") return;
      // a response from the origin (MISS, BYPASS, EXPIRED, ...)
      vars.set("cdn_cache_status", preset !== undefined && preset !== "" ? preset : ucs);
      const refresh = vars.get("cdn_cache_refresh") === "1";
      let stored: boolean;
      if (status === 304 && refresh) stored = revalidated(key, now);
      else if (vars.get("cdn_nostore") === "1") stored = false;
      else stored = fromOrigin(key, status, method, refresh, now, conn);
      // a refresh tells the edge that sent it whether the answer is stored (never sent to a client)
      if (refresh) ngx.header.set(STORED_HEADER, stored ? "1" : "0");
    };

    // Surrogate-Control is for this edge (and was read above): clients never see it, from any tier, unless
    // the request came through a surrogate that announced itself (Surrogate-Capability): a CDN in front of
    // this edge applies the header's directives for its own tier
    const surrogate = data.surrogateToken !== undefined;
    if (surrogate) ramStripsSurrogate(true);
    const header = () => {
      decide();
      // RAM hits (serveRam) and clean disk hits (no Surrogate-Control stored) have nothing to remove
      if (surrogate && ramHitLabel() === undefined && !cleanDiskHit() && ngx.var.get("http_surrogate_capability") === undefined) {
        const h = ngx.header;
        if (h.get("Surrogate-Control") !== undefined) h.set("Surrogate-Control", undefined);
      }
    };

    const log = () => {
      dropHandOver();
      const cap = ramOn ? takeCapture() : undefined;
      if (pendingLocks <= 0 && pendingMeta <= 0) return;
      const vars = ngx.var;
      const meta = metaDict;
      if (pendingLocks > 0 && vars.get("cdn_cache_bypass") === "1") {
        const lock = vars.get("cdn_cache_lock");
        if (lock !== undefined && lock !== "") {
          meta.delete(lock);
          pendingLocks--;
        }
      }
      if (pendingMeta <= 0) return;
      const ctx = ngx.ctx;
      const m = ctx.get("cdn_pending_meta") as PendingMeta | undefined;
      if (m === undefined) return;
      ctx.set("cdn_pending_meta", undefined);
      pendingMeta--;
      // only once the response completed; for a new object, only when nginx has exactly this response on
      // disk: a fetch that was reset, cut short or stalled past the read timeout leaves the stored object
      // (and its record) as they were. (nginx reports such a fetch as completed, so its file is the proof.)
      if (vars.get("request_completion") !== "OK") return;
      const v = m.verify;
      const stored = v === undefined ? undefined : readStored(diskDir, v.disk, cap !== undefined ? ramMax : 0);
      if (v !== undefined && !isStored(stored, v.id, v.etag, v.start)) return;
      meta.set(m.mkey, m.record);
      if (v !== undefined) meta.delete("P:" + m.mkey);
      // the RAM copy of a new object only once nginx has it on disk, whole (its body from that file)
      if (cap !== undefined && stored !== undefined && stored.body !== undefined) commitCapture(ramDict!, cap, stored.body);
      // every variant of the key was replaced: its per-key marker has nothing left to retire
      if (m.forgetKey !== undefined) forgetKeyMarker(m.forgetKey, v!.start);
    };

    return { access: { cache: access }, header: { cache: header }, log: { cache: log } };
  },
};
