import type { LuaFeature } from "../core/feature";
import { compileScope } from "../core/gate-scope";

/**
 * WebSocket paths (policy `websocket`): after the gates, the rules and the client limits, a request on one of them goes on in the
 * named location @cdn_ws (templates/partials/websocket.hbs), which passes the upgrade on and has no cache.
 * The variables the rules set (routing, request headers) carry over.
 */
export const websocket: LuaFeature<"websocket"> = {
  key: "websocket",
  setup(data) {
    const inScope = data.scope === undefined ? undefined : compileScope(data.scope);
    const rules = data.rules;
    return {
      access: {
        websocket: () => {
          if ((inScope !== undefined && inScope()) || (rules && ngx.var.get("cdn_ws_rule") === "1")) ngx.exec("@cdn_ws");
        },
      },
    };
  },
};
