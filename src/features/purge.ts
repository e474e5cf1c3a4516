import type { Feature } from "./feature.js";
import { pointer, type Diagnostic } from "../validate/diagnostic.js";
import { checkCidr } from "../validate/checks.js";

export const DEFAULT_PURGE_ALLOW = ["127.0.0.1/32", "::1/128"];

/**
 * The purge endpoint: a location served by the `purge` Lua hook, restricted to an address allow-list and
 * never proxied or cached. Purge kinds (URL, prefix, tag, all) are filled in by the cache purge work.
 */
export const purge: Feature = {
  name: "purge",
  check(policy) {
    const out: Diagnostic[] = [];
    (policy.purge?.allow ?? []).forEach((c, i) => out.push(...checkCidr(c, pointer("purge", "allow", i))));
    return out;
  },
  lower(policy, ir) {
    const p = policy.purge ?? {};
    ir.slots.locations.push({ partial: "purge", data: { path: p.path ?? "/__purge", allow: p.allow ?? DEFAULT_PURGE_ALLOW } });
    ir.luaData.purge = { enabled: policy.cache !== undefined };
  },
};
