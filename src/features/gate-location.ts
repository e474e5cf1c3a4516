import type { EdgeIR } from "../ir/types.js";

/**
 * Marks requests of the proxy location (`location /`) with `$cdn_gate_on = 1`, so access gates run on
 * proxied traffic only: the purge endpoint inherits the server's access handler but never sets the mark,
 * and the health endpoint answers in the rewrite phase before any gate. Idempotent: every gate calls it.
 */
export function markGatedLocation(ir: EdgeIR): void {
  if (ir.luaVars.some((v) => v.name === "cdn_gate_on")) return;
  ir.luaVars.push({ name: "cdn_gate_on", value: "" });
  ir.slots.proxy.push({ partial: "gate-on", data: {} });
}
