import { features } from "policy_data";

/**
 * Content handler of the purge endpoint (its location allows only the policy's CIDRs). Purge kinds are
 * not implemented yet: it answers 501 with a JSON body so callers can tell it apart from a missing route.
 */
export function handlePurge(): void {
  const data = features.purge;
  ngx.status = 501;
  ngx.header.set("Cache-Control", "no-store");
  ngx.say(
    data !== undefined && data.enabled
      ? '{"purged":0,"error":"purge by URL, prefix, tag or all is not implemented in this version"}'
      : '{"purged":0,"error":"this policy has no cache"}',
  );
  ngx.exit(501);
}
