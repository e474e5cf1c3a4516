/** How the cache key keeps the query string (the cache feature's data; the purge feature carries a copy). */
export interface QueryKeyRule {
  query: "all" | "none" | "allow";
  allow: Record<string, true>;
}

/**
 * The query part of a cache key: parameters filtered by the rule, sorted, re-encoded. One function for the
 * cache (which computes keys) and purge (which must compute the same key from a URL).
 */
export function normaliseArgs(rule: QueryKeyRule, args: LuaTable<string, string | boolean | (string | boolean)[]>): string {
  const keys: string[] = [];
  for (const [k] of pairs(args)) {
    if (rule.query === "all" || rule.allow[k] === true) keys.push(k);
  }
  if (keys.length === 0) return "";
  table.sort(keys);
  const parts: string[] = [];
  for (const k of keys) {
    const ek = ngx.escape_uri(k);
    const v = args.get(k);
    if (typeof v === "object") {
      for (const item of v) parts.push(item === true ? ek : ek + "=" + ngx.escape_uri(item as string));
    } else {
      parts.push(v === true ? ek : ek + "=" + ngx.escape_uri(v as string));
    }
  }
  return table.concat(parts, "&");
}

/** Longest cache key kept as it is (bytes). */
export const MAX_KEY = 2048;
/** Longest Vary signature kept as it is (bytes). */
export const MAX_VARY_SIG = 256;

/**
 * A cache key of at most MAX_KEY bytes: a longer one keeps its first bytes and ends with the MD5 of the
 * whole key (`#md5:<hex>`), so two keys stay apart. nginx writes the key into its cache file header, which
 * must fit `proxy_buffer_size` (one 4 KiB page) with room to spare: a key of about 3.8 KB made nginx log an
 * error on every request for it and not cache it. The cache (requests, invalidation) and purge (keys from
 * URLs) both shorten keys here, so they agree.
 */
export function boundKey(this: void, key: string): string {
  if (key.length <= MAX_KEY) return key;
  return string.sub(key, 1, MAX_KEY - 37) + "#md5:" + ngx.md5(key);
}

/** A Vary signature of at most MAX_VARY_SIG bytes (a longer one, e.g. a whole Cookie header: its MD5). */
export function boundSig(this: void, sig: string): string {
  return sig.length <= MAX_VARY_SIG ? sig : "#md5:" + ngx.md5(sig);
}
