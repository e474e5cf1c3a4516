import { timeText } from "../../core/clock";
import { variantSig } from "./vary";

/**
 * Freshness metadata of stored objects, in the `cdn_meta` dict (per worker, a parsed copy of each record
 * string is kept, so a hit parses nothing; records are immutable: a change writes a new string).
 *
 * Records, by key:
 *   K                "O|storedAt|lifetime|initAge|swr|sie|flags|lm|id|tags|hdrs|etag"   the object stored for
 *                    K (the string fields URI-escaped, so none holds a "|")
 *   K                "X|t"                  the stored object failed a refresh at t: treat as absent
 *   K                "V|names|baseSig"      K varies on the request headers `names`; the variant stored under
 *                    K itself on disk has signature baseSig; every variant's record is under K \0 sig
 *   K \0 sig         "O|..." / "X|t"        a Vary variant
 *   "L:" mkey / "R:" mkey   refresh locks (synchronous / background)
 *   "H:" K           hit counter of the RAM tier's admission
 *
 * Metadata is a cache of facts nginx's stored response also carries (features/cache/disk-file.ts): when a
 * record is missing, the access phase rebuilds it from the stored file; nothing is ever assumed fresh.
 * `storedAt` is the start of the request that fetched the object (so a purge that happens while a fetch is
 * in flight retires its answer), `id` the stored response's Date (checked on disk hits), `tags` its purge
 * tags (Cache-Tag / Surrogate-Key), checked against tag markers.
 */

export interface Meta {
  storedAt: number;
  lifetime: number;
  initAge: number;
  swr: number;
  sie: number;
  flags: number;
  lm: string;
  /** The stored response's Date header ("" when it had none): which response the record describes. */
  id: string;
  /** Purge tags, comma-separated ("" for none). */
  tags: string;
  /** Headers updated by a 304 since the object was stored: name \2 value \1 ... */
  hdrs: string;
  etag: string;
}

const META_RE = "^O|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)$";
const esc = ngx.escape_uri;
const unesc = ngx.unescape_uri;

let memo = new LuaTable<string, Meta>();
let memoN = 0;
const MEMO_MAX = 4096;

/** The parsed record "O|...", or undefined when it is not one. */
export function parseMeta(this: void, m: string): Meta | undefined {
  const known = memo.get(m);
  if (known !== undefined) return known;
  const [a, b, c, d, e, f, lm, id, tags, hdrs, etag] = string.match(m, META_RE);
  if (a === undefined) return undefined;
  const rec: Meta = {
    storedAt: tonumber(a)!,
    lifetime: tonumber(b)!,
    initAge: tonumber(c)!,
    swr: tonumber(d)!,
    sie: tonumber(e)!,
    flags: tonumber(f)!,
    lm: unesc(lm!),
    id: unesc(id!),
    tags: unesc(tags!),
    hdrs: unesc(hdrs!),
    etag: unesc(etag!),
  };
  if (memoN >= MEMO_MAX) {
    memo = new LuaTable();
    memoN = 0;
  }
  memo.set(m, rec);
  memoN++;
  return rec;
}

export function metaString(this: void, m: Meta): string {
  return "O|" + timeText(m.storedAt) + "|" + m.lifetime + "|" + m.initAge + "|" + m.swr + "|" + m.sie + "|" + m.flags + "|" + esc(m.lm) + "|" + esc(m.id) + "|" + esc(m.tags) + "|" + esc(m.hdrs) + "|" + esc(m.etag);
}

/** A string value of a shared dict. */
export function sget(this: void, d: NgxSharedDict, key: string): string | undefined {
  const [v] = d.get(key);
  return v as string | undefined;
}

export type MetaState = "O" | "X" | undefined;

/**
 * Looks up the request's variant of `key`: its state ("O" stored, "X" failed its refresh, undefined
 * unknown), its record, its metadata key, its disk (proxy_cache_key) key, and whether K varies. Access phase
 * only: the request's Vary headers are put in normalised form (see variantSig).
 */
export function lookupMeta(this: void, meta: NgxSharedDict, key: string): LuaMultiReturn<[MetaState, Meta | undefined, string, string, boolean]> {
  let mkey = key;
  let disk = key;
  let m = sget(meta, key);
  if (m === undefined) return $multi(undefined, undefined, mkey, disk, false);
  let varies = false;
  if (string.byte(m, 1) === 86) {
    // "V|names|baseSig": the variant stored under K itself has signature baseSig
    const [names, baseSig] = string.match(m, "^V|([^|]*)|(.*)$");
    const sig = variantSig(names!, true);
    varies = true;
    mkey = key + "\u0000" + sig;
    if (sig !== baseSig) disk = mkey;
    m = sget(meta, mkey);
    if (m === undefined) return $multi(undefined, undefined, mkey, disk, true);
  }
  if (string.byte(m, 1) === 88) return $multi("X", undefined, mkey, disk, varies); // "X|t"
  const rec = parseMeta(m);
  if (rec === undefined) return $multi(undefined, undefined, mkey, disk, varies);
  return $multi("O", rec, mkey, disk, varies);
}
