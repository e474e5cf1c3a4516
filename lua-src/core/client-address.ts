import { features } from "./policy";

/**
 * The client address of the current request, one decision for every feature: the peer address, unless the
 * policy trusts proxies (`clientAddress`); then the client-address feature's first access handler decides
 * it once (features/client-address.ts) and leaves it in ngx.ctx and $cdn_client_addr.
 */
const behindProxies = features.clientAddress !== undefined;

export function clientAddress(this: void): string {
  if (behindProxies) {
    const a = ngx.ctx.get("cdn_client_ip") as string | undefined;
    if (a !== undefined) return a;
  }
  return ngx.var.get("remote_addr") ?? "";
}
