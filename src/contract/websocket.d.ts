import type { ScopeData } from "./gate-scope.js";

/** WebSocket paths (src/features/websocket.ts -> lua-src/features/websocket.ts). */
export interface WebSocketData {
  /** The WebSocket paths: a request there goes on in the named location @cdn_ws. */
  scope: ScopeData;
}
