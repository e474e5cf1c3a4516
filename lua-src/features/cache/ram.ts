import { timeText } from "../../core/clock";
import * as base from "resty.core.base";
import { etagMatches } from "../../core/cache-rfc";
import { variantSig } from "./vary";
import { sget } from "./meta";

/**
 * The RAM hot tier: a lua_shared_dict (`cdn_ram`) served from the access phase. Everything stored for key K
 * (all Vary variants) is reachable only through the dict key K: K holds the object, or "V|<vary names>" and
 * the variants live under K .. "\0" .. sig, so `ngx.shared.cdn_ram:delete(K)` retires every variant.
 *
 * An object is one string: "R|storedAt|lifetime|initAge|swr|sie|flags|status|hlen|lm|tags|etag\n" (tags
 * URI-escaped), then `hlen` bytes of header lines ("Name:value\n"), then the body. A worker keeps the parsed
 * form of the objects it served (bounded), so a hit parses nothing.
 *
 * Every write or removal of a dict key K goes through ramPut / ramDrop, which also move K's version (the
 * number under VERSION .. K). A worker reuses its parsed object for K without copying it out of the dict
 * again only while that version is the one it read with it: a hit reads one number, not the object.
 */

/** A RAM object, parsed. Immutable: a new object in the dict is a new string, parsed again. */
export interface RamObject {
  blob: string;
  storedAt: number;
  lifetime: number;
  initAge: number;
  swr: number;
  flags: number;
  status: number;
  lm: string;
  etag: string;
  /** Purge tags, comma-separated. */
  tags: string;
  names: string[];
  values: (string | string[])[];
  /** The stored headers include Surrogate-Control. */
  surrogate: boolean;
  body: string;
  /** tostring(#body), for Content-Length */
  len: string;
  /** The version of its dict key when this worker read it (undefined: the key had none). */
  ver: number | undefined;
}

const VERSION = "\u0001v";
// a version key outlives any object it describes (an expired one only makes workers read the object again)
const VERSION_TTL = 86400;

/** The version of dict key `key`. */
function versionOf(ram: NgxSharedDict, key: string): number | undefined {
  const [v] = ram.get(VERSION + key);
  return v as number | undefined;
}

/**
 * Moves the version of `key`. A new version starts from the current time in microseconds, so a version key
 * that was evicted and created again never repeats a number a worker still holds.
 */
function bump(ram: NgxSharedDict, key: string): void {
  ram.incr(VERSION + key, 1, math.floor(ngx.now() * 1e6), VERSION_TTL);
}

/** Writes dict key `key` of the RAM tier (an object or a Vary index). */
export function ramPut(this: void, ram: NgxSharedDict, key: string, value: string, ttl: number): void {
  ram.set(key, value, ttl);
  bump(ram, key);
}

/** Removes dict key `key` of the RAM tier (for K: the object, or the Vary index and so every variant). */
export function ramDrop(this: void, ram: NgxSharedDict, key: string): void {
  ram.delete(key);
  bump(ram, key);
}

const RAM_RE = "^R|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^\n]*)\n";

let parsed = new LuaTable<string, RamObject>();
let parsedBytes = 0;
const PARSED_MAX_BYTES = 8 * 1024 * 1024;

function parseRam(blob: string, ver: number | undefined): RamObject | undefined {
  const [a, b, c, d, _e, f, st, hl, lm, tags, etag] = string.match(blob, RAM_RE);
  if (a === undefined) return undefined;
  const bodyAt = string.find(blob, "\n", 1, true)[0]! + 1;
  const hend = bodyAt + tonumber(hl)!;
  const names: string[] = [];
  const values: (string | string[])[] = [];
  let surrogate = false;
  let pos = bodyAt;
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
      if (string.lower(name) === "surrogate-control") surrogate = true;
    }
    pos = nl! + 1;
  }
  const body = string.sub(blob, hend);
  return {
    blob,
    storedAt: tonumber(a)!,
    lifetime: tonumber(b)!,
    initAge: tonumber(c)!,
    swr: tonumber(d)!,
    flags: tonumber(f)!,
    status: tonumber(st)!,
    lm: lm!,
    etag: etag!,
    tags: ngx.unescape_uri(tags!),
    names,
    values,
    surrogate,
    body,
    len: tostring(body.length),
    ver,
  };
}

/**
 * Finds the request's RAM object of key K (through the Vary index): the object and its dict key. For a key
 * without Vary, a worker reuses the object it read while K's version has not moved (see above): one number
 * read instead of the object copied out of the dict. The markers are checked on every hit by the caller.
 */
export function ramLookup(this: void, ram: NgxSharedDict, key: string, now: number): LuaMultiReturn<[RamObject | undefined, string]> {
  const recent = parsed.get(key);
  if (recent !== undefined && recent.initAge + now - recent.storedAt < recent.lifetime && versionOf(ram, key) === recent.ver) return $multi(recent, key);
  let ramKey = key;
  let ver = versionOf(ram, key);
  let blob = sget(ram, key);
  if (blob === undefined) return $multi(undefined, ramKey);
  if (string.byte(blob, 1) === 86) {
    const [names] = string.match(blob, "^V|(.*)$");
    ramKey = key + "\u0000" + variantSig(names!);
    ver = versionOf(ram, ramKey);
    blob = sget(ram, ramKey);
    if (blob === undefined) return $multi(undefined, ramKey);
  }
  const known = parsed.get(ramKey);
  if (known !== undefined && known.blob === blob) {
    known.ver = ver;
    return $multi(known, ramKey);
  }
  const obj = parseRam(blob, ver);
  if (obj === undefined) return $multi(undefined, ramKey);
  if (parsedBytes > PARSED_MAX_BYTES) {
    parsed = new LuaTable();
    parsedBytes = 0;
  }
  parsedBytes = parsedBytes + blob.length;
  parsed.set(ramKey, obj);
  return $multi(obj, ramKey);
}

// The request being answered from the RAM tier while its response headers go out (the header filter runs
// inside ngx.print / ngx.send_headers, before they return: nothing yields in between), and its cache status
// label. The header filters of the cache, purge and headers features check it first to skip what a RAM hit
// does not need. Compared with the current request's identity, so it can never leak into another request.
const getRequest = base.get_request;
let ramReq: unknown = undefined;
let ramLabel = "";
let stripSurrogate = false;

/** Setup: Surrogate-Control is this edge's (cache.surrogateControl): RAM hits leave it out, as every tier does. */
export function ramStripsSurrogate(this: void, on: boolean): void {
  stripSurrogate = on;
}

/**
 * The cache status label (HIT-RAM, STALE-RAM) while the current request's response headers go out from the
 * RAM tier, else undefined. For the header filters: a RAM hit has no upstream and nothing to store.
 */
export function ramHitLabel(this: void): string | undefined {
  if (ramReq === undefined || ramReq !== getRequest()) return undefined;
  return ramLabel;
}

/**
 * Sets the headers of a RAM object. Written out for up to 12 headers rather than as a loop: LuaJIT cannot
 * start a trace of the access phase through an inner loop, so a loop here left the whole RAM hit to the
 * interpreter. Objects with more headers take the loop for the rest.
 */
function setHeaders(this: void, h: LuaTable<string, NgxHeaderValue>, names: string[], values: (string | string[])[]): void {
  const n = names.length;
  if (n === 0) return;
  h.set(names[0], values[0]);
  if (n === 1) return;
  h.set(names[1], values[1]);
  if (n === 2) return;
  h.set(names[2], values[2]);
  if (n === 3) return;
  h.set(names[3], values[3]);
  if (n === 4) return;
  h.set(names[4], values[4]);
  if (n === 5) return;
  h.set(names[5], values[5]);
  if (n === 6) return;
  h.set(names[6], values[6]);
  if (n === 7) return;
  h.set(names[7], values[7]);
  if (n === 8) return;
  h.set(names[8], values[8]);
  if (n === 9) return;
  h.set(names[9], values[9]);
  if (n === 10) return;
  h.set(names[10], values[10]);
  if (n === 11) return;
  h.set(names[11], values[11]);
  for (let i = 12; i < n; i++) h.set(names[i], values[i]);
}

/** Answers the request from a RAM object (headers, Age, 304 to a matching conditional, HEAD) and ends it. */
export function serveRam(this: void, obj: RamObject, age: number, label: string, method: string, inm: boolean, ims: boolean, statusVar: boolean): never {
  const vars = ngx.var;
  if (statusVar) vars.set("cdn_cache_status", label);
  const h = ngx.header;
  setHeaders(h, obj.names, obj.values);
  if (obj.surrogate && stripSurrogate && vars.get("http_surrogate_capability") === undefined) h.set("Surrogate-Control", undefined);
  h.set("Age", tostring(math.floor(age)));
  let notModified = false;
  if (obj.status === 200 && (inm || ims)) {
    if (inm) notModified = obj.etag !== "" && etagMatches(vars.get("http_if_none_match")!, obj.etag);
    else if (obj.lm !== "") {
      const t = ngx.parse_http_time(vars.get("http_if_modified_since")!);
      const l = ngx.parse_http_time(obj.lm);
      notModified = t !== undefined && l !== undefined && l <= t;
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
  ngx.status = obj.status;
  h.set("Content-Length", obj.len);
  if (method === "HEAD") {
    ramReq = getRequest();
    ngx.send_headers();
    ramReq = undefined;
    return ngx.exit(ngx.HTTP_OK);
  }
  ramReq = getRequest();
  ngx.print(obj.body);
  ramReq = undefined;
  return ngx.exit(ngx.HTTP_OK);
}

// ---- admission: a response's headers are taken in the header filter, its body from nginx's cache file ------
//
// The body is read from the file nginx stored (features/cache/disk-file.ts), not copied while it goes out:
// the bundle then needs no body filter, which nginx would run for every response, and the RAM copy is by
// construction the object on disk (nginx puts a file in place only once it is whole). A disk hit is
// admitted at once (its file is the one being served); a fresh fetch in its log phase, once nginx stored it.

/** An admission: the RAM object's head and headers, and where its body is (for a fetch, in ngx.ctx.cdn_capture until the log phase). */
export interface Capture {
  key: string;
  index: string | undefined;
  indexKey: string;
  head: string;
  headers: string;
  ttl: number;
  /** The disk key whose file holds the body. */
  disk: string;
  /** The Date and ETag of the response: the file must hold that one. */
  id: string;
  etag: string;
}

// response headers never copied into a RAM object (hop-by-hop, or recomputed when served)
const SKIP_STORE = new LuaTable<string, boolean>();
for (const h of ["connection", "keep-alive", "transfer-encoding", "content-length", "age", "proxy-connection", "te", "trailer", "upgrade"]) SKIP_STORE.set(h, true);

// Requests of this worker with an admission pending: the log phase only touches ngx.ctx while non-zero.
let captures = 0;

/** The freshness a RAM object starts with (copied from the disk object's metadata). */
export interface RamFreshness {
  storedAt: number;
  lifetime: number;
  initAge: number;
  swr: number;
  sie: number;
  flags: number;
  lm: string;
  etag: string;
  tags: string;
}

/**
 * The admission of the current response into the RAM tier, with the headers as they are now (header
 * filter); its body is to come from the file of `disk`. `varyList` names the Vary headers ("" without
 * Vary); `dropTags` leaves Cache-Tag / Surrogate-Key out (the purge feature removes them from client
 * responses). Undefined when the response is larger than `maxSize`.
 */
export function newCapture(this: void, key: string, varyList: string, f: RamFreshness, maxSize: number, dropTags: boolean, disk: string, id: string): Capture | undefined {
  const len = tonumber(ngx.header.get("Content-Length") as string | undefined);
  if (len !== undefined && len > maxSize) return undefined;
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
  const ttl = math.max(1, math.ceil(f.lifetime - f.initAge + math.max(f.swr, f.sie) + 1));
  const ramKey = varyList === "" ? key : key + "\u0000" + variantSig(varyList);
  const cap: Capture = {
    key: ramKey,
    index: varyList === "" ? undefined : "V|" + varyList,
    indexKey: key,
    head: "R|" + timeText(f.storedAt) + "|" + f.lifetime + "|" + f.initAge + "|" + f.swr + "|" + f.sie + "|" + f.flags + "|200|" + headers.length + "|" + f.lm + "|" + ngx.escape_uri(f.tags) + "|" + f.etag + "\n",
    headers,
    ttl,
    disk,
    id,
    etag: f.etag,
  };
  return cap;
}

/** Keeps an admission for the log phase of this request (`takeCapture`). */
export function startCapture(this: void, cap: Capture): void {
  ngx.ctx.set("cdn_capture", cap);
  captures++;
}

/** Log phase: the admission of this request, if any, and forgets it. */
export function takeCapture(this: void): Capture | undefined {
  if (captures <= 0) return undefined;
  const cap = ngx.ctx.get("cdn_capture") as Capture | undefined;
  if (cap === undefined) return undefined;
  ngx.ctx.set("cdn_capture", undefined);
  captures--;
  return cap;
}

/** Stores an admission in the RAM tier, with the body of the stored object. */
export function commitCapture(this: void, ram: NgxSharedDict, cap: Capture, body: string): void {
  if (cap.index !== undefined) ramPut(ram, cap.indexKey, cap.index, 0);
  ramPut(ram, cap.key, cap.head + cap.headers + body, cap.ttl);
}

/** A RAM copy's freshness refreshed in place after a 304 that changed no stored header. */
export function refreshRamCopy(this: void, ram: NgxSharedDict, mkey: string, now: number, lt: number, ia: number, swr: number, sie: number, flags: number): void {
  const blob = sget(ram, mkey);
  if (blob !== undefined && string.byte(blob, 1) === 82) {
    const [tail] = string.match(blob, "^R|[^|]*|[^|]*|[^|]*|[^|]*|[^|]*|[^|]*(|.*)$");
    if (tail !== undefined) ramPut(ram, mkey, "R|" + timeText(now) + "|" + lt + "|" + ia + "|" + swr + "|" + sie + "|" + flags + tail, math.max(1, math.ceil(lt + math.max(swr, sie) + 1)));
  }
}
