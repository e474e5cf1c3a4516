import { variantSig } from "./vary";

/**
 * Freshness metadata of stored objects, in the `cdn_meta` dict (per worker, a parsed copy of each record
 * string is kept, so a hit parses nothing; records are immutable: a change writes a new string).
 *
 * Records, by key:
 *   K                "O|storedAt|lifetime|initAge|swr|sie|flags|lm|hdrs|etag"   the object stored for K
 *   K                "X|t"                  invalidated at t (a tombstone)
 *   K                "V|invalT|names|baseSig"  K varies on the request headers `names`; the variant stored
 *                    under K itself on disk has signature baseSig; every variant's record is under K \0 sig
 *   K \0 sig         "O|..." / "X|t"        a Vary variant
 *   "L:" mkey / "R:" mkey   refresh locks (synchronous / background)
 *   "H:" K           hit counter of the RAM tier's admission
 */

export interface Meta {
  storedAt: number;
  lifetime: number;
  initAge: number;
  swr: number;
  sie: number;
  flags: number;
  lm: string;
  /** Headers updated by a 304 since the object was stored: name \2 value \1 ... */
  hdrs: string;
  etag: string;
}

const META_RE = "^O|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$";

let memo = new LuaTable<string, Meta>();
let memoN = 0;
const MEMO_MAX = 4096;

/** The parsed record "O|...", or undefined when it is not one. */
export function parseMeta(this: void, m: string): Meta | undefined {
  const known = memo.get(m);
  if (known !== undefined) return known;
  const [a, b, c, d, e, f, lm, hdrs, etag] = string.match(m, META_RE);
  if (a === undefined) return undefined;
  const rec: Meta = {
    storedAt: tonumber(a)!,
    lifetime: tonumber(b)!,
    initAge: tonumber(c)!,
    swr: tonumber(d)!,
    sie: tonumber(e)!,
    flags: tonumber(f)!,
    lm: lm!,
    hdrs: hdrs!,
    etag: etag!,
  };
  if (memoN >= MEMO_MAX) {
    memo = new LuaTable();
    memoN = 0;
  }
  memo.set(m, rec);
  memoN++;
  return rec;
}

export function metaString(this: void, storedAt: number, lifetime: number, initAge: number, swr: number, sie: number, flags: number, lm: string, hdrs: string, etag: string): string {
  return "O|" + storedAt + "|" + lifetime + "|" + initAge + "|" + swr + "|" + sie + "|" + flags + "|" + lm + "|" + hdrs + "|" + etag;
}

/** A string value of a shared dict. */
export function sget(this: void, d: NgxSharedDict, key: string): string | undefined {
  const [v] = d.get(key);
  return v as string | undefined;
}

export type MetaState = "O" | "X" | undefined;

/**
 * Looks up the request's variant of `key`: its state ("O" stored, "X" invalidated, undefined unknown), its
 * record, its metadata key and its disk (proxy_cache_key) key.
 */
export function lookupMeta(this: void, meta: NgxSharedDict, key: string): LuaMultiReturn<[MetaState, Meta | undefined, string, string]> {
  let mkey = key;
  let disk = key;
  let inval = 0;
  let m = sget(meta, key);
  if (m === undefined) return $multi(undefined, undefined, mkey, disk);
  if (string.byte(m, 1) === 86) {
    // "V|invalT|names|baseSig": the variant stored under K itself has signature baseSig
    const [t, names, baseSig] = string.match(m, "^V|([^|]*)|([^|]*)|(.*)$");
    inval = tonumber(t) ?? 0;
    const sig = variantSig(names!);
    mkey = key + "\u0000" + sig;
    if (sig !== baseSig) disk = mkey;
    m = sget(meta, mkey);
    if (m === undefined) return $multi(undefined, undefined, mkey, disk);
  }
  if (string.byte(m, 1) === 88) return $multi("X", undefined, mkey, disk); // tombstone "X|t"
  const rec = parseMeta(m);
  if (rec === undefined) return $multi(undefined, undefined, mkey, disk);
  if (rec.storedAt <= inval) return $multi("X", rec, mkey, disk);
  return $multi("O", rec, mkey, disk);
}
