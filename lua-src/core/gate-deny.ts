import { countRefusal } from "./metrics";

/**
 * How the access gates refuse a request: the status, a plain-text body naming the gate (so an operator can
 * tell which gate refused), `Cache-Control: no-store`, and the end of the request. Counted in the metrics
 * (`cdn_gate_refusals_total`).
 */
export function refuse(status: number, gate: string): never {
  countRefusal(gate, status === 410 ? "expired" : "denied");
  ngx.status = status;
  ngx.header.set("Content-Type", "text/plain");
  ngx.header.set("Cache-Control", "no-store");
  ngx.say("forbidden by ", gate);
  return ngx.exit(ngx.HTTP_OK);
}
