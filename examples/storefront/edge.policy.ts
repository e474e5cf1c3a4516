import { definePolicy } from "cdn-build";

/**
 * A storefront edge with the rules engine: an API pool, an imgproxy-style image service, a pre-render
 * service for crawlers, regional app pools picked by country, an A/B test on the home page, redirects of
 * retired URLs and an admin area closed to the outside.
 */
export default definePolicy({
  name: "storefront",
  listen: { http: 8080 },
  origins: {
    eu: { servers: [{ address: "127.0.0.1:3000" }] },
    us: { servers: [{ address: "127.0.0.1:3001" }] },
    api: { servers: [{ address: "127.0.0.1:3002" }], hostHeader: "api.internal" },
    images: { servers: [{ address: "127.0.0.1:3003" }] },
    prerender: { servers: [{ address: "127.0.0.1:3004" }] },
  },
  defaultOrigin: "eu",
  cache: {
    key: { query: "all" },
    ttl: { "200": "10m", "404": "30s" },
    bypass: { cookies: ["session"] },
  },
  headers: { cacheStatus: "X-Cache", response: { remove: ["X-Powered-By"] } },
  health: { path: "/health" },
  // gzip for text types; OpenResty has no brotli module (build with --target nginx-lua and drop
  // `brotli: false` to offer brotli too)
  compression: { brotli: false },
  // slow clients are closed quickly; bodies up to 1m except the uploads rule below
  client: { maxBodySize: "1m", connectionsPerAddress: 200 },
  // the live order-status feed
  websocket: { paths: ["/live/*"], idleTimeout: "5m" },
  rules: [
    { name: "admin-office-only", when: { path: { prefix: "/admin/" }, not: { clientIp: ["10.0.0.0/8"] } }, then: { deny: true } },
    { name: "retired-sale", when: { path: "/sale-2023" }, then: { redirect: { to: "/sale", status: 301 } } },
    { name: "maintenance-probe", when: { path: "/ping", method: ["GET", "HEAD"] }, then: { respond: { status: 200, body: "pong" } } },
    { name: "uploads", when: { path: { prefix: "/api/uploads/" }, method: ["POST", "PUT"] }, then: { maxBodySize: "50m" }, continue: true },
    { name: "api", when: { path: { prefix: "/api/" } }, then: { origin: "api", rewrite: { stripPrefix: "/api" }, cache: { bypass: true } } },
    { name: "crawlers", when: { userAgent: ["googlebot", "bingbot", "duckduckbot"], method: ["GET"] }, then: { origin: "prerender" } },
    {
      name: "images",
      when: { path: { prefix: "/img/" }, extension: ["jpg", "jpeg", "png"] },
      then: { image: { origin: "images", url: "/insecure/rs:fit:{width}:0/plain{path}@{format}", widths: [320, 640, 1280, 1920] }, cache: { ttl: "7d" } },
    },
    {
      name: "static-assets",
      when: { path: "/assets/*" },
      then: { cache: { ttl: "30d" }, responseHeaders: { set: { "Cache-Control": "public, max-age=31536000, immutable" } } },
    },
    {
      name: "home-test",
      when: { path: "/" },
      then: { experiment: { name: "home", variants: [{ name: "classic", weight: 80 }, { name: "hero", weight: 20 }], cacheKey: true } },
      continue: true,
    },
    { name: "regional-app", then: { geo: { map: { US: "us", CA: "us", MX: "us" }, default: "eu" } } },
  ],
});
