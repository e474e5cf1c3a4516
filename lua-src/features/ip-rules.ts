import type { LuaFeature } from "../core/feature";
import { compileScope } from "../core/gate-scope";
import { refuse } from "../core/gate-deny";
import { clientAddress } from "../core/client-address";
import { compileSet, parseAddr } from "../core/ip";
import { isEdgeRefresh } from "./cache/refresh";

/**
 * IP rules gate.
 *
 * The client address is the one every feature uses (core/client-address.ts: the peer, or what a trusted
 * proxy reports). The cache's own refreshes (stale-while-revalidate) come from the edge's address, not the
 * client's: they replay a request this gate admitted, so they are never refused (checked only on the
 * refusal path).
 *
 * Lists arrive as sorted, merged ranges (core/ip.ts), so a lookup is a binary search: about log2(n)
 * comparisons, whatever the list size. Deny wins over allow; with an allow list, an address outside it (or
 * one that cannot be parsed) is refused.
 */
export const ipRules: LuaFeature<"ipRules"> = {
  key: "ipRules",
  setup(data) {
    const allow = compileSet(data.allow);
    const deny = compileSet(data.deny);
    const inScope = compileScope(data.scope);
    return {
      access: {
        "gate:ip": () => {
          if (!inScope()) return;
          parseAddr(clientAddress());
          if ((deny !== undefined && deny()) || (allow !== undefined && !allow())) {
            if (isEdgeRefresh()) return;
            return refuse(403, "ip-rules");
          }
        },
      },
    };
  },
};
