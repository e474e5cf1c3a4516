import { definePolicy, env } from "cdn-build";

/**
 * An edge that only serves traffic relayed by the CDN in front of it, with every access gate, in the order
 * they run: the CDN's shared secret header (from the environment, two accepted during a rotation), IP rules
 * on the client address the CDN reports (its addresses are trusted proxies), rate limits per client address and per signed-in user, a WAF
 * with the built-in rule sets plus two custom rules, a JWT gate on the account area and signed URLs on
 * downloads. Run it with EDGE_SECRET (and, during a rotation, EDGE_SECRET_NEXT), JWT_SECRET and
 * DOWNLOAD_KEY in nginx's environment.
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
    // signed-in users' pages are built for them: never served from the shared cache
    bypass: { cookies: ["session"] },
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

  // the client address (for every gate, the rules and the log) comes from X-Forwarded-For, believed only
  // from the CDN's own addresses
  clientAddress: {
    trustedProxies: ["127.0.0.1", "10.0.0.0/8", "2001:db8:cd::/48"],
    header: "X-Forwarded-For",
  },

  // 2. IP rules on that client address
  ipRules: {
    deny: ["203.0.113.0/24", "198.51.100.66", "2001:db8:bad::/48"],
  },

  // 3. rate limits: per client address everywhere, and per signed-in user
  //    (the `sub` claim of the verified token; anonymous requests fall back to their address)
  rateLimit: [
    { name: "per-client", rate: "50r/s", burst: 100 },
    { name: "per-user", rate: "10r/s", burst: 20, key: { claim: "sub" }, paths: ["/account/*"] },
  ],

  // 4. the WAF, everywhere except the CMS editor, which posts HTML on purpose
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

  // 5. the account area needs a token from the auth service; the user id goes to the origin as a header
  jwt: {
    algorithms: ["HS256"],
    secret: env("JWT_SECRET"),
    issuer: "https://auth.example.com/",
    cookie: "session",
    forwardClaims: { sub: "X-User-Id" },
    paths: ["/account/*"],
  },

  // 6. downloads need a URL signed by the application (`cdn-build sign`), valid until its expiry
  signedUrls: {
    secret: env("DOWNLOAD_KEY"),
    paths: ["/downloads/*"],
  },
});
