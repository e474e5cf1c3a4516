import type { Policy } from "../../policy/types.js";

/**
 * Forwarding and override headers (security issue 11 §3, docs/origins.md#what-the-origin-receives): headers
 * origins read to rebuild the request's host, scheme, port, URL or method (frameworks behind a proxy trust
 * them). They are not part of the cache key, so a client's value, reflected in a cached response (links,
 * redirects, a routed page), would be served to everyone. The edge removes them from every request before
 * the origin, unless the policy lets one through (`headers.allowOverrides`: then its value joins the cache
 * key, or the request bypasses the cache) or sets it itself (`headers.request.set`).
 */
export const OVERRIDE_HEADERS = [
  // host
  "X-Forwarded-Host",
  "X-Host",
  "X-Forwarded-Server",
  "X-Original-Host",
  "X-HTTP-Host-Override",
  "Forwarded",
  // scheme and port
  "X-Forwarded-Scheme",
  "X-Forwarded-Port",
  "X-Forwarded-Ssl",
  "X-Forwarded-Protocol",
  "X-Url-Scheme",
  "Front-End-Https",
  // URL
  "X-Original-URL",
  "X-Rewrite-URL",
  "X-Forwarded-Prefix",
  "X-Forwarded-Path",
  "X-Forwarded-Uri",
  "X-Original-URI",
  "X-Envoy-Original-Path",
  // method
  "X-HTTP-Method-Override",
  "X-HTTP-Method",
  "X-Method-Override",
  "X-Original-Method",
] as const;

const LOWER = new Set(OVERRIDE_HEADERS.map((h) => h.toLowerCase()));

export function isOverrideHeader(name: string): boolean {
  return LOWER.has(name.toLowerCase());
}

/** Override headers removed before the origin: every one the policy neither lets through nor sets itself. */
export function strippedOverrides(policy: Policy): string[] {
  const kept = new Set([...(policy.headers?.allowOverrides ?? []).map((a) => a.header.toLowerCase()), ...Object.keys(policy.headers?.request?.set ?? {}).map((h) => h.toLowerCase())]);
  return OVERRIDE_HEADERS.filter((h) => !kept.has(h.toLowerCase()));
}
