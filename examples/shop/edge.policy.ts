import { definePolicy } from "cdn-build";

/** A shop behind one edge: an app pool with a backup server, a disk cache, header hygiene, JSON logs. */
export default definePolicy({
  name: "shop",
  listen: { http: 8080 },
  origins: {
    app: {
      servers: [
        { address: "127.0.0.1:3000", weight: 3 },
        { address: "127.0.0.1:3001", backup: true },
      ],
      keepalive: 64,
      connectTimeout: "2s",
      readTimeout: "30s",
      retries: 1,
    },
  },
  cache: {
    disk: { size: "10g", keysZone: "100m", inactive: "7d" },
    key: { query: "all" },
    ttl: { "200": "1h", "301": "10m", "404": "30s" },
    bypass: { cookies: ["session"], headers: ["x-preview"] },
    staleIfError: "1d",
    staleWhileRevalidate: "60s",
    lock: { timeout: "5s" },
    // small hot objects (CSS, JS, JSON, icons) served from shared memory before the disk is consulted
    ram: { size: "256m", maxObjectSize: "64k", minHits: 2 },
  },
  headers: {
    response: { set: { "X-Served-By": "edge" }, remove: ["Server", "X-Powered-By"] },
    cacheStatus: "X-Cache",
  },
  health: { path: "/health" },
  accessLog: { format: "json" },
  // Prometheus at /metrics and the stats API at /__stats, for the local machine and the monitoring network
  // (docs/metrics.md); the bundle also carries a Grafana dashboard, grafana/cdn-build.json
  metrics: { allow: ["127.0.0.1/32", "::1/128", "10.0.0.0/8"] },
});
