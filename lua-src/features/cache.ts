import type { LuaFeature } from "../core/feature";
import { features } from "policy_data";

/** Sorted, normalised query string for the cache key; `allow` keeps only listed parameters. */
function normaliseArgs(data: CacheData): string {
  const [args] = ngx.req.get_uri_args(100);
  const keys: string[] = [];
  for (const [k] of pairs(args)) {
    if (data.query === "all" || data.allow.get(k) === true) keys.push(k);
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

/** Access phase: decides bypass and computes the cache key ($cdn_cache_bypass, $cdn_cache_key). */
export const cache: LuaFeature<CacheData> = {
  name: "cache",
  setup(data) {
    const headerVars = data.bypassHeaderVars;
    const cookieVars = data.bypassCookieVars;
    const useArgs = data.query !== "none";
    const rulesKey = features.rules !== undefined && features.rules.keyParts;
    return {
      access: () => {
        const vars = ngx.var;
        let bypass = false;
        for (const name of headerVars) {
          const value = vars.get(name);
          if (value !== undefined && value !== "") {
            bypass = true;
            break;
          }
        }
        if (!bypass) {
          for (const name of cookieVars) {
            if (vars.get(name) !== undefined) {
              bypass = true;
              break;
            }
          }
        }
        if (bypass) vars.set("cdn_cache_bypass", "1");

        const uri = vars.get("request_uri")!;
        const q = string.find(uri, "?", 1, true)[0];
        const path = q === undefined ? uri : string.sub(uri, 1, q - 1);
        let key = data.host ? vars.get("scheme")! + "://" + vars.get("host")! + path : path;
        if (useArgs && vars.get("args") !== undefined) {
          const args = normaliseArgs(data);
          if (args !== "") key = key + "?" + args;
        }
        if (rulesKey) {
          // cache key additions of the rules engine (variant, image format, rule key parts)
          const extra = vars.get("cdn_rules_key");
          if (extra !== undefined && extra !== "") key = key + "#" + extra;
        }
        vars.set("cdn_cache_key", key);
      },
    };
  },
};
