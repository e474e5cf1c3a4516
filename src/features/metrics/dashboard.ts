/**
 * The Grafana dashboard the bundle ships (`grafana/cdn-build.json`): importable as is (Dashboards > New >
 * Import, then pick a Prometheus data source). Every query reads only the metric families of the contract
 * (`MetricName`); test/features/metrics.test.ts parses the queries with the PromQL grammar and checks each
 * name against a real scrape of a bundle.
 */
import type { MetricName } from "../../contract/index.js";

/** A PromQL selector of a family on the chosen instances: `m("cdn_requests_total", 'cache="HIT"')`. */
function m(name: MetricName | `${MetricName}_${"bucket" | "sum" | "count"}`, matchers = ""): string {
  return `${name}{instance=~"$instance"${matchers ? "," + matchers : ""}}`;
}

const RANGE = "$__rate_interval";
const rate = (sel: string) => `rate(${sel}[${RANGE}])`;

const HIT = `sum(${rate(m("cdn_cache_hits_total"))})`;
const MISS = `sum(${rate(m("cdn_requests_total", 'cache=~"MISS|EXPIRED|BYPASS"'))})`;

interface Target {
  expr: string;
  legend: string;
}

interface PanelSpec {
  title: string;
  type: "timeseries" | "stat";
  unit: string;
  targets: Target[];
  w: number;
  h: number;
  description: string;
  max?: number;
}

const PANELS: PanelSpec[] = [
  {
    title: "Cache hit ratio",
    type: "stat",
    unit: "percentunit",
    w: 6,
    h: 6,
    max: 1,
    description: "Responses served from a cache tier (RAM or disk) over cache lookups (hits + MISS, EXPIRED, BYPASS).",
    targets: [{ expr: `${HIT} / (${HIT} + ${MISS})`, legend: "hit ratio" }],
  },
  {
    title: "Bandwidth saved",
    type: "stat",
    unit: "Bps",
    w: 6,
    h: 6,
    description: "Bytes sent to clients minus bytes received from origins, per second.",
    targets: [{ expr: `sum(${rate(m("cdn_sent_bytes_total"))}) - sum(${rate(m("cdn_origin_received_bytes_total"))})`, legend: "saved" }],
  },
  {
    title: "Error rate (5xx)",
    type: "stat",
    unit: "percentunit",
    w: 6,
    h: 6,
    description: "Share of responses with a 5xx status.",
    targets: [{ expr: `sum(${rate(m("cdn_requests_total", 'status="5xx"'))}) / sum(${rate(m("cdn_requests_total"))})`, legend: "5xx" }],
  },
  {
    title: "Requests per second",
    type: "stat",
    unit: "reqps",
    w: 6,
    h: 6,
    description: "Requests answered by the edge (the metrics endpoints excluded).",
    targets: [{ expr: `sum(${rate(m("cdn_requests_total"))})`, legend: "req/s" }],
  },
  {
    title: "Requests by cache status",
    type: "timeseries",
    unit: "reqps",
    w: 12,
    h: 8,
    description: "HIT, HIT-RAM, MISS, BYPASS... NONE: no cache decision (a gate refused, a POST, an endpoint).",
    targets: [{ expr: `sum by (cache) (${rate(m("cdn_requests_total"))})`, legend: "{{cache}}" }],
  },
  {
    title: "Hit ratio and tiers",
    type: "timeseries",
    unit: "reqps",
    w: 12,
    h: 8,
    description: "Hits served by the RAM tier and by the disk tier.",
    targets: [{ expr: `sum by (tier) (${rate(m("cdn_cache_hits_total"))})`, legend: "{{tier}}" }],
  },
  {
    title: "Bandwidth",
    type: "timeseries",
    unit: "Bps",
    w: 12,
    h: 8,
    description: "Sent to clients, received from origins, and the difference (saved).",
    targets: [
      { expr: `sum(${rate(m("cdn_sent_bytes_total"))})`, legend: "sent to clients" },
      { expr: `sum(${rate(m("cdn_origin_received_bytes_total"))})`, legend: "from origins" },
      { expr: `sum(${rate(m("cdn_sent_bytes_total"))}) - sum(${rate(m("cdn_origin_received_bytes_total"))})`, legend: "saved" },
    ],
  },
  {
    title: "Origin latency p50 / p99",
    type: "timeseries",
    unit: "s",
    w: 12,
    h: 8,
    description: "Estimated from the origin response time histogram (each attempt), by pool.",
    targets: [
      { expr: `histogram_quantile(0.5, sum by (le, pool) (${rate(m("cdn_origin_response_seconds_bucket"))}))`, legend: "p50 {{pool}}" },
      { expr: `histogram_quantile(0.99, sum by (le, pool) (${rate(m("cdn_origin_response_seconds_bucket"))}))`, legend: "p99 {{pool}}" },
    ],
  },
  {
    title: "Edge latency p50 / p99",
    type: "timeseries",
    unit: "s",
    w: 12,
    h: 8,
    description: "Estimated from the edge response time histogram ($request_time).",
    targets: [
      { expr: `histogram_quantile(0.5, sum by (le) (${rate(m("cdn_edge_response_seconds_bucket"))}))`, legend: "p50" },
      { expr: `histogram_quantile(0.99, sum by (le) (${rate(m("cdn_edge_response_seconds_bucket"))}))`, legend: "p99" },
    ],
  },
  {
    title: "Origin requests by pool",
    type: "timeseries",
    unit: "reqps",
    w: 12,
    h: 8,
    description: "Requests sent to origins (retries count).",
    targets: [{ expr: `sum by (pool) (${rate(m("cdn_origin_requests_total"))})`, legend: "{{pool}}" }],
  },
  {
    title: "Errors by status class",
    type: "timeseries",
    unit: "percentunit",
    w: 12,
    h: 8,
    description: "Share of 4xx and 5xx responses.",
    targets: [{ expr: `sum by (status) (${rate(m("cdn_requests_total", 'status=~"4xx|5xx"'))}) / ignoring(status) group_left sum(${rate(m("cdn_requests_total"))})`, legend: "{{status}}" }],
  },
  {
    title: "Gate refusals",
    type: "timeseries",
    unit: "reqps",
    w: 12,
    h: 8,
    description: "Requests refused by an access gate, by gate and reason; WAF matches by rule; rate-limit decisions.",
    targets: [
      { expr: `sum by (gate, reason) (${rate(m("cdn_gate_refusals_total"))})`, legend: "{{gate}}: {{reason}}" },
      { expr: `sum by (rule, action) (${rate(m("cdn_waf_matches_total"))})`, legend: "WAF {{rule}} ({{action}})" },
      { expr: `sum by (limit, decision) (${rate(m("cdn_ratelimit_decisions_total"))})`, legend: "rate limit {{limit}}: {{decision}}" },
    ],
  },
  {
    title: "Purge activity",
    type: "timeseries",
    unit: "short",
    w: 12,
    h: 8,
    description: "Purge items applied (by kind and source) and cache keys purged, per interval.",
    targets: [
      { expr: `sum by (kind, source) (increase(${m("cdn_purges_total")}[${RANGE}]))`, legend: "{{kind}} ({{source}})" },
      { expr: `sum(increase(${m("cdn_purged_objects_total")}[${RANGE}]))`, legend: "objects purged" },
    ],
  },
  {
    title: "Shared memory fill",
    type: "timeseries",
    unit: "percentunit",
    w: 12,
    h: 8,
    max: 1,
    description: "Used share of each shared dict: cdn_meta (cache metadata, ~2x the keys zone), cdn_ram (RAM tier), cdn_purge (purge index), cdn_metrics.",
    targets: [{ expr: `1 - max by (dict) (${m("cdn_shared_dict_free_bytes")}) / max by (dict) (${m("cdn_shared_dict_capacity_bytes")})`, legend: "{{dict}}" }],
  },
  {
    title: "Redis errors",
    type: "timeseries",
    unit: "short",
    w: 12,
    h: 8,
    description: "Failed Redis connections (cluster rate limits, purge fan-out), by kind.",
    targets: [{ expr: `sum by (kind) (increase(${m("cdn_redis_errors_total")}[${RANGE}]))`, legend: "{{kind}}" }],
  },
];

/** The dashboard as Grafana's import format (stable key order: the bundle is deterministic). */
export function grafanaDashboard(policyName: string): string {
  let x = 0;
  let y = 0;
  let rowH = 0;
  const panels = PANELS.map((p, i) => {
    if (x + p.w > 24) {
      x = 0;
      y += rowH;
      rowH = 0;
    }
    const gridPos = { h: p.h, w: p.w, x, y };
    x += p.w;
    rowH = Math.max(rowH, p.h);
    return {
      id: i + 1,
      type: p.type,
      title: p.title,
      description: p.description,
      datasource: { type: "prometheus", uid: "${DS_PROMETHEUS}" },
      gridPos,
      fieldConfig: { defaults: { unit: p.unit, ...(p.max !== undefined ? { min: 0, max: p.max } : {}) }, overrides: [] },
      options: p.type === "stat" ? { reduceOptions: { calcs: ["lastNotNull"], fields: "", values: false }, colorMode: "value", graphMode: "area" } : { legend: { displayMode: "list", placement: "bottom" }, tooltip: { mode: "multi" } },
      targets: p.targets.map((t, j) => ({ refId: String.fromCharCode(65 + j), expr: t.expr, legendFormat: t.legend, datasource: { type: "prometheus", uid: "${DS_PROMETHEUS}" } })),
    };
  });
  const dashboard = {
    __inputs: [{ name: "DS_PROMETHEUS", label: "Prometheus", description: "The Prometheus that scrapes the edges' /metrics", type: "datasource", pluginId: "prometheus", pluginName: "Prometheus" }],
    __requires: [
      { type: "grafana", id: "grafana", name: "Grafana", version: "9.0.0" },
      { type: "datasource", id: "prometheus", name: "Prometheus", version: "1.0.0" },
      { type: "panel", id: "timeseries", name: "Time series", version: "" },
      { type: "panel", id: "stat", name: "Stat", version: "" },
    ],
    title: `cdn-build edge: ${policyName}`,
    uid: `cdn-build-${policyName}`.slice(0, 40),
    description: "Generated by cdn-build from the policy's metrics (docs/metrics.md).",
    tags: ["cdn-build"],
    editable: true,
    schemaVersion: 39,
    version: 1,
    time: { from: "now-6h", to: "now" },
    refresh: "30s",
    timezone: "",
    templating: {
      list: [
        {
          name: "instance",
          label: "Edge",
          type: "query",
          datasource: { type: "prometheus", uid: "${DS_PROMETHEUS}" },
          query: { query: `label_values(cdn_build_info{policy="${policyName}"}, instance)`, refId: "instance" },
          definition: `label_values(cdn_build_info{policy="${policyName}"}, instance)`,
          includeAll: true,
          multi: true,
          allValue: ".*",
          current: { selected: true, text: ["All"], value: ["$__all"] },
          refresh: 2,
          sort: 1,
        },
      ],
    },
    annotations: { list: [] },
    panels,
  };
  return JSON.stringify(dashboard, null, 2) + "\n";
}
