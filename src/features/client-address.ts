import type { Feature } from "./shared/feature.js";
import type { Cidr, Policy } from "../policy/types.js";
import { error, pointer, warning, type Diagnostic } from "../validate/diagnostic.js";
import { compileRanges, parseBlock } from "../util/ip-ranges.js";
import { headerVar } from "../util/nginx-var.js";

export const DEFAULT_REAL_IP_HEADER = "X-Forwarded-For";

/** The trusted proxies and their header, from `clientAddress` or (the older spelling) `ipRules`. */
function settings(policy: Policy): { trusted: Cidr[]; header: string } | undefined {
  const c = policy.clientAddress;
  if (c) return { trusted: c.trustedProxies, header: c.header ?? DEFAULT_REAL_IP_HEADER };
  const g = policy.ipRules;
  if (g?.trustedProxies?.length) return { trusted: g.trustedProxies, header: g.realIpHeader ?? DEFAULT_REAL_IP_HEADER };
  return undefined;
}

/**
 * The nginx variable holding the client address, for nginx.conf (access log, X-Real-IP): `remote_addr`, or
 * `cdn_client_addr` (set by the runtime's first access handler) behind trusted proxies.
 */
export function clientAddrVar(policy: Policy): "remote_addr" | "cdn_client_addr" {
  return settings(policy)?.trusted.length ? "cdn_client_addr" : "remote_addr";
}

/**
 * The client address (policy `clientAddress`): one decision per request, made by the first access handler
 * (lua-src/core/client-address.ts) and used by every feature.
 */
export const clientAddress: Feature = {
  name: "client-address",
  runtime: { key: "clientAddress", stages: { access: { client: true } } },
  check(policy) {
    const out: Diagnostic[] = [];
    const c = policy.clientAddress;
    if (!c) return out;
    c.trustedProxies.forEach((cidr, i) => {
      const b = parseBlock(cidr);
      const at = pointer("clientAddress", "trustedProxies", i);
      if (!b) out.push(error("clientAddressInvalidProxy", at, `"${cidr}" is not an IPv4/IPv6 address or CIDR block`, 'e.g. "10.0.0.0/8" or "2001:db8::/32"'));
      else if (b.hostBits) out.push(warning("ipRulesHostBits", at, `"${cidr}" has bits set after its prefix length; it is read as the whole block`, "write the network address of the block (e.g. 10.0.0.0/8, not 10.1.2.3/8)"));
    });
    if (c.trustedProxies.length === 0) {
      out.push(warning("clientAddressNoProxies", pointer("clientAddress", "trustedProxies"), "no trusted proxies: the client address is always the peer address", "list the proxies in front of this edge, or remove `clientAddress`"));
    }
    if (policy.ipRules?.trustedProxies !== undefined || policy.ipRules?.realIpHeader !== undefined) {
      out.push(error("clientAddressTwice", pointer("ipRules", policy.ipRules.trustedProxies !== undefined ? "trustedProxies" : "realIpHeader"), "trusted proxies are given twice (in `clientAddress` and in `ipRules`)", "keep them in `clientAddress` only"));
    }
    return out;
  },
  lower(policy, ir) {
    const s = settings(policy);
    if (!s || s.trusted.length === 0) return;
    const header = s.header;
    ir.luaVars.push({ name: "cdn_client_addr", value: "" });
    ir.luaData.clientAddress = { trusted: compileRanges(s.trusted), headerVar: headerVar(header), list: header.toLowerCase() === "x-forwarded-for" };
  },
};
