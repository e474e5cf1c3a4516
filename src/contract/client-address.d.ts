import type { HeaderVar } from "./names.js";
import type { IpRangeSetData } from "./ip.js";

/**
 * How the edge finds the client's address (lua-src/core/client-address.ts): the peer address, unless the
 * peer is a trusted proxy, then the address the proxy reports in `headerVar`.
 */
export interface ClientAddressData {
  trusted: IpRangeSetData;
  /** nginx variable of the real-IP header. */
  headerVar: HeaderVar;
  /** The header is an X-Forwarded-For style list (walked right to left). */
  list: boolean;
}
