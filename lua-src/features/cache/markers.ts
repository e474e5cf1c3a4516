import { clearMarker, markerDecision, MARK_HARD, MARK_NONE, MARK_SOFT, prefixMarkersActive, setMarker } from "../../core/markers";
import { sget } from "./meta";
import { ramDrop } from "./ram";

export { MARK_HARD, MARK_NONE, MARK_SOFT };

/**
 * The cache's side of the markers (lua-src/core/markers.ts): what they say about a stored object, and the
 * invalidation after unsafe requests (RFC 9111 4.4), which is a hard marker of its own.
 */

/**
 * The index URL of a cache key, for prefix markers: the key up to the rules' additions ("#..."), with
 * `scheme://host` in front when the key has none.
 */
export function indexUrl(this: void, key: string, keyHasHost: boolean): string {
  const [hash] = string.find(key, "#", 1, true);
  const url = hash === undefined ? key : string.sub(key, 1, hash - 1);
  if (keyHasHost) return url;
  const vars = ngx.var;
  return vars.get("scheme")! + "://" + vars.get("host")! + url;
}

/** What the markers say about the object of `key` stored at `storedAt` with purge tags `tags`. */
export function objectMarkers(this: void, key: string, storedAt: number, tags: string, keyHasHost: boolean): LuaMultiReturn<[number, number]> {
  return markerDecision(key, storedAt, tags, prefixMarkersActive() ? indexUrl(key, keyHasHost) : undefined);
}

/**
 * Invalidates everything stored for `key` (every Vary variant, both tiers): a hard marker, journaled so
 * it survives a restart. Only when something may be stored (a record, a RAM copy, a disk file), so a busy
 * POST endpoint that is never cached writes no markers. When the marker cannot be stored (the markers dict
 * is full), the object's disk file and RAM copy are removed instead.
 */
export function invalidate(this: void, meta: NgxSharedDict, ram: NgxSharedDict | undefined, key: string, diskFile: string): void {
  let stored = sget(meta, key) !== undefined || (ram !== undefined && ram.get(key)[0] !== undefined);
  if (!stored) {
    const [f] = io.open(diskFile, "rb");
    if (f !== undefined) {
      f.close();
      stored = true;
    }
  }
  if (!stored) return;
  meta.delete(key);
  if (ram !== undefined) ramDrop(ram, key);
  if (!setMarker("m:" + key, false)) {
    ngx.log(ngx.WARN, "cache: the markers dict is full; invalidating ", key, " by removing its stored copy");
    os.remove(diskFile);
  }
}

/** After a store that replaced every variant of `key` (no Vary), its per-key marker is no longer needed. */
export function forgetKeyMarker(this: void, key: string, storedAt: number): void {
  const dict = ngx.shared.get("cdn_markers");
  if (dict === undefined) return;
  const [v] = dict.get("m:" + key);
  if (v === undefined) return;
  const [h, s] = string.match(v as string, "^([^|]*)|(.*)$");
  if ((tonumber(h) ?? 0) < storedAt && (tonumber(s) ?? 0) < storedAt) clearMarker("m:" + key);
}
