import * as base from "resty.core.base";
import * as ffi from "ffi";
import type { Meta } from "./meta";

/**
 * What the cache hands from one phase of a request to the next without nginx variables (each read or
 * write of one is a C call with a name lookup and a copy), for the common case, a fresh disk hit:
 *
 * - handOver / takeOver: the access phase's key, metadata key and record, for the header filter of the same
 *   request (per worker, keyed by the request; taken by the header filter, dropped by the log phase, which
 *   nginx runs for every request, so nothing outlives its request).
 * - the disk-hit slot: the label (HIT, STALE, ...) of the disk hit whose headers are going out, and whether
 *   the stored response holds none of the headers the edge removes from hits, for the header filters of
 *   the purge and headers features, which run right after the cache's in the same call. Compared with the
 *   current request's identity; the cache's header filter resets it for every response.
 */

const getRequest = base.get_request;

/** The current request's address, as a number: a table key (the request pointer itself is a new cdata each time). */
function requestId(this: void): number {
  return tonumber(ffi.cast("uintptr_t", getRequest()))!;
}

const liveKey = new LuaTable<number, string>();
const liveMkey = new LuaTable<number, string>();
const liveMeta = new LuaTable<number, Meta>();
let liveN = 0;

/** Access phase: a fresh disk hit's key, metadata key and record, for this request's header filter. */
export function handOver(this: void, key: string, mkey: string, m: Meta): void {
  const r = requestId();
  if (liveKey.get(r) === undefined) liveN++;
  liveKey.set(r, key);
  liveMkey.set(r, mkey);
  liveMeta.set(r, m);
}

/** Header filter: what the access phase handed over for this request (and forgets it). */
export function takeOver(this: void): LuaMultiReturn<[string | undefined, string, Meta | undefined]> {
  if (liveN <= 0) return $multi(undefined, "", undefined);
  const r = requestId();
  const key = liveKey.get(r);
  if (key === undefined) return $multi(undefined, "", undefined);
  const mkey = liveMkey.get(r)!;
  const m = liveMeta.get(r);
  liveKey.delete(r);
  liveMkey.delete(r);
  liveMeta.delete(r);
  liveN--;
  return $multi(key, mkey, m);
}

/** Log phase: drops a hand-over the header filter never took (a request that ended before its headers). */
export function dropHandOver(this: void): void {
  if (liveN > 0) takeOver();
  if (marksN > 0) takeMarks();
}

const liveMarks = new LuaTable<number, string>();
let marksN = 0;

/** Access phase: the markers' snapshot (core/markers.ts) when this request goes to the origin. */
export function handOverMarks(this: void, snapshot: string): void {
  const r = requestId();
  if (liveMarks.get(r) === undefined) marksN++;
  liveMarks.set(r, snapshot);
}

/** Header filter and log phase: the snapshot the access phase took for this request (and forgets it). */
export function takeMarks(this: void): string | undefined {
  if (marksN <= 0) return undefined;
  const r = requestId();
  const s = liveMarks.get(r);
  if (s === undefined) return undefined;
  liveMarks.delete(r);
  marksN--;
  return s;
}

let hitReq: unknown = undefined;
let hitLabel = "";
let hitClean = false;

/** The cache's header filter: the response going out is a disk hit with this label. */
export function setDiskHit(this: void, label: string, clean: boolean): void {
  hitReq = getRequest();
  hitLabel = label;
  hitClean = clean;
}

/** The cache's header filter, for every other response. */
export function clearDiskHit(this: void): void {
  hitReq = undefined;
}

/** The label of the disk hit whose headers are going out, else undefined. */
export function diskHitLabel(this: void): string | undefined {
  if (hitReq === undefined || hitReq !== getRequest()) return undefined;
  return hitLabel;
}

/** True while the headers of a disk hit go out whose stored response has no Connection-named, tag or Set-Cookie header. */
export function cleanDiskHit(this: void): boolean {
  return hitClean && hitReq !== undefined && hitReq === getRequest();
}
