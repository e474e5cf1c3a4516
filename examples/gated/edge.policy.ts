import { definePolicy, env } from "cdn-build";

/**
 * An edge that only serves traffic relayed by the CDN in front of it, with access gates:
 * the CDN's shared secret header (from the environment, two accepted during a rotation), IP rules with
 * the CDN's addresses as trusted proxies, and a WAF with the built-in rule sets plus two custom rules.
 * Run it with EDGE_SECRET (and, during a rotation, EDGE_SECRET_NEXT) in nginx's environment.
 */
export default definePolicy({
  name: "gated",
  listen: { http: 8080 },
  origins: {
    app: { servers: [{ address: "127.0.0.1:3000" }], keepalive: 32, retries: 1 },
  },
  cache: {
    disk: { size: "1g", keysZone: "50m", inactive: "1d" },
    key: { query: "all" },
    ttl: { "200": "10m", "404": "30s" },
  },
  headers: { response: { remove: ["Server", "X-Powered-By"] }, cacheStatus: "X-Cache" },
  health: { path: "/health" },
  accessLog: { format: "json" },

  // 1. only requests relayed by the CDN carry this header; local health checks may skip it
  originSecret: {
    header: "X-Origin-Secret",
    secrets: [env("EDGE_SECRET"), env("EDGE_SECRET_NEXT")],
    allowLoopback: true,
  },

  // 2. the client address comes from X-Forwarded-For, believed only from the CDN's own addresses
  ipRules: {
    trustedProxies: ["127.0.0.1", "10.0.0.0/8", "2001:db8:cd::/48"],
    deny: ["203.0.113.0/24", "198.51.100.66", "2001:db8:bad::/48"],
    realIpHeader: "X-Forwarded-For",
  },

  // 3. the WAF, everywhere except the CMS editor, which posts HTML on purpose
  waf: {
    mode: "block",
    ruleSets: ["sqli", "xss", "traversal", "shell", "scanners"],
    exceptPaths: ["/cms/editor/*"],
    body: { maxSize: "64k" },
    rules: [
      { id: "no-wp-probes", target: "path", pattern: "^/(wp-admin|wp-login\\.php|xmlrpc\\.php)" },
      { id: "no-spam-referer", target: "header", header: "Referer", pattern: "\\.(casino|loans)\\.example" },
    ],
  },
});
