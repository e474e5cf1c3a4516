import type { LuaFeature } from "../core/feature";
import { ramHitLabel } from "./cache/ram";
import { diskHitLabel } from "./cache/hit";
import { prepareSet, valueNow } from "../core/header-value";

/**
 * Request header changes (access phase) and response header changes plus the cache status header
 * (header filter, which nginx runs for every response, its own error pages included).
 */
export const headers: LuaFeature<"headers"> = {
  key: "headers",
  setup(data) {
    const reqSet = prepareSet(data.request.set, "headers");
    const reqRemove = data.request.remove;
    const resSet = prepareSet(data.response.set, "headers");
    const resRemove = data.response.remove;
    const cacheStatus = data.cacheStatus;
    const access = () => {
      for (const name of reqRemove) ngx.req.clear_header(name);
      for (const [name, v] of reqSet) {
        const value = valueNow(v);
        if (value !== undefined) ngx.req.set_header(name, value);
        else ngx.req.clear_header(name);
      }
    };
    const header = () => {
      const h = ngx.header;
      for (const name of resRemove) h.set(name, undefined);
      for (const [name, v] of resSet) h.set(name, valueNow(v));
      if (cacheStatus !== undefined) {
        // the cache feature's label (tier-aware: HIT-RAM, STALE-RAM) when it has one, else nginx's
        let status = ramHitLabel() ?? diskHitLabel() ?? ngx.var.get("cdn_cache_status");
        if (status === undefined || status === "") status = ngx.var.get("upstream_cache_status");
        if (status !== undefined && status !== "") h.set(cacheStatus, status);
      }
    };
    return { access: { headers: access }, header: { headers: header } };
  },
};
