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
