/**
 * The purge index and the local application of a purge.
 *
 * Layout of `lua_shared_dict cdn_purge` (every index entry expires `indexTtl` after the object was last
 * stored; lists are shared-dict lists, so concurrent workers append atomically):
 *   "u:" .. URL            list of the cache keys stored for that URL (at most URL_CAP)
 *   "U:" .. URL \n KEY     1: the pair is in the list (dedup, atomic `add`)
 *   "t:" .. TAG            list of the cache keys tagged TAG (at most maxKeysPerTag)
 *   "T:" .. TAG \n KEY     1: dedup of the pair
 *   "m:" .. KEY            purge marker: ngx.now() of the purge, flags 1 = hard, 2 = soft (read by the cache)
 *   "m:*"                  purge-all marker (same flags)
 *   "s:" .. SIGNATURE      an HMAC signature already used (replay guard, lives maxSkew * 2)
 *
 * URL = the request URL as the index knows it: `scheme://host` (lower case, no port: nginx's `$host`) + the
 * raw path + `?` + the query normalised the way the cache key normalises it (parameters decoded, filtered
 * by `cache.key.query`, sorted, re-encoded). Purging `https://h/p?b=2&a=1` therefore purges the object the
 * cache stored for `https://h/p?a=1&b=2`.
 */
import type { PurgeData } from "../../../src/contract/index";
import { normaliseArgs } from "../../core/cache-key";

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
  return $multi(o + tail, data.host ? o + tail : tail);
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
  const [ok, err] = d.add(marker, 1, ttl);
  if (!ok) {
    if (err === "exists") {
      // stored again: keep the entry alive as long as the object
      d.expire(marker, ttl);
      d.expire(list, ttl);
    }
    return;
  }
  const [len] = d.llen(list);
  if (len !== undefined && len >= cap) return;
  d.rpush(list, key);
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

/** Header filter: records a response the cache is storing (URL and tags -> its cache key). */
export function recordResponse(): void {
  if (dict === undefined) return;
  const vars = ngx.var;
  const key = vars.get("cdn_cache_key");
  if (key === undefined || key === "") return;
  if (vars.get("cdn_cache_bypass") === "1") return;
  const ttl = data.indexTtl;
  // the index URL: the key up to the rules' additions ("#..."), with scheme://host when the key has none
  const [hash] = string.find(key, "#", 1, true);
  let url = hash === undefined ? key : string.sub(key, 1, hash - 1);
  if (!data.host) url = vars.get("scheme")! + "://" + vars.get("host")! + url;
  addPair("u:" + url, "U:" + url + SEP + key, key, URL_CAP, ttl);
  const h = ngx.header;
  const ct = h.get("Cache-Tag");
  if (ct !== undefined) recordTags(ct, key, ttl);
  const sk = h.get("Surrogate-Key");
  if (sk !== undefined) recordTags(sk, key, ttl);
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
  /** Cache keys purged (hard) or marked stale (soft). */
  keys: string[];
  /** Cache files removed from the disk tier. */
  files: number;
  /** URLs given that could not be understood. */
  invalid: string[];
  /** Purge-all: the disk tree is emptied by a background timer. */
  scheduled: boolean;
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

/** Applies a purge on this node: index, disk files, RAM tier, markers. */
export function applyPurge(req: PurgeRequest): PurgeResult {
  const res: PurgeResult = { keys: [], files: 0, invalid: [], scheduled: false };
  const d = dict;
  if (d === undefined) return res;
  const now = ngx.now();
  const flag = req.soft ? 2 : 1;
  const ttl = data.indexTtl;
  const seen = new LuaTable<string, boolean>();
  const keys = res.keys;
  const ram = P.shared.get("cdn_ram");

  if (req.all) {
    d.set("m:*", now, ttl, flag);
    if (!req.soft) {
      // the index points at nothing any more: drop it (markers of single keys are covered by "m:*")
      for (const k of d.get_keys(0)) {
        const c = string.sub(k, 1, 2);
        if (c === "u:" || c === "U:" || c === "t:" || c === "T:" || (c === "m:" && k !== "m:*")) d.delete(k);
      }
      if (ram !== undefined) ram.flush_all();
      res.scheduled = scheduleWipe();
    }
    return res;
  }

  for (const u of req.urls) {
    const [url, base] = normaliseUrl(u);
    if (url === undefined) {
      res.invalid.push(u);
    } else {
      if (base !== undefined && seen.get(base) !== true) {
        seen.set(base, true);
        keys.push(base);
      }
      drain("u:" + url, "U:" + url + SEP, req.soft, seen, keys);
    }
  }
  if (req.prefixes.length > 0) {
    const wanted: string[] = [];
    for (const p of req.prefixes) {
      const n = normalisePrefix(p);
      if (n === undefined) res.invalid.push(p);
      else wanted.push("u:" + n);
    }
    if (wanted.length > 0) {
      // the index, never the disk tree: cost is the number of index entries
      for (const k of d.get_keys(0)) {
        if (string.sub(k, 1, 2) === "u:") {
          for (const w of wanted) {
            if (string.sub(k, 1, w.length) === w) {
              drain(k, "U:" + string.sub(k, 3) + SEP, req.soft, seen, keys);
              break;
            }
          }
        }
      }
    }
  }
  for (const t of req.tags) drain("t:" + t, "T:" + t + SEP, req.soft, seen, keys);

  for (const k of keys) {
    d.set("m:" + k, now, ttl, flag);
    if (!req.soft) {
      if (ram !== undefined) ram.delete(k);
      const [ok] = os.remove(cacheFile(k));
      if (ok) res.files = res.files + 1;
    }
  }
  return res;
}

// ---------------------------------------------------------------------------------------------- purge all

interface DirFfi {
  cdef(this: void, decl: string): void;
  C: {
    opendir(this: void, name: string): unknown;
    readdir(this: void, dir: unknown): { d_type: number; d_name: unknown } | undefined;
    closedir(this: void, dir: unknown): number;
  };
  string(this: void, p: unknown): string;
}

let dirFfi: DirFfi | undefined;

function loadDirFfi(): DirFfi | undefined {
  if (dirFfi !== undefined) return dirFfi;
  const [, ffiModule] = pcall(require, "ffi");
  const ffi = ffiModule as DirFfi;
  // glibc x86_64/aarch64 layout of struct dirent (64-bit inode and offset)
  pcall(() =>
    ffi.cdef(`
struct cdn_purge_dirent { uint64_t d_ino; int64_t d_off; unsigned short d_reclen; unsigned char d_type; char d_name[256]; };
void *opendir(const char *name);
struct cdn_purge_dirent *readdir(void *dirp);
int closedir(void *dirp);
`),
  );
  const [ok] = pcall(() => ffi.C.opendir !== undefined && ffi.C.readdir !== undefined);
  if (!ok) return undefined;
  dirFfi = ffi;
  return ffi;
}

/** Names in a directory matching a Lua pattern (".", ".." and temp files never match a hex pattern). */
function listDir(ffi: DirFfi, path: string, pattern: string): string[] {
  const out: string[] = [];
  const dir = ffi.C.opendir(path);
  if (dir === undefined) return out;
  for (;;) {
    const e = ffi.C.readdir(dir);
    if (e === undefined) break;
    const name = ffi.string(e.d_name);
    const [s] = string.find(name, pattern);
    if (s !== undefined) out.push(name);
  }
  ffi.C.closedir(dir);
  return out;
}

let wiping = false;
let again = false;

/** Deletes every cache file under the cache directory (levels 1:2), yielding between directories. */
function wipe(premature: boolean): void {
  if (premature) return;
  const ffi = loadDirFfi();
  if (ffi === undefined) {
    ngx.log(ngx.ERR, "purge: no opendir/readdir through the FFI; purge-all cannot delete the cache files");
    wiping = false;
    return;
  }
  let removed = 0;
  let work = 0;
  for (const l1 of listDir(ffi, cacheDir, "^%x$")) {
    for (const l2 of listDir(ffi, cacheDir + "/" + l1, "^%x%x$")) {
      const dir = cacheDir + "/" + l1 + "/" + l2;
      for (const f of listDir(ffi, dir, "^%x+$")) {
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
