import type { Feature } from "./shared/feature.js";
import type { Cidr } from "../policy/types.js";
import { error, pointer, warning, type Diagnostic } from "../validate/diagnostic.js";
import { compileRanges, parseBlock } from "../util/ip-ranges.js";
import { checkScope } from "./shared/gate-scope.js";
import { lowerScope } from "./shared/gate-scope.js";

function checkList(list: readonly Cidr[] | undefined, key: string, out: Diagnostic[]): void {
  (list ?? []).forEach((c, i) => {
    const at = pointer("ipRules", key, i);
    const b = parseBlock(c);
    if (!b) {
      out.push(error("ipRulesInvalidBlock", at, `"${c}" is not an IPv4/IPv6 address or CIDR block`, 'e.g. "203.0.113.0/24", "2001:db8::/32" or "192.0.2.7"'));
    } else if (b.hostBits) {
      out.push(warning("ipRulesHostBits", at, `"${c}" has bits set after its prefix length; it is read as the whole block`, "write the network address of the block (e.g. 10.0.0.0/8, not 10.1.2.3/8)"));
    }
  });
}

/**
 * IP rules gate (policy `ipRules`): allow/deny lists and trusted proxies, lowered to sorted, merged ranges
 * (see src/util/ip-ranges.ts) that the Lua side binary-searches.
 */
export const ipRules: Feature = {
  name: "ip-rules",
  runtime: { key: "ipRules", stages: { access: { "gate:ip": true } } },
  check(policy) {
    const g = policy.ipRules;
    if (!g) return [];
    const at = pointer("ipRules");
    const out: Diagnostic[] = [...checkScope(g, at)];
    checkList(g.allow, "allow", out);
    checkList(g.deny, "deny", out);
    checkList(g.trustedProxies, "trustedProxies", out);
    if (g.allow !== undefined && g.allow.length === 0) {
      out.push(error("ipRulesEmptyAllow", pointer("ipRules", "allow"), "an empty allow list would refuse every client", "list the allowed blocks, or remove `allow` to allow everyone not denied"));
    }
    if (!g.allow?.length && !g.deny?.length && !g.trustedProxies?.length) {
      out.push(warning("ipRulesNoLists", at, "the IP rules gate has no allow, deny or trusted proxy list, so it does nothing", "add `deny` or `allow` blocks"));
    }
    if (g.realIpHeader !== undefined && !g.trustedProxies?.length) {
      out.push(warning("ipRulesRealIpUntrusted", pointer("ipRules", "realIpHeader"), `${g.realIpHeader} is never read without trusted proxies (a client could forge it)`, "list the proxies in front of this edge in `trustedProxies`"));
    }
    return out;
  },
  lower(policy, ir) {
    const g = policy.ipRules;
    if (!g) return;
    // trusted proxies and the real-IP header feed the one client address (./client-address.ts)
    ir.luaData.ipRules = {
      allow: g.allow?.length ? compileRanges(g.allow) : undefined,
      deny: g.deny?.length ? compileRanges(g.deny) : undefined,
      scope: lowerScope(g),
    };
  },
};
