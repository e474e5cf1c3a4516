import { purgeDecision } from "../../core/cache-rfc";
import { sget } from "./meta";

/**
 * Purge markers and invalidation (the contract with the purge feature).
 *
 * Purge markers live in the `cdn_purge` dict (absent when purge is off): "m:" .. K holds t = ngx.now() of
 * the purge with flags 1 = hard, 2 = soft; "m:*" the same for purge-all. Both tiers check them: when
 * t >= the object's stored-at time, hard = the object does not exist (RAM entry dropped, disk refetched),
 * soft = the object is stale as of t (stale windows apply, else refetch).
 */

/** Decision of the purge markers for the object of `key` stored at `storedAt`: PURGE_NONE/HARD/SOFT, and the time a soft purge made it stale. */
export function purgeState(this: void, purge: NgxSharedDict | undefined, key: string, storedAt: number): LuaMultiReturn<[number, number]> {
  if (purge === undefined) return $multi(0, 0);
  const [kt, kf] = purge.get("m:" + key);
  const [at, af] = purge.get("m:*");
  if (kt === undefined && at === undefined) return $multi(0, 0);
  return purgeDecision(storedAt, kt as number | undefined, kf, at as number | undefined, af);
}

/**
 * Invalidates everything stored for `key` (RFC 9111 4.4, after an unsafe request): a tombstone (or, with
 * Vary, the invalidation time on the Vary index, which retires every variant) and the RAM copy.
 */
export function invalidate(this: void, meta: NgxSharedDict, ram: NgxSharedDict | undefined, key: string): void {
  const now = ngx.now();
  const m = sget(meta, key);
  if (m !== undefined && string.byte(m, 1) === 86) {
    const [rest] = string.match(m, "^V|[^|]*|(.*)$");
    meta.set(key, "V|" + now + "|" + rest);
  } else meta.set(key, "X|" + now, m === undefined ? 86400 : 0); // unknown keys: a bounded tombstone
  if (ram !== undefined) ram.delete(key);
}
