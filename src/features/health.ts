import type { Feature } from "./shared/feature.js";
import { error, pointer } from "../validate/diagnostic.js";

/** A health endpoint answered by nginx itself, never proxied, never logged. */
export const health: Feature = {
  name: "health",
  check(policy) {
    if (!policy.health) return [];
    const path = policy.health.path ?? "/health";
    if (path === (policy.purge?.path ?? "/__purge")) {
      return [error("healthPathIsPurgePath", pointer("health", "path"), `"${path}" is also the purge endpoint`, "give the health endpoint another path")];
    }
    return [];
  },
  lower(policy, ir) {
    if (!policy.health) return;
    ir.slots.locations.push({ partial: "health", data: { path: policy.health.path ?? "/health" } });
  },
};
