import type { GateScope, Policy } from "../policy/types.js";
import { lowerScope, type ScopeData } from "./gate-scope.js";

/**
 * The scope data of an access gate, with the purge endpoint (and the health endpoint) always excluded.
 * The access hook is set at server level, so nginx also runs it for the purge location (the health
 * location answers in the rewrite phase, before access): gates must skip those paths themselves.
 */
export function gateScopeData(policy: Policy, gate: GateScope): ScopeData {
  const scope: ScopeData = lowerScope(gate) ?? {};
  const except = scope.except ?? { exact: {}, prefix: [], re: [] };
  except.exact[policy.purge?.path ?? "/__purge"] = true;
  if (policy.health) except.exact[policy.health.path ?? "/health"] = true;
  scope.except = except;
  return scope;
}

/** The Lua variable name nginx gives a request header (`$http_x_origin_secret`). */
export function headerVar(name: string): string {
  return "http_" + name.toLowerCase().replace(/-/g, "_");
}
