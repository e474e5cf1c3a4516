import type { LuaFeature } from "../core/feature";
import { compileSet, ip, parseAddr, parseHop } from "../core/ip";

/**
 * The client address behind trusted proxies (policy `clientAddress`; core/client-address.ts reads it).
 *
 * The peer address ($remote_addr) is the client, unless the peer is a trusted proxy: then the client is what
 * the proxy reports in the real-IP header. For X-Forwarded-For (a list) the hops are walked from the right,
 * skipping trusted proxies; the first untrusted hop is the client. A hop that is not an address ends the
 * walk at the last address we could trust. From an untrusted peer the header is ignored (it can be forged).
 * Runs first in the access phase; publishes the result as ngx.ctx.cdn_client_ip and $cdn_client_addr (for
 * the access log and X-Real-IP).
 */

export const clientAddress: LuaFeature<"clientAddress"> = {
  key: "clientAddress",
  setup(data) {
    const trusted = compileSet(data.trusted)!;
    const headerVar = data.headerVar;
    const list = data.list;

    const decide = (peer: string): string => {
      parseAddr(peer);
      if (!trusted()) return peer;
      const value = ngx.var.get(headerVar);
      if (value === undefined || value === "") return peer;
      if (!list) {
        const v = parseHop(value, 1, value.length);
        return ip.family !== 0 ? v : peer;
      }
      // right to left over the comma-separated hops, without building a list
      let client = peer;
      let to = value.length;
      while (to >= 1) {
        let from = to;
        while (from >= 1 && string.byte(value, from) !== 44) from--;
        const hop = parseHop(value, from + 1, to);
        if (ip.family === 0) break; // not an address: keep the last address we could trust
        client = hop;
        if (!trusted()) break;
        to = from - 1;
      }
      return client;
    };

    return {
      access: {
        client: () => {
          const client = decide(ngx.var.get("remote_addr") ?? "");
          ngx.ctx.set("cdn_client_ip", client);
          ngx.var.set("cdn_client_addr", client);
        },
      },
    };
  },
};
