import type { Actions, Policy } from "../../policy/types.js";

/** The origin pools the actions of one rule may send a request to (explicit, geo map and default, image). */
export function poolsOfActions(a: Actions): string[] {
  const out: string[] = [];
  if (a.origin !== undefined) out.push(a.origin);
  if (a.geo) out.push(...Object.values(a.geo.map), a.geo.default);
  if (a.image?.origin !== undefined) out.push(a.image.origin);
  return out;
}

/**
 * Pools the rules engine may route to. When it is not empty, the proxy location sends requests to
 * `$cdn_origin_url` (set per request by the rules, defaulting to the default pool) instead of a fixed
 * upstream.
 */
export function routedPools(policy: Policy): string[] {
  const s = new Set<string>();
  for (const r of policy.rules ?? []) for (const p of poolsOfActions(r.then)) s.add(p);
  return [...s].sort();
}
