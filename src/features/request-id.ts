import type { Feature } from "./shared/feature.js";
import type { Policy } from "../policy/types.js";
import { headerVar } from "../util/nginx-var.js";

/**
 * The ids accepted from a client: what a log line and a proxy header can carry safely. Written out in
 * templates/partials/request-id.hbs (a constant, not policy input); a test checks the two agree.
 */
export const REQUEST_ID_PATTERN = "^[A-Za-z0-9._:+/=-]{1,128}$";

/** The nginx variable holding the request id: `cdn_request_id` (this feature's map), or nginx's own. */
export function requestIdVar(policy: Policy): "cdn_request_id" | "request_id" {
  return policy.requestId === false ? "request_id" : "cdn_request_id";
}

/**
 * The request id: a valid one from the client, else nginx's `$request_id`, sent to the origin in its header
 * (in every proxying location) and logged (./access-log.ts). No Lua: one map nginx evaluates when the
 * header is sent.
 */
export const requestId: Feature = {
  name: "request-id",
  lower(policy, ir) {
    const r = policy.requestId;
    if (r === false) return;
    const header = r?.header ?? "X-Request-Id";
    ir.slots.http.push({ partial: "request-id", data: { headerVar: headerVar(header), accept: r?.accept ?? true } });
    ir.slots.proxy.push({ partial: "request-id-proxy", data: { header } });
  },
};
