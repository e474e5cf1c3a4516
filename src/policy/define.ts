import type { Policy } from "./types.js";

/** Identity function that gives a policy object editor completion and type checking. */
export function definePolicy<const P extends Policy>(policy: P): P {
  return policy;
}
