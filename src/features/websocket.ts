import type { Feature } from "./shared/feature.js";
import type { Part } from "../ir/types.js";
import { pointer, warning, type Diagnostic } from "../validate/diagnostic.js";
import { checkDuration } from "../validate/checks.js";
import { durationMs } from "../util/units.js";
import { checkScope, lowerScope } from "./shared/gate-scope.js";

export const WEBSOCKET_DEFAULT_IDLE = "10m";

/** nginx's duration for a policy duration. */
function nginxTime(d: string): string {
  const ms = durationMs(d)!;
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/**
 * The proxy parts of the WebSocket location: those of the proxy location (gate header stripping, origin,
 * request headers...) without the cache, the origin's with the upgrade headers and the idle timeout.
 */
function wsParts(proxy: readonly Part[], idle: string): Part[] {
  return proxy
    .filter((p) => p.partial !== "cache")
    .map((p) => (p.partial === "origins" ? { partial: p.partial, data: { ...(p.data as object), upgrade: true, readTimeout: idle, sendTimeout: idle } } : p));
}

/**
 * WebSocket proxying on the policy's paths: after the gates, the rules and the client limits ran in the proxy location, a
 * request on one of them goes on in the named location @cdn_ws (Lua, stage `websocket`), which passes the
 * upgrade on, has no cache and the WebSocket idle timeout (docs/edge.md#websocket).
 */
export const websocket: Feature = {
  name: "websocket",
  check(policy) {
    const w = policy.websocket;
    if (!w) return [];
    const out: Diagnostic[] = [];
    if (w.paths !== undefined) out.push(...checkScope({ paths: w.paths }, pointer("websocket")));
    else if (!(policy.rules ?? []).some((r) => r.then.websocket === true)) {
      out.push(warning("websocketWithoutEndpoints", pointer("websocket"), "no path and no rule makes a request a WebSocket request: these settings do nothing", 'add `paths: ["/ws/*"]`, or a rule with `then: { websocket: true }`'));
    }
    out.push(...checkDuration(w.idleTimeout, pointer("websocket", "idleTimeout"), { timer: true }));
    return out;
  },
  lower(policy, ir) {
    const w = policy.websocket ?? {};
    const rules = (policy.rules ?? []).some((r) => r.then.websocket === true);
    if (w.paths === undefined && !rules) return;
    const idle = nginxTime(w.idleTimeout ?? WEBSOCKET_DEFAULT_IDLE);
    // lowered last of the features (registry order): the proxy location has all its parts by now
    ir.slots.http.push({ partial: "websocket-map", data: {} });
    ir.slots.locations.push({ partial: "websocket", data: { proxy: wsParts(ir.slots.proxy, idle) } });
    if (rules) ir.luaVars.push({ name: "cdn_ws_rule", value: "" });
    ir.luaData.websocket = { scope: w.paths === undefined ? undefined : lowerScope({ paths: w.paths }), rules };
  },
  runtime: { key: "websocket", stages: { access: { websocket: true } } },
};
