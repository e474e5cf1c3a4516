import type { Feature } from "./shared/feature.js";
import type { Policy } from "../policy/types.js";
import { error, pointer } from "../validate/diagnostic.js";

/** The path of the policy's health endpoint, or undefined when it has none. */
export function healthPath(policy: Policy): string | undefined {
  return policy.health ? (policy.health.path ?? "/health") : undefined;
}

/** A health endpoint answered by nginx itself, never proxied, never logged. */
export const health: Feature = {
  name: "health",
  check(policy) {
    const path = healthPath(policy);
    if (path === undefined) return [];
    if (path === "/") {
      return [error("endpointOnRoot", pointer("health", "path"), "the health endpoint on / would answer the site's home page with ok", 'use e.g. "/health"')];
    }
    if (path === (policy.purge?.path ?? "/__purge")) {
      return [error("healthPathIsPurgePath", pointer("health", "path"), `"${path}" is also the purge endpoint`, "give the health endpoint another path")];
    }
    return [];
  },
  lower(policy, ir) {
    const path = healthPath(policy);
    if (path === undefined) return;
    ir.slots.locations.push({ partial: "health", data: { path } });
    // answered for any host (health checks by IP), also when unknown hosts are refused
    ir.slots.anyHost.push({ partial: "health", data: { path } });
  },
};
