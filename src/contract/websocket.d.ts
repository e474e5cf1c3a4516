import type { ScopeData } from "./gate-scope.js";

/** WebSocket paths (src/features/websocket.ts -> lua-src/features/websocket.ts). */
export interface WebSocketData {
  /** The WebSocket paths: a request there goes on in the named location @cdn_ws (absent: rules only). */
  scope?: ScopeData;
  /** Some rule has the `websocket` action: it sets $cdn_ws_rule. */
  rules: boolean;
}
