import type { ComputedValue, HeaderSetValue, Policy } from "../../policy/types.js";
import type { HeaderValueData } from "../../contract/index.js";
import type { EdgeIR } from "../../ir/types.js";
import { useEnv } from "../../ir/env.js";
import { headerVar } from "../../util/nginx-var.js";
import { clientAddrVar } from "../client-address.js";
import { requestIdVar } from "../request-id.js";
import { countryVar } from "../rules/conditions.js";

/** True for a value computed per request (or read from the environment), not a fixed string. */
export function isComputed(v: HeaderSetValue): v is ComputedValue {
  return typeof v === "object" && v !== null;
}

/** Bytes a computed value may add, for the bound on what a `set` map adds (checkSetTotal). */
export const COMPUTED_VALUE_BUDGET = 256;

/** The value's length on the wire, for the size bound: a fixed string's, or the budget of a computed one. */
export function valueBytes(v: HeaderSetValue): number {
  return isComputed(v) ? COMPUTED_VALUE_BUDGET : Buffer.byteLength(v);
}

/**
 * A header value as the runtime gets it (lua-src/core/header-value.ts): a fixed string, the nginx variable
 * a computed value is read from, or the environment variable (declared with `env NAME;`).
 */
export function lowerValue(policy: Policy, ir: EdgeIR, v: HeaderSetValue): HeaderValueData {
  if (!isComputed(v)) return v;
  if ("env" in v) return { env: useEnv(ir, v) };
  if ("clientIp" in v) return { var: clientAddrVar(policy) };
  if ("requestId" in v) return { var: requestIdVar(policy) };
  if ("country" in v) return { var: countryVar(v.country === true ? undefined : v.country) };
  if ("arg" in v) return { var: `arg_${v.arg}`, decode: true };
  if ("cookie" in v) return { var: `cookie_${v.cookie}` };
  return { var: headerVar(v.header) };
}

/** A `set` map lowered for the runtime: [name, value] pairs sorted by name. */
export function lowerSet(policy: Policy, ir: EdgeIR, set: Record<string, HeaderSetValue> | undefined): [string, HeaderValueData][] {
  return Object.entries(set ?? {})
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => [k, lowerValue(policy, ir, v)]);
}
