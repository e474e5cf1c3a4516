import type { LuaFeature, PhaseHandlers } from "../core/feature";
import { normaliseArgs } from "../core/cache-key";
import * as base from "resty.core.base";
import { features } from "policy_data";
import {
  cc,
  etagMatches,
  FLAG_NO_CACHE,
  FLAG_NO_STALE,
  freshnessLifetime,
  initialAge,
  parseCacheControl,
  PURGE_HARD,
  PURGE_SOFT,
  purgeDecision,
  staleWindows,
} from "../core/cache-rfc";

/**
 * The cache at run time: RFC 9111 decisions for the disk tier (stored by nginx's proxy_cache) and the RAM
 * hot tier (a lua_shared_dict served from the access phase).
 *
 * CONTRACT with the purge feature (keep these names):
 * - The cache key of a request is `$cdn_cache_key` (computed here, in the access phase). Disk entries are
 *   nginx's (`proxy_cache_path ... levels=1:2`), file name = md5 hex of that key. With Vary, the first
 *   variant stored lives there; every other variant under its own disk key K .. "\0" .. sig, which
 *   `$cdn_disk_key` (the proxy_cache_key) holds for the request. Purge markers make every variant of K
 *   unreachable whether or not its file is deleted.
 * - RAM tier: dict `cdn_ram`. Everything stored for key K (all Vary variants) is reachable only through the
 *   dict key K: K holds the object, or "V|<vary names>" and the variants live under K .. "\0" .. sig.
 *   `ngx.shared.cdn_ram:delete(K)` makes every variant of K unreachable.
 * - Purge markers: dict `cdn_purge` (absent when purge is off). Key "m:" .. K holds t = ngx.now() of the
 *   purge with flags 1 = hard, 2 = soft; "m:*" the same for purge-all. Both tiers check them here: when
 *   t >= the object's stored-at time, hard = the object does not exist (RAM entry dropped, disk refetched),
 *   soft = the object is stale as of t (stale windows apply, else refetch).
 * - `$cdn_cache_key` and `$upstream_cache_status` stay meaningful; `$cdn_cache_status` is the final
 *   status label (HIT, HIT-RAM, STALE-RAM, MISS, EXPIRED, STALE, REVALIDATED, BYPASS).
 *
 * Design: nginx ignores the origin's caching headers and keeps every stored object for a long time
 * (proxy_cache_valid any <max>); freshness lives in the `cdn_meta` dict (per key and Vary variant:
 * stored-at, lifetime, initial age, stale windows, flags, validators), written when a response completed
 * (log phase), and read by the access phase, which steers nginx: fresh -> nginx serves its HIT; stale ->
 * a background refresh (stale-while-revalidate), a synchronous conditional refresh through the edge itself
 * (revalidation, stale-if-error) or a forced refetch (`$cdn_cache_bypass`). Storability is decided in the
 * header filter, which runs before nginx evaluates `proxy_no_cache $cdn_nostore`.
 */

const REFRESH_HEADER = "X-Cdn-Refresh";
const UNSAFE: LuaTable<string, boolean> = new LuaTable();
UNSAFE.set("POST", true);
UNSAFE.set("PUT", true);
UNSAFE.set("DELETE", true);
UNSAFE.set("PATCH", true);

// response headers never copied into a RAM object (hop-by-hop, or recomputed when served)
const SKIP_STORE: LuaTable<string, boolean> = new LuaTable();
for (const h of ["connection", "keep-alive", "transfer-encoding", "content-length", "age", "proxy-connection", "te", "trailer", "upgrade"]) SKIP_STORE.set(h, true);
// request headers not copied into a refresh request
const SKIP_REFRESH: LuaTable<string, boolean> = new LuaTable();
for (const h of ["if-none-match", "if-modified-since", "if-match", "if-unmodified-since", "if-range", "range", "connection", "keep-alive", "content-length", "transfer-encoding", "expect", "te", "upgrade", "x-cdn-refresh"]) {
  SKIP_REFRESH.set(h, true);
}
// headers a 304 from the origin may update on the stored object (RFC 9111 4.3.4), applied on disk hits
const UPDATABLE = ["Cache-Control", "Expires", "ETag", "Last-Modified", "CDN-Cache-Control"];


// ---- metadata of a stored object (module-level: one request at a time per worker, nothing yields) ------

let mStoredAt = 0;
let mLifetime = 0;
let mInitAge = 0;
let mSwr = 0;
let mSie = 0;
let mFlags = 0;
let mEtag = "";
let mLm = "";
let mHdrs = "";

const META_RE = "^O|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$";

/** A string value of a shared dict. */
function sget(d: NgxSharedDict, key: string): string | undefined {
  const [v] = d.get(key);
  return v as string | undefined;
}

/** Parses "O|storedAt|lifetime|initAge|swr|sie|flags|lm|hdrs|etag" into the m* variables. */
let lastMeta: string | undefined; // the string the m* variables were parsed from (strings are interned)

function parseMeta(m: string): boolean {
  if (m === lastMeta) return true;
  const [a, b, c, d, e, f, lm, hdrs, etag] = string.match(m, META_RE);
  if (a === undefined) return false;
  lastMeta = m;
  mStoredAt = tonumber(a)!;
  mLifetime = tonumber(b)!;
  mInitAge = tonumber(c)!;
  mSwr = tonumber(d)!;
  mSie = tonumber(e)!;
  mFlags = tonumber(f)!;
  mLm = lm!;
  mHdrs = hdrs!;
  mEtag = etag!;
  return true;
}

function metaString(storedAt: number, lifetime: number, initAge: number, swr: number, sie: number, flags: number, lm: string, hdrs: string, etag: string): string {
  return "O|" + storedAt + "|" + lifetime + "|" + initAge + "|" + swr + "|" + sie + "|" + flags + "|" + lm + "|" + hdrs + "|" + etag;
}

/** Variant signature: the values of the request headers named by Vary (nginx variable names). */
function variantSig(names: string): string {
  const vars = ngx.var;
  let sig = "";
  for (const [name] of string.gmatch(names, "[^,]+")) sig = sig + (vars.get(name) ?? "") + "\u0001";
  return sig;
}

/** "accept-encoding, Accept" -> "http_accept_encoding,http_accept" (sorted); "*" when Vary has a star. */
function varyNames(vary: string | string[] | undefined): string {
  if (vary === undefined) return "";
  const v = typeof vary === "object" ? table.concat(vary, ",") : vary;
  const names: string[] = [];
  for (const [n] of string.gmatch(v, "[^,%s]+")) {
    if (n === "*") return "*";
    const [ln] = string.gsub(string.lower(n), "-", "_");
    names.push("http_" + ln);
  }
  table.sort(names);
  return table.concat(names, ",");
}

// per-request facts of the lookup
let lkKey = ""; // meta / RAM key of the variant
let lkDisk = ""; // disk (proxy_cache_key) key of the variant: K for the base variant, else K \0 sig
let lkSig = ""; // the request's variant signature ("" without Vary)
let lkInval = 0; // invalidation time recorded on the Vary index

/** Looks up the metadata of the request's variant of `key`; false when unknown, "X" when invalidated. */
function lookupMeta(meta: NgxSharedDict, key: string): string | undefined {
  lkKey = key;
  lkDisk = key;
  lkSig = "";
  lkInval = 0;
  let m = sget(meta, key);
  if (m === undefined) return undefined;
  const kind = string.byte(m, 1);
  if (kind === 86) {
    // "V|invalT|names|baseSig": the variant stored under K itself has signature baseSig
    const [t, names, base] = string.match(m, "^V|([^|]*)|([^|]*)|(.*)$");
    lkInval = tonumber(t) ?? 0;
    lkSig = variantSig(names!);
    lkKey = key + "\u0000" + lkSig;
    if (lkSig !== base) lkDisk = lkKey;
    m = sget(meta, lkKey);
    if (m === undefined) return undefined;
  }
  if (string.byte(m, 1) === 88) return "X"; // tombstone "X|t": invalidated
  if (!parseMeta(m)) return undefined;
  if (mStoredAt <= lkInval) return "X";
  return "O";
}

// ---- purge markers ---------------------------------------------------------------------------------------

let purgeAt = 0; // time a soft purge made the object stale (set by purgeState)

/** Decision of the purge markers for an object stored at `storedAt` (PURGE_NONE/HARD/SOFT; `purgeAt`). */
function purgeState(purge: NgxSharedDict | undefined, key: string, storedAt: number): number {
  if (purge === undefined) return 0;
  const [kt, kf] = purge.get("m:" + key);
  const [at, af] = purge.get("m:*");
  if (kt === undefined && at === undefined) return 0;
  const [d, t] = purgeDecision(storedAt, kt as number | undefined, kf, at as number | undefined, af);
  purgeAt = t;
  return d;
}

// ---- refresh through the edge itself ---------------------------------------------------------------------

/** A GET of the current request to the edge itself, with the refresh marker (built in the access phase). */
function refreshRequest(token: string): string {
  const vars = ngx.var;
  const parts: string[] = ["GET ", vars.get("request_uri")!, " HTTP/1.0\r\n"];
  const headers = ngx.req.get_headers(100, true);
  for (const [name, value] of pairs(headers)) {
    if (SKIP_REFRESH.get(string.lower(name)) !== true) {
      if (typeof value === "object") for (const v of value) parts.push(name, ": ", v, "\r\n");
      else parts.push(name, ": ", value, "\r\n");
    }
  }
  parts.push(REFRESH_HEADER, ": ", token, "\r\nConnection: close\r\n\r\n");
  return table.concat(parts);
}

/** Sends a refresh request to addr:port and reads the whole response; returns its status (0 on failure). */
function doRefresh(addr: string, port: number, req: string, timeoutMs: number, tls: boolean): number {
  const sock = ngx.socket.tcp();
  sock.settimeout(timeoutMs);
  const [ok, err] = sock.connect(addr, port);
  if (ok === undefined) {
    ngx.log(ngx.WARN, "cache: refresh connect failed: ", err);
    return 0;
  }
  if (tls) {
    const [hs, herr] = sock.sslhandshake(false, undefined, false);
    if (hs === undefined) {
      ngx.log(ngx.WARN, "cache: refresh TLS handshake failed: ", herr);
      sock.close();
      return 0;
    }
  }
  sock.send(req);
  const [line] = sock.receive("*l");
  const [code] = line === undefined ? [undefined] : string.match(line, "^HTTP/%d%.%d (%d+)");
  // read to the end: the edge stores the object (and writes its metadata) before it closes
  for (;;) {
    const [chunk] = sock.receiveany(65536);
    if (chunk === undefined) break;
  }
  sock.close();
  return tonumber(code) ?? 0;
}

function backgroundRefresh(this: void, premature: boolean, addr: string, port: number, req: string, timeoutMs: number, lockKey: string, tls: boolean): void {
  if (premature) return;
  doRefresh(addr, port, req, timeoutMs, tls);
  const meta = ngx.shared.get("cdn_meta");
  if (meta !== undefined) meta.delete(lockKey);
}

// ---- RAM tier ---------------------------------------------------------------------------------------------

const RAM_RE = "^R|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^\n]*)\n";
let rStoredAt = 0;
let rLifetime = 0;
let rInitAge = 0;
let rSwr = 0;
let rFlags = 0;
let rStatus = 200;
let rHlen = 0;
let rBodyAt = 0;
let rRamKey = "";
let rLm = "";
let rEtag = "";
let rLastBlob: string | undefined;

/** Finds the request's RAM object of key K (through the Vary index) and parses its header line. */
function ramLookup(ram: NgxSharedDict, key: string): string | undefined {
  rRamKey = key;
  let blob = sget(ram, key);
  if (blob === undefined) return undefined;
  if (string.byte(blob, 1) === 86) {
    const [names] = string.match(blob, "^V|(.*)$");
    rRamKey = key + "\u0000" + variantSig(names!);
    blob = sget(ram, rRamKey);
    if (blob === undefined) return undefined;
  }
  if (blob === rLastBlob) return blob; // same bytes as the last parse: the r* fields still hold them
  const [a, b, c, d, _e, f, st, hl, lm, etag] = string.match(blob, RAM_RE);
  if (a === undefined) return undefined;
  rLastBlob = blob;
  rStoredAt = tonumber(a)!;
  rLifetime = tonumber(b)!;
  rInitAge = tonumber(c)!;
  rSwr = tonumber(d)!;
  rFlags = tonumber(f)!;
  rStatus = tonumber(st)!;
  rHlen = tonumber(hl)!;
  rLm = lm!;
  rEtag = etag!;
  rBodyAt = string.find(blob, "\n", 1, true)[0]! + 1;
  return blob;
}

/** A RAM object split into headers and body, kept per worker while the dict holds the same blob. */
interface Parsed {
  blob: string;
  names: string[];
  values: (string | string[])[];
  body: string;
  /** tostring(body.length), for Content-Length */
  len: string;
}
let parsed: LuaTable<string, Parsed> = new LuaTable();
let parsedBytes = 0;
const PARSED_MAX_BYTES = 8 * 1024 * 1024;

function parseRam(blob: string): Parsed {
  const names: string[] = [];
  const values: (string | string[])[] = [];
  let pos = rBodyAt;
  const hend = rBodyAt + rHlen;
  while (pos < hend) {
    const [nl] = string.find(blob, "\n", pos, true);
    const [colon] = string.find(blob, ":", pos, true);
    const name = string.sub(blob, pos, colon! - 1);
    const value = string.sub(blob, colon! + 1, nl! - 1);
    const last = names.length - 1;
    if (last >= 0 && names[last] === name) {
      const cur = values[last];
      if (typeof cur === "object") cur.push(value);
      else values[last] = [cur, value];
    } else {
      names.push(name);
      values.push(value);
    }
    pos = nl! + 1;
  }
  const body = string.sub(blob, hend);
  return { blob, names, values, body, len: tostring(body.length) };
}

// The request being answered from the RAM tier while its response headers go out (the header filter runs
// inside ngx.print / ngx.send_headers, before they return), and its cache status label. The header filters
// of the cache, purge and headers features check it first to skip what a RAM hit does not need.
const getRequest = base.get_request;
let ramReq: unknown = undefined;
let ramLabel = "";

/**
 * The cache status label (HIT-RAM, STALE-RAM) while the current request's response headers go out from the
 * RAM tier, else undefined. For the header filters: a RAM hit has no upstream and nothing to store.
 */
export function ramHitLabel(this: void): string | undefined {
  if (ramReq === undefined || ramReq !== getRequest()) return undefined;
  return ramLabel;
}

/** Answers the request from a RAM object (headers, Age, 304 to a matching conditional, HEAD) and ends it. */
function serveRam(blob: string, age: number, label: string, method: string): never {
  const vars = ngx.var;
  vars.set("cdn_cache_status", label);
  let p = parsed.get(rRamKey);
  if (p === undefined || p.blob !== blob) {
    p = parseRam(blob);
    if (parsedBytes > PARSED_MAX_BYTES) {
      parsed = new LuaTable();
      parsedBytes = 0;
    }
    parsedBytes = parsedBytes + blob.length;
    parsed.set(rRamKey, p);
  }
  const h = ngx.header;
  const names = p.names;
  const values = p.values;
  for (let i = 0; i < names.length; i++) h.set(names[i], values[i]);
  h.set("Age", tostring(math.floor(age)));
  const body = p.body;
  let notModified = false;
  if (rStatus === 200) {
    const inm = vars.get("http_if_none_match");
    if (inm !== undefined) notModified = rEtag !== "" && etagMatches(inm, rEtag);
    else if (rLm !== "") {
      const ims = vars.get("http_if_modified_since");
      if (ims !== undefined) {
        const t = ngx.parse_http_time(ims);
        const l = ngx.parse_http_time(rLm);
        notModified = t !== undefined && l !== undefined && l <= t;
      }
    }
  }
  ramLabel = label;
  if (notModified) {
    ngx.status = 304;
    h.set("Content-Type", undefined);
    h.set("Content-Length", undefined);
    ramReq = getRequest();
    ngx.send_headers();
    ramReq = undefined;
    return ngx.exit(304);
  }
  ngx.status = rStatus;
  h.set("Content-Length", p.len);
  if (method === "HEAD") {
    ramReq = getRequest();
    ngx.send_headers();
    ramReq = undefined;
    return ngx.exit(ngx.HTTP_OK);
  }
  ramReq = getRequest();
  ngx.print(body);
  ramReq = undefined;
  return ngx.exit(ngx.HTTP_OK);
}

/** Capture of a response body for the RAM tier (body filter), set up by the header filter. */
interface Capture {
  key: string;
  index: string | undefined;
  indexKey: string;
  head: string;
  headers: string;
  parts: string[];
  n: number;
  ttl: number;
}

// ---- setup ------------------------------------------------------------------------------------------------

let token = "";

/**
 * True when the current request is a refresh this edge sent itself (stale-while-revalidate, revalidation),
 * verified by its marker token. For the gates that run before the cache's access handler (the marker header
 * is still on the request then): a refresh replays a client request that already passed them, so a gate may
 * skip it (the rate limits do: a refresh is the edge's own traffic and takes no client's token).
 */
export function isEdgeRefresh(this: void): boolean {
  return token !== "" && ngx.var.get("http_x_cdn_refresh") === token;
}
// Requests of this worker with a RAM capture / metadata to write pending. The body filter and the log
// phase only touch ngx.ctx (a table per request) while these are non-zero; a request that ends early
// leaves a count behind, which only costs that lookup, never correctness.
let captures = 0;
let pendingMeta = 0;
let pendingLocks = 0; // requests with a refetch lock ($cdn_cache_lock) to release in the log phase

/** Access phase: key, bypass, freshness steering, RAM hits. Header filter: storability, Age, labels. */
export const cache: LuaFeature<CacheData> = {
  name: "cache",
  setup(data) {
    const headerVars = data.bypassHeaderVars;
    const cookieVars = data.bypassCookieVars;
    const authBypass = data.authBypass;
    const useArgs = data.query !== "none";
    const rulesKey = features.rules !== undefined && features.rules.keyParts;
    const ttlTable = data.ttl;
    const anyTtl = ttlTable.get("any");
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
    math.randomseed(os.time() + math.floor(os.clock() * 1e6));
    token = ngx.md5(tostring(os.time()) + tostring(os.clock()) + tostring(math.random()) + tostring({}));

    const metaDict = ngx.shared.get("cdn_meta")!;
    const setPendingMeta = (m: [string, string, string?, string?, string?]) => {
      const ctx = ngx.ctx;
      if (ctx.get("cdn_meta") === undefined) pendingMeta++;
      ctx.set("cdn_meta", m);
    };
    const ramDict = ngx.shared.get("cdn_ram");
    const purgeDict = ngx.shared.get("cdn_purge");
    const dicts = () => $multi(metaDict, ramDict, purgeDict);

    /** Computes the cache key of a URL (path + query) the way the access phase does, for invalidation. */
    const keyOf = (scheme: string, host: string, uri: string): string => {
      const [q] = string.find(uri, "?", 1, true);
      const path = q === undefined ? uri : string.sub(uri, 1, q - 1);
      let key = data.host ? scheme + "://" + host + path : path;
      if (useArgs && q !== undefined) {
        const args = normaliseArgs(data, ngx.decode_args(string.sub(uri, q + 1), 100));
        if (args !== "") key = key + "?" + args;
      }
      return key;
    };

    const invalidate = (meta: NgxSharedDict, ram: NgxSharedDict | undefined, key: string) => {
      const now = ngx.now();
      const m = sget(meta, key);
      if (m !== undefined && string.byte(m, 1) === 86) {
        const [rest] = string.match(m, "^V|[^|]*|(.*)$");
        meta.set(key, "V|" + now + "|" + rest);
      } else meta.set(key, "X|" + now, m === undefined ? 86400 : 0); // unknown keys: a bounded tombstone
      if (ram !== undefined) ram.delete(key);
    };

    const access = () => {
      const vars = ngx.var;
      if (vars.get("cdn_cache_on") !== "1") return; // not the proxy location (health, purge, ...)
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
      if (bypass || vars.get("cdn_cache_bypass") === "1") {
        // policy (or rule) bypass: neither served from the cache nor stored
        bypass = true;
        vars.set("cdn_cache_bypass", "1");
        vars.set("cdn_nostore", "1");
      } else if (authBypass && vars.get("http_authorization") !== undefined) {
        // Authorization: not served from the cache; stored only when the response allows it (header filter)
        vars.set("cdn_cache_bypass", "1");
        bypass = true;
      }

      const uri = vars.get("request_uri")!;
      const q = string.find(uri, "?", 1, true)[0];
      const path = q === undefined ? uri : string.sub(uri, 1, q - 1);
      let key = data.host ? vars.get("scheme")! + "://" + vars.get("host")! + path : path;
      if (useArgs && vars.get("args") !== undefined) {
        const [args] = ngx.req.get_uri_args(100);
        const norm = normaliseArgs(data, args);
        if (norm !== "") key = key + "?" + norm;
      }
      if (rulesKey) {
        // cache key additions of the rules engine (variant, image format, rule key parts)
        const extra = vars.get("cdn_rules_key");
        if (extra !== undefined && extra !== "") key = key + "#" + extra;
      }
      vars.set("cdn_cache_key", key);

      const marker = vars.get("http_x_cdn_refresh");
      if (marker !== undefined) {
        ngx.req.clear_header(REFRESH_HEADER);
        if (marker === token) {
          // a refresh sent by this edge: fetch (conditionally when we hold validators) and store
          vars.set("cdn_cache_refresh", "1");
          vars.set("cdn_cache_bypass", "1");
          const [meta, , purge] = dicts();
          const st = lookupMeta(meta, key);
          vars.set("cdn_disk_key", lkDisk);
          // conditional only for an object that still exists (not invalidated, not hard-purged)
          if (revalidate && st === "O" && purgeState(purge, key, mStoredAt) !== PURGE_HARD) {
            vars.set("cdn_cache_mkey", lkKey);
            if (mEtag !== "") vars.set("cdn_inm", mEtag);
            if (mLm !== "") vars.set("cdn_ims", mLm);
          }
          return;
        }
      }
      const method = ngx.req.get_method();
      if (method !== "GET" && method !== "HEAD") {
        vars.set("cdn_disk_key", key);
        return;
      }
      const [meta, ram, purge] = dicts();
      if (bypass) {
        // not looked up, but a response stored for it must land under its variant's disk key
        lookupMeta(meta, key);
        vars.set("cdn_disk_key", lkDisk);
        return;
      }
      const now = ngx.now();

      // RAM tier first
      if (ram !== undefined) {
        const blob = ramLookup(ram, key);
        if (blob !== undefined) {
          const p = purgeState(purge, key, rStoredAt);
          if (p === PURGE_HARD) ram.delete(key);
          else {
            const age = rInitAge + now - rStoredAt;
            if (p === 0 && age < rLifetime) return serveRam(blob, age, "HIT-RAM", method);
            const staleness = p === PURGE_SOFT ? now - purgeAt : age - rLifetime;
            if ((rFlags & FLAG_NO_STALE) === 0 && staleness < rSwr) {
              const lockKey = "R:" + rRamKey;
              if (meta.add(lockKey, true, 60)[0]) {
                ngx.timer.at(0, backgroundRefresh, vars.get("server_addr")!, tonumber(vars.get("server_port"))!, refreshRequest(token), refreshMs, lockKey, vars.get("https") === "on");
              }
              return serveRam(blob, age, "STALE-RAM", method);
            }
          }
        }
      }

      // disk tier: steer nginx with the metadata ($cdn_disk_key is set here, a RAM hit never needs it)
      const state = lookupMeta(meta, key);
      vars.set("cdn_disk_key", lkDisk);
      if (state === undefined) return; // unknown: nginx decides (MISS, or a hit stored before a restart)
      const mkey = lkKey;
      vars.set("cdn_cache_mkey", mkey);
      let staleness: number;
      let age = 0;
      let gone = state === "X";
      if (gone) staleness = 1e9;
      else {
        const p = purgeState(purge, key, mStoredAt);
        age = mInitAge + now - mStoredAt;
        gone = p === PURGE_HARD;
        if (gone) staleness = 1e9;
        else if (p === PURGE_SOFT) staleness = now - purgeAt;
        else if (age < mLifetime) return; // fresh: nginx serves its HIT
        else staleness = age - mLifetime;
      }
      const canStale = state === "O" && (mFlags & FLAG_NO_STALE) === 0 && staleness < 1e9;
      if (canStale && staleness < mSwr) {
        // stale-while-revalidate: this request gets the stale object, one background refresh per key
        const lockKey = "R:" + mkey;
        if (meta.add(lockKey, true, 60)[0]) {
          ngx.timer.at(0, backgroundRefresh, vars.get("server_addr")!, tonumber(vars.get("server_port"))!, refreshRequest(token), refreshMs, lockKey, vars.get("https") === "on");
        }
        vars.set("cdn_cache_status", "STALE");
        return;
      }
      const sieOk = canStale && staleness < mSie;
      const conditional = !gone && revalidate && (mEtag !== "" || mLm !== "");
      const lockKey = "L:" + mkey;
      if (meta.add(lockKey, true, lockWait + refreshMs / 1000)[0]) {
        if (sieOk || conditional) {
          // synchronous refresh through the edge (conditional when we hold validators), then serve
          // what the disk now holds: the revalidated or new object, or the stale one if the origin failed
          const status = doRefresh(vars.get("server_addr")!, tonumber(vars.get("server_port"))!, refreshRequest(token), refreshMs, vars.get("https") === "on");
          meta.delete(lockKey);
          // the refresh wrote new metadata: the disk holds the revalidated (or new) object, serve it once
          // even when its lifetime is 0 (no-cache)
          if (lookupMeta(meta, key) === "O" && mStoredAt >= now) {
            vars.set("cdn_cache_status", status === 304 ? "REVALIDATED" : "EXPIRED");
            return;
          }
          if (sieOk && (status === 0 || status >= 500)) {
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
        return;
      }
      // another request is refreshing this key: wait for it (request coalescing for stale objects)
      const deadline = now + lockWait;
      const was = state === "O" ? mStoredAt : -1;
      while (ngx.now() < deadline) {
        ngx.sleep(0.01);
        if (lookupMeta(meta, key) === "O" && mStoredAt !== was) return; // refreshed by the other request
        if (meta.get(lockKey)[0] === undefined) break;
      }
      if (sieOk) {
        vars.set("cdn_cache_status", "STALE");
        return;
      }
      vars.set("cdn_cache_bypass", "1");
      vars.set("cdn_cache_status", gone ? "MISS" : "EXPIRED");
    };

    /** Removes the response headers the origin named in `Connection` (RFC 9110 7.6.1). */
    const dropConnectionHeaders = () => {
      const conn = ngx.var.get("upstream_http_connection");
      if (conn === undefined) return;
      for (const [name] of string.gmatch(conn, "[^,%s]+")) {
        const l = string.lower(name);
        if (l !== "close" && l !== "keep-alive") ngx.header.set(name, undefined);
      }
    };

    /** Starts capturing the body into the RAM tier (body filter), with the headers as they are now. */
    const startCapture = (key: string, varyList: string, storedAt: number, lifetime: number, initAge: number, swr: number, sie: number, flags: number, lm: string, etag: string) => {
      const len = tonumber(ngx.header.get("Content-Length") as string | undefined);
      if (len !== undefined && len > ramMax) return;
      const lines: string[] = [];
      const hs = ngx.resp.get_headers(100, true);
      for (const [name, value] of pairs(hs)) {
        const lname = string.lower(name);
        if (SKIP_STORE.get(lname) !== true && !(dropTags && (lname === "cache-tag" || lname === "surrogate-key"))) {
          if (typeof value === "object") for (const v of value) lines.push(name + ":" + v + "\n");
          else lines.push(name + ":" + value + "\n");
        }
      }
      const headers = table.concat(lines);
      const ttl = math.max(1, math.ceil(lifetime - initAge + math.max(swr, sie) + 1));
      const ramKey = varyList === "" ? key : key + "\u0000" + variantSig(varyList);
      const cap: Capture = {
        key: ramKey,
        index: varyList === "" ? undefined : "V|" + varyList,
        indexKey: key,
        head: "R|" + storedAt + "|" + lifetime + "|" + initAge + "|" + swr + "|" + sie + "|" + flags + "|200|" + headers.length + "|" + lm + "|" + etag + "\n",
        headers,
        parts: [],
        n: 0,
        ttl,
      };
      ngx.ctx.set("cdn_cap", cap);
      captures++;
    };

    const header = () => {
      if (ramReq !== undefined && ramReq === getRequest()) return; // served from RAM: nothing to decide
      const vars = ngx.var;
      const key = vars.get("cdn_cache_key");
      if (key === undefined || key === "") return;
      const preset = vars.get("cdn_cache_status");
      if (preset === "HIT-RAM" || preset === "STALE-RAM") return;
      dropConnectionHeaders();
      const status = ngx.status;
      const method = ngx.req.get_method();
      const [meta, ram] = dicts();
      if (UNSAFE.get(method) === true) {
        // a successful unsafe request invalidates the target URI and Location / Content-Location
        if (status >= 200 && status < 400) {
          invalidate(meta, ram, key);
          const scheme = vars.get("scheme")!;
          const host = vars.get("host")!;
          for (const name of ["Location", "Content-Location"]) {
            const v = ngx.header.get(name);
            if (typeof v === "string") {
              let u: string | undefined = v;
              if (string.sub(v, 1, 1) !== "/") {
                const [s, hst, rest] = string.match(v, "^(https?)://([^/]+)(.*)$");
                u = s !== undefined && string.lower(hst!) === string.lower(host) ? (rest === "" ? "/" : rest) : undefined;
              }
              if (u !== undefined) invalidate(meta, ram, keyOf(scheme, host, u));
            }
          }
        }
        return;
      }
      if (method !== "GET" && method !== "HEAD") return;
      const ucs = vars.get("upstream_cache_status");
      const refresh = vars.get("cdn_cache_refresh") === "1";
      const now = ngx.now();

      if (ucs === "HIT") {
        // served from disk: Age from our metadata (or, when none, from the stored Date/Age)
        const mkey = vars.get("cdn_cache_mkey");
        let known = false;
        if (mkey !== undefined && mkey !== "") {
          const m = sget(meta, mkey);
          known = m !== undefined && parseMeta(m);
        } else if (lookupMeta(meta, key) === "O") known = true;
        if (!known) {
          // no metadata (a restart emptied the dict, or it was evicted): rebuild it from the stored headers
          const h = ngx.header;
          const date = h.get("Date") as string | undefined;
          const d = date !== undefined ? ngx.parse_http_time(date) : undefined;
          const ia = initialAge(h.get("Age") as string | undefined, d, now, now);
          const ttl = ttlTable.get(tostring(status)) ?? anyTtl ?? 0;
          const ccv = (h.get("CDN-Cache-Control") ?? h.get("Cache-Control")) as string | string[] | undefined;
          parseCacheControl(typeof ccv === "object" ? table.concat(ccv, ",") : ccv);
          const exp = h.get("Expires") as string | undefined;
          const lt = math.min(freshnessLifetime(exp !== undefined ? ngx.parse_http_time(exp) : undefined, exp !== undefined, d, now, ttl), maxLifetime);
          const [swr, sie, flags] = staleWindows(defSwr, defSie);
          const names = varyNames(h.get("Vary"));
          if (names !== "" && names !== "*" && vars.get("cdn_disk_key") === key) meta.set(key, "V|0|" + names + "|" + variantSig(names));
          lastMeta = undefined;
          mStoredAt = now;
          mLifetime = lt;
          mInitAge = ia;
          mSwr = swr;
          mSie = sie;
          mFlags = flags;
          mHdrs = "";
          meta.set(names === "" || names === "*" ? key : key + "\u0000" + variantSig(names), metaString(now, lt, ia, swr, sie, flags, (h.get("Last-Modified") as string) ?? "", "", (h.get("ETag") as string) ?? ""));
        }
        if (mHdrs !== "") {
          // headers updated by a 304 since the object was stored (RFC 9111 4.3.4)
          for (const [name, value] of string.gmatch(mHdrs, "([^\u0001]+)\u0002([^\u0001]*)")) ngx.header.set(name, value);
        }
        ngx.header.set("Age", tostring(math.floor(mInitAge + now - mStoredAt)));
        vars.set("cdn_cache_status", preset !== undefined && preset !== "" ? preset : "HIT");
        if (ramOn && status === 200 && method === "GET" && vars.get("http_range") === undefined) {
          const [n] = meta.incr("H:" + key, 1, 0, 60);
          if (n !== undefined && n >= minHits) {
            const names = varyNames(ngx.header.get("Vary"));
            if (names !== "*") startCapture(key, names, mStoredAt, mLifetime, mInitAge, mSwr, mSie, mFlags, mLm, mEtag);
          }
        }
        return;
      }
      if (ucs === undefined || ucs === "") return;

      // a response from the origin (MISS, BYPASS, EXPIRED, ...): decide storability and freshness
      vars.set("cdn_cache_status", preset !== undefined && preset !== "" ? preset : ucs);
      const h = ngx.header;
      if (status === 304 && refresh) {
        // revalidated: the stored object is fresh again; headers the 304 carries update the stored ones
        vars.set("cdn_nostore", "1");
        const mkey = vars.get("cdn_cache_mkey");
        if (mkey === undefined || mkey === "") return;
        const m = sget(meta, mkey);
        if (m === undefined || !parseMeta(m)) return;
        const date = h.get("Date") as string | undefined;
        const d = date !== undefined ? ngx.parse_http_time(date) : undefined;
        const ccv = (h.get("CDN-Cache-Control") ?? h.get("Cache-Control")) as string | string[] | undefined;
        let lt = mLifetime;
        let swr = mSwr;
        let sie = mSie;
        let flags = mFlags;
        const exp = h.get("Expires") as string | undefined;
        if (ccv !== undefined || exp !== undefined) {
          parseCacheControl(typeof ccv === "object" ? table.concat(ccv, ",") : ccv);
          const l = freshnessLifetime(exp !== undefined ? ngx.parse_http_time(exp) : undefined, exp !== undefined, d, now, mLifetime);
          lt = math.min(l < 0 ? mLifetime : l, maxLifetime);
          [swr, sie, flags] = staleWindows(defSwr, defSie);
        }
        let hdrs = "";
        for (const name of UPDATABLE) {
          const v = h.get(name);
          if (typeof v === "string") hdrs = hdrs + name + "\u0002" + v + "\u0001";
        }
        if (hdrs === "") hdrs = mHdrs;
        const etag = (h.get("ETag") as string | undefined) ?? mEtag;
        const lm = (h.get("Last-Modified") as string | undefined) ?? mLm;
        const ia = initialAge(h.get("Age") as string | undefined, d, now, ngx.req.start_time());
        const ms = metaString(now, lt, ia, swr, sie, flags, lm, hdrs, etag);
        setPendingMeta([mkey, ms]);
        if (ram !== undefined && hdrs !== mHdrs) {
          // the 304 changed stored headers: drop the RAM copy, the next disk hit copies the updated one
          ram.delete(mkey);
        } else if (ram !== undefined) {
          // refresh the RAM copy's freshness in place (same body, same headers)
          const blob = sget(ram, mkey);
          if (blob !== undefined && string.byte(blob, 1) === 82) {
            const [tail] = string.match(blob, "^R|[^|]*|[^|]*|[^|]*|[^|]*|[^|]*|[^|]*(|.*)$");
            if (tail !== undefined) ram.set(mkey, "R|" + now + "|" + lt + "|" + ia + "|" + swr + "|" + sie + "|" + flags + tail, math.max(1, math.ceil(lt + math.max(swr, sie) + 1)));
          }
        }
        return;
      }
      if (vars.get("cdn_nostore") === "1") return;
      const nostore = () => {
        vars.set("cdn_nostore", "1");
        // a failed refresh keeps the stale object (stale-if-error); otherwise clients go to the origin
        if (refresh && status < 500) setPendingMeta([key, "X|" + now]);
      };
      if (status < 200 || status === 206 || status === 304) return nostore();
      if (refresh && status >= 500) return nostore();

      const cdncc = h.get("CDN-Cache-Control");
      const ccv = cdncc ?? h.get("Cache-Control");
      parseCacheControl(typeof ccv === "object" ? table.concat(ccv, ",") : ccv);
      if (cc.noStore || cc.private) return nostore();
      if (vars.get("http_authorization") !== undefined && !(cc.public || cc.sMaxAge >= 0 || cc.mustRevalidate)) return nostore();
      if (h.get("Set-Cookie") !== undefined) return nostore();
      const names = varyNames(h.get("Vary"));
      if (names === "*") return nostore();

      const date = h.get("Date") as string | undefined;
      const d = date !== undefined ? ngx.parse_http_time(date) : undefined;
      let lt: number;
      const ruleTtl = vars.get("cdn_rules_ttl");
      const [rt] = ruleTtl !== undefined && ruleTtl !== "" ? string.match(ruleTtl, "_(%d+)$") : [undefined];
      if (rt !== undefined && (status === 200 || status === 203 || status === 301 || status === 302 || status === 307 || status === 308)) {
        lt = tonumber(rt)!; // a rule's TTL overrides the origin's freshness
      } else {
        const exp = cdncc !== undefined ? undefined : (h.get("Expires") as string | undefined);
        lt = freshnessLifetime(exp !== undefined ? ngx.parse_http_time(exp) : undefined, exp !== undefined, d, now, ttlTable.get(tostring(status)) ?? anyTtl ?? -1);
      }
      if (lt < 0) return nostore();
      lt = math.min(lt, maxLifetime);
      const [swr, sie, flags] = staleWindows(defSwr, defSie);
      const etag = (h.get("ETag") as string | undefined) ?? "";
      const lm = (h.get("Last-Modified") as string | undefined) ?? "";
      if ((flags & FLAG_NO_CACHE) !== 0) lt = 0;
      if (lt === 0 && swr === 0 && sie === 0 && (!revalidate || (etag === "" && lm === ""))) return nostore();
      const ia = initialAge(h.get("Age") as string | undefined, d, now, ngx.req.start_time());
      const mkey = names === "" ? key : key + "\u0000" + variantSig(names);
      // with Vary: the index names the Vary headers, and the signature of the variant stored under K itself
      const sig = names === "" ? "" : variantSig(names);
      setPendingMeta([mkey, metaString(now, lt, ia, swr, sie, flags, lm, "", etag), names === "" ? undefined : key, names, vars.get("cdn_disk_key") === key ? sig : undefined]);
      if (ram !== undefined) {
        // a new body: the RAM copy is outdated; hot objects are captured again
        const hot = ram.get(mkey)[0] !== undefined;
        ram.delete(mkey);
        let n = 0;
        if (!refresh) n = meta.incr("H:" + key, 1, 0, 60)[0] ?? 0;
        if (status === 200 && method === "GET" && vars.get("http_range") === undefined && (hot || (n ?? 0) >= minHits)) startCapture(key, names, now, lt, ia, swr, sie, flags, lm, etag);
      }
    };

    const body = () => {
      if (captures <= 0) return;
      const cap = ngx.ctx.get("cdn_cap") as Capture | undefined;
      if (cap === undefined) return;
      const chunk = ngx.arg.get(1) as string;
      if (chunk !== "") {
        cap.n = cap.n + chunk.length;
        if (cap.n > ramMax) {
          ngx.ctx.set("cdn_cap", undefined);
          captures--;
          return;
        }
        cap.parts.push(chunk);
      }
      if (ngx.arg.get(2) === true) {
        ngx.ctx.set("cdn_cap", undefined);
        captures--;
        const ram = ramDict!;
        if (cap.index !== undefined) ram.set(cap.indexKey, cap.index);
        ram.set(cap.key, cap.head + cap.headers + table.concat(cap.parts), cap.ttl);
      }
    };

    const log = () => {
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
      const m = ctx.get("cdn_meta") as [string, string, string?, string?, string?] | undefined;
      if (m === undefined) return;
      ctx.set("cdn_meta", undefined);
      pendingMeta--;
      // only once the response completed, i.e. nginx has the object on disk
      if (vars.get("request_completion") !== "OK" && vars.get("cdn_cache_refresh") !== "1") return;
      if (m[2] !== undefined) {
        const cur = sget(meta, m[2]);
        let inval = "0";
        let base = m[4];
        if (cur !== undefined) {
          const [t, curBase] = string.match(cur, "^[VX]|([^|]*)|?[^|]*|?(.*)$");
          inval = t ?? "0";
          if (base === undefined && string.byte(cur, 1) === 86) base = curBase;
        }
        meta.set(m[2], "V|" + inval + "|" + m[3]! + "|" + (base ?? ""));
      }
      meta.set(m[0], m[1]);
    };

    const handlers: PhaseHandlers = { access, header, log };
    if (ramOn) handlers.body = body;
    return handlers;
  },
};
