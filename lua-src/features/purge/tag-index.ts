/**
 * The purge index and the local application of a purge.
 *
 * What a purge retires is decided by markers (lua-src/core/markers.ts: one per URL's cache key, per tag, per
 * prefix, or for everything; persistent, checked by both cache tiers on every use). The index only finds the
 * objects to count in the answer and to delete at once (disk files, RAM copies); it may have lost entries
 * (a restart, a full dict), which never makes a purge miss: the answer says whether it was complete.
 *
 * Layout of `lua_shared_dict cdn_purge` (every index entry expires `indexTtl` after the object was last
 * stored; lists are shared-dict lists, so concurrent workers append atomically):
 *   "u:" .. URL            list of the cache keys stored for that URL (at most URL_CAP)
 *   "U:" .. URL \n KEY     1: the pair is in the list (dedup, atomic `add`)
 *   "t:" .. TAG            list of the cache keys tagged TAG (at most maxKeysPerTag)
 *   "T:" .. TAG \n KEY     1: dedup of the pair
 *   "s:" .. SIGNATURE      an HMAC signature already used (replay guard, lives maxSkew * 2)
 *   "complete"             1 while the index holds every stored object (set at start when the disk cache
 *                          is empty; cleared for good when an entry is evicted or capped)
 *
 * URL = the request URL as the index knows it: `scheme://host` (lower case, no port: nginx's `$host`) + the
 * raw path + `?` + the query normalised the way the cache key normalises it (parameters decoded, filtered
 * by `cache.key.query`, sorted, re-encoded). Purging `https://h/p?b=2&a=1` therefore purges the object the
 * cache stored for `https://h/p?a=1&b=2`.
 */
import type { PurgeData } from "../../../src/contract/index";
import { boundKey, normaliseArgs } from "../../core/cache-key";
import { listDir } from "../../core/fs";
import { setMarker } from "../../core/markers";
import { ramDrop } from "../cache/ram";

const P = ngx as unknown as PurgeNgx;
const URL_CAP = 64;
const MAX_TAGS = 64;
const MAX_TAG_LEN = 256;
const SEP = "\n";

let data: PurgeData;
let dict: PurgeDict | undefined;
let cacheDir = "";

/** Called once from the feature's setup (init). */
export function initIndex(d: PurgeData): void {
  data = d;
  dict = P.shared.get("cdn_purge");
  const path = d.cachePath;
  cacheDir = string.sub(path, 1, 1) === "/" ? path : P.config.prefix() + path;
  if (string.sub(cacheDir, -1) === "/") cacheDir = string.sub(cacheDir, 1, -2);
  // a new index (a start, or a reload that changed its size) is complete only over an empty disk cache
  if (dict !== undefined && dict.get("boot")[0] === undefined) {
    dict.set("boot", true);
    if (listDir(cacheDir, "^%x$").length === 0) dict.set("complete", true);
    else dict.delete("complete");
  }
}

/** The index has lost an entry (or never had it): counts in purge answers are lower bounds from now on. */
function lost(): void {
  dict!.delete("complete");
}

export function purgeDict(): PurgeDict | undefined {
  return dict;
}

// ---------------------------------------------------------------------------------------------- keys

/** The query part of a cache key: parameters decoded, filtered, sorted, re-encoded (as lua-src/features/cache.ts). */
function normaliseQuery(query: string): string {
  if (data.query === "none" || query === "") return "";
  return normaliseArgs(data, P.decode_args(query, 100));
}

/** `scheme://host` in lower case without the port, or undefined. */
function origin(scheme: string, authority: string): string | undefined {
  let host = string.lower(authority);
  const [at] = string.find(host, "@", 1, true);
  if (at !== undefined) return undefined;
  if (string.sub(host, 1, 1) === "[") {
    const [close] = string.find(host, "]", 1, true);
    if (close === undefined) return undefined;
    host = string.sub(host, 1, close);
  } else {
    const [colon] = string.find(host, ":", 1, true);
    if (colon !== undefined) host = string.sub(host, 1, colon - 1);
  }
  if (host === "") return undefined;
  return string.lower(scheme) + "://" + host;
}

/**
 * Normalises a URL given to the purge API: its index URL and the cache key the cache computes for it
 * without rule additions (undefined when it cannot be computed: a relative URL with `cache.key.host`).
 */
export function normaliseUrl(url: string): LuaMultiReturn<[string | undefined, string | undefined]> {
  const [scheme, authority, path, query] = string.match(url, "^(%a[%w+.-]*)://([^/?#]*)([^?#]*)%??([^#]*)$");
  if (scheme === undefined) return $multi(undefined, undefined);
  const o = origin(scheme, authority);
  if (o === undefined) return $multi(undefined, undefined);
  const p = path === "" ? "/" : path;
  const q = normaliseQuery(query);
  const tail = q === "" ? p : p + "?" + q;
  // shortened like the cache's keys (core/cache-key.ts)
  return $multi(o + tail, boundKey(data.host ? o + tail : tail));
}

/** Normalises a prefix given to the purge API (scheme and host lower-cased, port removed). */
export function normalisePrefix(prefix: string): string | undefined {
  const [scheme, authority, rest] = string.match(prefix, "^(%a[%w+.-]*)://([^/?#]*)(.*)$");
  if (scheme === undefined) return undefined;
  const o = origin(scheme, authority);
  if (o === undefined) return undefined;
  return o + rest;
}

// ---------------------------------------------------------------------------------------------- record

function addPair(list: string, marker: string, key: string, cap: number, ttl: number): void {
  const d = dict!;
  const [ok, err, forcible] = d.add(marker, 1, ttl);
  if (!ok) {
    if (err === "exists") {
      // stored again: keep the entry alive as long as the object
      d.expire(marker, ttl);
      d.expire(list, ttl);
    } else lost();
    return;
  }
  if (forcible) lost();
  const [len] = d.llen(list);
  if (len !== undefined && len >= cap) return lost();
  const [, perr] = d.rpush(list, key);
  if (perr !== undefined) lost();
  d.expire(list, ttl);
}

function recordTags(value: string | string[], key: string, ttl: number): void {
  const values = typeof value === "string" ? [value] : value;
  let n = 0;
  for (const v of values) {
    for (const [tag] of string.gmatch(v, "[^,%s]+")) {
      if (tag.length <= MAX_TAG_LEN) {
        addPair("t:" + tag, "T:" + tag + SEP + key, key, data.maxKeysPerTag, ttl);
        n = n + 1;
        if (n >= MAX_TAGS) return;
      }
    }
  }
}

/**
 * Records an object of cache key `key` (its index URL, and its tags, comma-separated) in the index: when the
 * cache stores a response, or reads back one stored before a restart.
 */
export function indexObject(this: void, key: string, tags: string): void {
  if (dict === undefined) return;
  const vars = ngx.var;
  const ttl = data.indexTtl;
  // the index URL: the key up to the rules' additions ("#..."), with scheme://host when the key has none
  const [hash] = string.find(key, "#", 1, true);
  let url = hash === undefined ? key : string.sub(key, 1, hash - 1);
  if (!data.host) url = vars.get("scheme")! + "://" + vars.get("host")! + url;
  addPair("u:" + url, "U:" + url + SEP + key, key, URL_CAP, ttl);
  if (tags !== "") recordTags(tags, key, ttl);
}

/** Header filter: records a response the cache is storing (URL and tags -> its cache key). */
export function recordResponse(): void {
  if (dict === undefined) return;
  const vars = ngx.var;
  const key = vars.get("cdn_cache_key");
  if (key === undefined || key === "") return;
  if (vars.get("cdn_nostore") === "1") return;
  const h = ngx.header;
  const lines: string[] = [];
  for (const name of ["Cache-Tag", "Surrogate-Key"]) {
    const v = h.get(name);
    if (typeof v === "string") lines.push(v);
    else if (v !== undefined) for (const l of v) lines.push(l);
  }
  indexObject(key, table.concat(lines, ","));
}

// ---------------------------------------------------------------------------------------------- purge

/** What a purge request asks for (from the JSON body, the query string, or a fleet message). */
export interface PurgeRequest {
  urls: string[];
  prefixes: string[];
  tags: string[];
  all: boolean;
  soft: boolean;
}

export interface PurgeResult {
  /** Cache keys the index found (purged, or marked stale). */
  keys: string[];
  /** Cache files removed from the disk tier. */
  files: number;
  /** URLs given that could not be understood. */
  invalid: string[];
  /** Purge-all: the disk tree is emptied by a background timer. */
  scheduled: boolean;
  /** The index held every stored object: `keys` is all of them (else a lower bound; the markers retire the rest). */
  indexComplete: boolean;
  /** A marker could not be stored (the markers dict is full): everything was purged instead (same kind). */
  fellBack: boolean;
}

/** Takes every key out of an index list; `keep` puts them back (soft purge: the objects stay stored). */
function drain(list: string, markerPrefix: string, keep: boolean, seen: LuaTable<string, boolean>, out: string[]): void {
  const d = dict!;
  const taken: string[] = [];
  for (;;) {
    const [k] = d.lpop(list);
    if (k === undefined) break;
    taken.push(k);
    if (taken.length > 1000000) break;
  }
  for (const k of taken) {
    if (seen.get(k) !== true) {
      seen.set(k, true);
      out.push(k);
    }
    if (keep) d.rpush(list, k);
    else d.delete(markerPrefix + k);
  }
  if (keep && taken.length > 0) d.expire(list, data.indexTtl);
}

/** Path of a key's cache file (levels 1:2: last hex digit, then the two before it). */
function cacheFile(key: string): string {
  const md5 = ngx.md5(key);
  return cacheDir + "/" + string.sub(md5, -1) + "/" + string.sub(md5, -3, -2) + "/" + md5;
}

/**
 * Applies a purge on this node: the markers first (what makes the purge hold, whatever the index knows),
 * then the index (for the answer's count, and to delete disk files and RAM copies of a hard purge at once).
 */
/** When this worker last logged that the index is incomplete. */
let incompleteLogged = -60;

export function applyPurge(req: PurgeRequest): PurgeResult {
  const res: PurgeResult = { keys: [], files: 0, invalid: [], scheduled: false, indexComplete: true, fellBack: false };
  const d = dict;
  if (d === undefined) return res;
  res.indexComplete = d.get("complete")[0] !== undefined;
  if (!res.indexComplete && !req.all && ngx.now() - incompleteLogged >= 60) {
    incompleteLogged = ngx.now();
    // at most once a minute per worker: the operator learns why counts are low (the markers still retire everything)
    ngx.log(ngx.WARN, "purge: the index is incomplete (a restart, or the index dict was full): answers count only the objects it still knows; every matching object is retired by the markers anyway");
  }
  const soft = req.soft;
  const seen = new LuaTable<string, boolean>();
  const keys = res.keys;
  const ram = ngx.shared.get("cdn_ram");
  let failed = false;
  const mark = (name: string) => {
    if (!failed && !setMarker(name, soft)) failed = true;
  };

  if (req.all) {
    if (!setMarker("m:*", soft)) ngx.log(ngx.ERR, "purge: cannot store the purge-all marker: the markers dict is full");
    if (!soft) {
      // the index points at nothing any more: drop it
      for (const k of d.get_keys(0)) {
        const c = string.sub(k, 1, 2);
        if (c === "u:" || c === "U:" || c === "t:" || c === "T:") d.delete(k);
      }
      if (ram !== undefined) ram.flush_all();
      res.scheduled = scheduleWipe();
    }
    return res;
  }

  // URL purges mark each key (every Vary variant of it): the URL's own key, and the keys the index has for it
  for (const u of req.urls) {
    const [url, base] = normaliseUrl(u);
    if (url === undefined) {
      res.invalid.push(u);
    } else {
      const from = keys.length;
      if (base !== undefined && seen.get(base) !== true) {
        seen.set(base, true);
        keys.push(base);
      }
      drain("u:" + url, "U:" + url + SEP, soft, seen, keys);
      for (let i = from; i < keys.length; i++) mark("m:" + keys[i]);
    }
  }
  // prefix and tag purges are held by their own marker
  if (req.prefixes.length > 0) {
    const wanted: string[] = [];
    for (const p of req.prefixes) {
      const n = normalisePrefix(p);
      if (n === undefined) res.invalid.push(p);
      else {
        mark("p:" + n);
        wanted.push("u:" + n);
      }
    }
    if (wanted.length > 0) {
      // the index, never the disk tree: cost is the number of index entries
      for (const k of d.get_keys(0)) {
        if (string.sub(k, 1, 2) === "u:") {
          for (const w of wanted) {
            if (string.sub(k, 1, w.length) === w) {
              drain(k, "U:" + string.sub(k, 3) + SEP, soft, seen, keys);
              break;
            }
          }
        }
      }
    }
  }
  for (const t of req.tags) {
    mark("g:" + t);
    drain("t:" + t, "T:" + t + SEP, soft, seen, keys);
  }

  for (const k of keys) {
    if (!soft) {
      if (ram !== undefined) ramDrop(ram, k);
      const [ok] = os.remove(cacheFile(k));
      if (ok) res.files = res.files + 1;
    }
  }
  if (failed) {
    // a purge must never silently miss: with no room for its markers, everything goes (same kind)
    res.fellBack = true;
    ngx.log(ngx.ERR, "purge: the markers dict is full; this purge was applied to every object instead");
    setMarker("m:*", soft);
  }
  return res;
}

// ---------------------------------------------------------------------------------------------- purge all

let wiping = false;
let again = false;

/** Deletes every cache file under the cache directory (levels 1:2), yielding between directories. */
function wipe(premature: boolean): void {
  if (premature) return;
  let removed = 0;
  let work = 0;
  for (const l1 of listDir(cacheDir, "^%x$")) {
    for (const l2 of listDir(cacheDir + "/" + l1, "^%x%x$")) {
      const dir = cacheDir + "/" + l1 + "/" + l2;
      for (const f of listDir(dir, "^%x+$")) {
        if (f.length === 32) {
          const [ok] = os.remove(dir + "/" + f);
          if (ok) removed = removed + 1;
          work = work + 1;
        }
      }
      work = work + 10;
      if (work >= 500) {
        // yield to requests now and then (sleep(0) needs OpenResty's delayed-events patch, absent from Debian's nginx)
        work = 0;
        ngx.sleep(0.001);
      }
    }
  }
  ngx.log(ngx.NOTICE, "purge: purge-all removed ", removed, " cache files");
  if (again) {
    // another purge-all arrived meanwhile: files stored since then go too
    again = false;
    wipe(false);
    return;
  }
  wiping = false;
}

function scheduleWipe(): boolean {
  if (wiping) {
    again = true;
    return true;
  }
  const [t, err] = P.timer.at(0, wipe);
  if (t === undefined) {
    ngx.log(ngx.ERR, "purge: cannot start the purge-all timer: ", err);
    return false;
  }
  wiping = true;
  return true;
}
