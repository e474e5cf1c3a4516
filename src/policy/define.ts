import type { Policy } from "./types.js";

/**
 * Identity function that gives a policy object editor completion and type checking (including unknown
 * properties, which TypeScript reports as errors).
 */
export function definePolicy(policy: Policy): Policy {
  return policy;
}
