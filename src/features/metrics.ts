import type { Feature } from "./shared/feature.js";
import type { Policy } from "../policy/types.js";
import type { MetricsData } from "../contract/index.js";
import { error, pointer, warning, type Diagnostic } from "../validate/diagnostic.js";
import { checkCidr, checkSize } from "../validate/checks.js";
import { shmSize } from "../util/units.js";
import { healthPath } from "./health.js";
import { defaultOriginName } from "./origins.js";
import { routedPools } from "./rules/routing.js";
import { poolTarget } from "./rules.js";
import { grafanaDashboard } from "./metrics/dashboard.js";

export const DEFAULT_METRICS_ALLOW = ["127.0.0.1/32", "::1/128"];
/** Upper bounds (seconds) of the edge response time histogram: hits take well under a millisecond. */
export const EDGE_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Upper bounds (seconds) of the origin response time histogram. */
export const ORIGIN_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** The paths of the metrics and stats endpoints, or undefined when the policy has no `metrics`. */
export function metricsPaths(policy: Policy): { metrics: string; stats: string } | undefined {
  const m = policy.metrics;
  return m ? { metrics: m.path ?? "/metrics", stats: m.statsPath ?? "/__stats" } : undefined;
}

/**
 * Prometheus metrics (`/metrics`) and the stats API (`/__stats`): two locations answered by Lua from the
 * `cdn_metrics` shared dict, restricted to an address allow-list (nginx `allow` / `deny`, like the purge
 * endpoint), never proxied, cached or counted; the log phase counts every other request
 * (lua-src/features/metrics.ts).
 */
export const metrics: Feature = {
  name: "metrics",
  runtime: { key: "metrics", stages: { log: { metrics: true }, initWorker: { metrics: true } } },
  check(policy) {
    const m = policy.metrics;
    const paths = metricsPaths(policy);
    if (!m || !paths) return [];
    const out: Diagnostic[] = [];
    const taken: [string, string][] = [];
    const health = healthPath(policy);
    if (health !== undefined) taken.push([health, "the health endpoint"]);
    if (policy.purge !== undefined) taken.push([policy.purge.path ?? "/__purge", "the purge endpoint"]);
    const clash = (key: "path" | "statsPath", path: string, others: [string, string][]) => {
      if (path === "/") {
        out.push(error("metricsPathClash", pointer("metrics", key), `the ${key === "path" ? "metrics" : "stats"} endpoint on / would answer the site's home page`, key === "path" ? 'use e.g. "/metrics"' : 'use e.g. "/__stats"'));
        return;
      }
      const hit = others.find(([p]) => p === path);
      if (hit) out.push(error("metricsPathClash", pointer("metrics", key), `"${path}" is also ${hit[1]}`, "give each endpoint a path of its own"));
    };
    clash("path", paths.metrics, taken);
    clash("statsPath", paths.stats, [...taken, [paths.metrics, "the metrics endpoint"]]);
    (m.allow ?? []).forEach((c, i) => {
      const bad = checkCidr(c, pointer("metrics", "allow", i));
      out.push(...bad);
      const bits = Number(c.split("/")[1] ?? "128");
      if (bad.length === 0 && bits < 8) {
        out.push(warning("metricsAllowBroad", pointer("metrics", "allow", i), `"${c}" opens the metrics and stats endpoints to /${bits} of the address space`, 'allow only your scrapers, e.g. ["10.0.0.0/8"]'));
      }
    });
    out.push(...checkSize(m.size, pointer("metrics", "size"), { min: 256 * 1024, minText: '"256k"', max: 1024 * 1024 * 1024, maxText: '"1g"' }));
    return out;
  },
  lower(policy, ir) {
    const m = policy.metrics;
    const paths = metricsPaths(policy);
    if (!m || !paths) return;
    ir.sharedDicts.push({ name: "cdn_metrics", size: shmSize(m.size ?? "4m") });
    const allow = m.allow ?? DEFAULT_METRICS_ALLOW;
    const part = { partial: "metrics", data: { metrics: paths.metrics, stats: paths.stats, allow } };
    ir.slots.locations.push(part);
    // answered for any host (Prometheus scrapes nodes by address), also when unknown hosts are refused
    ir.slots.anyHost.push(part);
    const names = (policy.serverNames ?? []).map((n) => n.toLowerCase());
    const hosts = [...new Set(names.filter((n) => !n.includes("*")))].sort();
    const wildcards = [...new Set(names.filter((n) => n.includes("*")))].sort();
    const readHost = hosts.length + wildcards.length > 1 || wildcards.length > 0;
    const routed = routedPools(policy);
    const def = defaultOriginName(policy)!;
    const data: MetricsData = {
      dict: "cdn_metrics",
      hosts,
      wildcards,
      readHost,
      fixedHost: !readHost && hosts.length === 1 ? hosts[0]! : "other",
      defaultPool: def,
      cache: policy.cache !== undefined,
      edgeBuckets: EDGE_BUCKETS,
      originBuckets: ORIGIN_BUCKETS,
      name: policy.name,
    };
    if (policy.redis !== undefined) data.redisPrefix = `cdn-build:stats:${policy.name}`;
    if (routed.length > 0) {
      data.routedUrls = Object.fromEntries([...new Set([def, ...routed])].sort().map((p) => [poolTarget(policy, p).url, p]));
    }
    ir.luaData.metrics = data;
    ir.files.push({ path: "grafana/cdn-build.json", text: grafanaDashboard(policy.name) });
  },
};
