import type { EnvRef } from "./types.js";

/**
 * A value taken from the environment of the nginx master at start, e.g. `secret: env("EDGE_SECRET")`.
 * The bundle only names the variable; the value never reaches the generated files.
 */
export function env(name: string): EnvRef {
  return { env: name };
}
