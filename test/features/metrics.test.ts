/** Metrics: /metrics (Prometheus text) and /__stats (JSON) over HTTP in a real nginx, plus validation. */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Agent, request } from "undici";
import parsePrometheusTextFormat, { type PromFamily } from "parse-prometheus-text-format";
import { bootEdge, type Edge } from "../support/edge.js";
import { startMockOrigin, type MockOrigin } from "../support/mock-origin.js";
import { http, luaErrors } from "../support/http.js";
import { sleep, waitFor } from "../support/wait.js";
import { codes, policy } from "../support/policy.js";
import { compile } from "../../src/compile.js";
import { freePort } from "../../src/runtime/nginx.js";
import { startRedis, type RedisServer } from "../support/redis.js";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parser as promql } from "@prometheus-io/lezer-promql";
import { METRIC_NAMES } from "../../src/ir/names.js";

/** The metric names a PromQL expression selects (parsed with Prometheus' own PromQL grammar). */
function metricNames(expr: string): string[] {
  // Grafana's interval variable is not PromQL
  const text = expr.replaceAll("$__rate_interval", "5m");
  const names: string[] = [];
  let broken = false;
  promql.parse(text).iterate({
    enter(n) {
      if (n.type.isError) broken = true;
      if (n.name === "Identifier" && n.node.parent?.name === "VectorSelector") names.push(text.slice(n.from, n.to));
    },
  });
  if (broken) throw new Error(`not PromQL: ${expr}`);
  return names;
}

const TOKEN = "metrics-test-purge-token";

/** The value of one series (labels matched exactly), or undefined when the edge has not shown it. */
export function sample(families: PromFamily[], name: string, labels: Record<string, string> = {}): number | undefined {
  const f = families.find((x) => x.name === name);
  const m = f?.metrics.find((s) => JSON.stringify(Object.entries(s.labels ?? {}).sort()) === JSON.stringify(Object.entries(labels).sort()));
  return m?.value === undefined ? undefined : Number(m.value);
}

/** The sum of every series of a family whose labels include `labels`. */
export function total(families: PromFamily[], name: string, labels: Record<string, string> = {}): number {
  const f = families.find((x) => x.name === name);
  return (f?.metrics ?? []).filter((s) => Object.entries(labels).every(([k, v]) => s.labels?.[k] === v)).reduce((a, s) => a + Number(s.value ?? s.count ?? 0), 0);
}

/** How many requests the edge counted (the edge latency histogram sees each one). */
function counted(families: PromFamily[]): number {
  const h = families.find((x) => x.name === "cdn_edge_response_seconds");
  return Number(h?.metrics[0]?.count ?? 0);
}

export async function scrape(edge: { baseUrl: string }, path = "/metrics"): Promise<{ text: string; families: PromFamily[] }> {
  const r = await http(edge, path);
  expect(r.status).toBe(200);
  return { text: r.body, families: parsePrometheusTextFormat(r.body) };
}

/** Polls /metrics until `n` requests are counted (the log phase runs as a response finishes), bounded. */
async function settled(edge: { baseUrl: string }, n: number): Promise<{ text: string; families: PromFamily[] }> {
  let last: { text: string; families: PromFamily[] } | undefined;
  await waitFor(
    async () => {
      last = await scrape(edge);
      return counted(last.families) >= n;
    },
    { timeout: 5000, what: `${n} requests counted in /metrics` },
  );
  const s = last!;
  expect(counted(s.families)).toBe(n);
  return s;
}

describe("metrics: validation", () => {
  const base = (extra: object) => policy("127.0.0.1:3000", { name: "m", ...extra });
  it("accepts the defaults and lowers two locations, the dict and the log hook", () => {
    const { bundle, diagnostics } = compile(base({ metrics: {} }), { target: "openresty" });
    expect(diagnostics).toEqual([]);
    const conf = bundle!.files.get("nginx.conf")!;
    expect(conf).toContain("lua_shared_dict cdn_metrics 4m;");
    expect(conf).toContain('location = "/metrics" {');
    expect(conf).toContain('location = "/__stats" {');
    expect(conf).toContain("allow 127.0.0.1/32;");
    expect(conf).toContain("log_by_lua_block { cdn.log() }");
    expect(bundle!.files.has("lua/metrics.lua")).toBe(true);
    expect(bundle!.files.has("lua/stats.lua")).toBe(true);
  });
  it("has the cache label the log phase reads even when the access log is off", () => {
    const { bundle } = compile(base({ cache: {}, accessLog: { format: "off" }, metrics: {} }), { target: "openresty" });
    expect(bundle!.files.get("lua/policy_data.lua")).toMatch(/statusVar"\] = true/);
  });
  it("has no endpoint and no log hook without `metrics` (and no cache)", () => {
    const conf = compile(base({}), { target: "openresty" }).bundle!.files.get("nginx.conf")!;
    expect(conf).not.toContain("cdn_metrics");
    expect(conf).not.toContain("location = /metrics");
    expect(conf).not.toContain("log_by_lua");
  });
  it("refuses clashing paths, bad networks and sizes; warns on a broad allow-list", () => {
    expect(codes(base({ metrics: { path: "/" } }))).toEqual(["CDN7001"]);
    expect(codes(base({ metrics: { statsPath: "/metrics" } }))).toEqual(["CDN7001"]);
    expect(codes(base({ health: { path: "/metrics" }, metrics: {} }))).toEqual(["CDN7001"]);
    expect(codes(base({ purge: { path: "/__stats", token: { env: "T" } }, metrics: {} }))).toEqual(["CDN7001"]);
    expect(codes(base({ metrics: { allow: ["10.0.0.300/8"] } }))).toEqual(["CDN2012"]);
    expect(codes(base({ metrics: { allow: ["0.0.0.0/0"] } }))).toEqual(["CDN7002"]);
    expect(codes(base({ metrics: { size: "lots" } }))).toHaveLength(1);
    expect(codes(base({ metrics: { size: "1k" } }))).toHaveLength(1);
  });
});

describe("metrics over HTTP: a scripted mix gives exact counts", () => {
  let origin: MockOrigin;
  let edge: Edge;
  beforeAll(async () => {
    origin = await startMockOrigin();
    origin.route("/a", { headers: { "cache-control": "max-age=600", "content-type": "text/plain" }, body: "a".repeat(1000) });
    origin.route("/limited/x", { headers: { "cache-control": "max-age=600" }, body: "l" });
    edge = await bootEdge(
      {
        name: "metrics",
        origins: { app: { servers: [{ address: origin.address }], retries: 0 } },
        cache: { ttl: { "200": "1h" }, bypass: { headers: ["x-preview"] }, ram: { size: "1m", minHits: 2 } },
        headers: { cacheStatus: "X-Cache" },
        waf: {},
        rateLimit: [{ name: "tight", rate: "1r/m", paths: ["/limited/*"] }],
        purge: { token: { env: "PURGE_TOKEN" } },
        metrics: {},
        workers: { processes: 2 },
      },
      { env: { PURGE_TOKEN: TOKEN } },
    );
  });
  afterEach(async () => {
    expect(luaErrors(await edge.errors())).toEqual([]);
  });
  afterAll(async () => {
    await edge?.stop();
    await origin?.close();
  });

  it("counts MISS, HIT, HIT-RAM, BYPASS, a WAF 403, a 429 and a purge exactly", async () => {
    const labels: (string | undefined)[] = [];
    for (let i = 0; i < 3; i++) labels.push((await http(edge, "/a")).headers["x-cache"]);
    expect(labels).toEqual(["MISS", "HIT", "HIT-RAM"]);
    expect((await http(edge, "/a", { headers: { "x-preview": "1" } })).headers["x-cache"]).toBe("BYPASS");
    const waf = await http(edge, "/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E");
    expect(waf.status).toBe(403);
    expect((await http(edge, "/limited/x")).status).toBe(200);
    expect((await http(edge, "/limited/x")).status).toBe(429);
    const purge = await http(edge, "/__purge", {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ urls: [`http://127.0.0.1:${edge.port}/a`] }),
    });
    expect(purge.status).toBe(200);
    const purged = (JSON.parse(purge.body) as { count: number }).count;

    const { families, text } = await settled(edge, 8);
    expect(text).toContain("# TYPE cdn_requests_total counter");
    const req = (cache: string, status: string) => sample(families, "cdn_requests_total", { cache, status, pool: "app", host: "other" });
    expect(req("MISS", "2xx")).toBe(2);
    expect(req("HIT", "2xx")).toBe(1);
    expect(req("HIT-RAM", "2xx")).toBe(1);
    expect(req("BYPASS", "2xx")).toBe(1);
    expect(req("NONE", "4xx")).toBe(2); // the WAF's 403 and the 429
    expect(req("NONE", "2xx")).toBe(1); // the purge
    expect(total(families, "cdn_requests_total")).toBe(8);
    expect(sample(families, "cdn_cache_hits_total", { tier: "ram" })).toBe(1);
    expect(sample(families, "cdn_cache_hits_total", { tier: "disk" })).toBe(1);
    expect(sample(families, "cdn_gate_refusals_total", { gate: "waf", reason: "denied" })).toBe(1);
    expect(sample(families, "cdn_gate_refusals_total", { gate: "rate-limit", reason: "limited" })).toBe(1);
    expect(total(families, "cdn_gate_refusals_total")).toBe(2);
    expect(sample(families, "cdn_ratelimit_decisions_total", { limit: "tight", decision: "limited" })).toBe(1);
    expect(total(families, "cdn_waf_matches_total", { action: "block" })).toBe(1);
    expect(sample(families, "cdn_purges_total", { kind: "url", source: "api" })).toBe(1);
    expect(purged).toBeGreaterThanOrEqual(1);
    expect(sample(families, "cdn_purged_objects_total")).toBe(purged);
    // the origin saw /a twice (MISS, BYPASS) and /limited/x once
    expect(origin.hits("/a") + origin.hits("/limited/x")).toBe(3);
    expect(sample(families, "cdn_origin_requests_total", { pool: "app" })).toBe(3);
    // parse-prometheus-text-format reads a histogram of one series only: one with labels (a pool) loses
    // its _count and _sum there, so those lines are checked in the text
    expect(families.find((f) => f.name === "cdn_origin_response_seconds")!.type).toBe("HISTOGRAM");
    expect(text).toContain('cdn_origin_response_seconds_count{pool="app"} 3\n');
    expect(text).toContain('cdn_origin_response_seconds_bucket{pool="app",le="+Inf"} 3\n');
    const sent = sample(families, "cdn_sent_bytes_total")!;
    const recv = sample(families, "cdn_origin_received_bytes_total", { pool: "app" })!;
    expect(recv).toBeGreaterThan(2000); // two bodies of 1000 bytes and their headers
    expect(sent).toBeGreaterThan(4000); // four of them went to clients
    // dict fill, for every dict of the bundle
    for (const d of ["cdn_meta", "cdn_ram", "cdn_purge", "cdn_metrics"]) {
      expect(sample(families, "cdn_shared_dict_capacity_bytes", { dict: d }), d).toBeGreaterThan(0);
      expect(sample(families, "cdn_shared_dict_free_bytes", { dict: d }), d).toBeGreaterThanOrEqual(0);
    }
    expect(sample(families, "cdn_build_info", { policy: "metrics" })).toBe(1);

    // the stats API agrees
    const stats = JSON.parse((await http(edge, "/__stats")).body) as Record<string, unknown>;
    expect(stats["total_requests"]).toBe(8);
    expect(stats["origin_requests"]).toBe(3);
    expect(stats["cache_hits"]).toBe(2);
    expect(stats["cache_misses"]).toBe(3);
    expect(stats["cache_hit_ratio"]).toBeCloseTo(2 / 5, 10);
    expect(stats["bytes_sent"]).toBe(sent);
    expect(stats["bandwidth_saved_bytes"]).toBe(sent - recv);
    expect(stats["errors_4xx"]).toBe(2);
    expect(stats["errors_5xx"]).toBe(0);
    expect(stats["error_rate"]).toBe(0);
    expect(stats["gate_refusals"]).toBe(2);
    const lat = stats["latency"] as { edge_seconds: { p50: number; p99: number }; origin_seconds: { p50: number; p99: number } };
    expect(lat.edge_seconds.p50).toBeGreaterThanOrEqual(0);
    expect(lat.edge_seconds.p99).toBeGreaterThanOrEqual(lat.edge_seconds.p50);
    expect(lat.origin_seconds.p99).toBeGreaterThanOrEqual(lat.origin_seconds.p50);
    const minutes = stats["minutes"] as { requests: number }[];
    expect(minutes.length).toBeGreaterThanOrEqual(1);
    expect(minutes.reduce((a, m) => a + m.requests, 0)).toBe(8);
  });

  it("ships a Grafana dashboard whose queries only name metrics the bundle exports", async () => {
    const dash = JSON.parse(await readFile(join(edge.dir, "grafana/cdn-build.json"), "utf8")) as {
      panels: { title: string; targets: { expr: string }[] }[];
      templating: { list: { definition: string }[] };
    };
    const titles = dash.panels.map((p) => p.title);
    for (const t of ["Cache hit ratio", "Bandwidth saved", "Origin latency p50 / p99", "Error rate (5xx)", "Gate refusals", "Purge activity"]) expect(titles).toContain(t);
    const exprs = [...dash.panels.flatMap((p) => p.targets.map((t) => t.expr)), dash.templating.list[0]!.definition.replace(/^label_values\((.*), instance\)$/, "$1")];
    const used = new Set(exprs.flatMap(metricNames));
    expect(used.size).toBeGreaterThan(10);
    // what the bundle exports: the families of a real scrape (histograms as their _bucket/_sum/_count series)
    const { families } = await scrape(edge);
    const exported = new Set(families.flatMap((f) => (f.type === "HISTOGRAM" ? [`${f.name}_bucket`, `${f.name}_sum`, `${f.name}_count`] : [f.name])));
    expect([...used].filter((n) => !exported.has(n))).toEqual([]);
    // and the scrape shows exactly the families of the contract
    expect(families.map((f) => f.name).sort()).toEqual(Object.keys(METRIC_NAMES).sort());
    for (const f of families) expect(f.type.toLowerCase(), f.name).toBe(METRIC_NAMES[f.name as keyof typeof METRIC_NAMES]);
  });

  it("counts exactly N requests sent over M connections to two workers", async () => {
    const before = counted((await scrape(edge)).families);
    origin.route("/c", { headers: { "cache-control": "max-age=600" }, body: "c" });
    const N = 600;
    const M = 12;
    const agent = new Agent({ connections: M, pipelining: 1 });
    let next = 0;
    const worker = async () => {
      while (next < N) {
        next++;
        const r = await request(`${edge.baseUrl}/c`, { dispatcher: agent });
        await r.body.text();
        expect(r.statusCode).toBe(200);
      }
    };
    await Promise.all(Array.from({ length: M }, worker));
    await agent.close();
    const { families } = await settled(edge, before + N);
    expect(counted(families)).toBe(before + N);
  });

  it("counts a background refresh as an origin fetch, not as a client request", async () => {
    origin.route("/swr", { headers: { "cache-control": "max-age=1, stale-while-revalidate=60" }, body: "s" });
    const start = await scrape(edge);
    const n0 = counted(start.families);
    const o0 = sample(start.families, "cdn_origin_requests_total", { pool: "app" })!;
    expect((await http(edge, "/swr")).headers["x-cache"]).toBe("MISS");
    await sleep(1100);
    expect((await http(edge, "/swr")).headers["x-cache"]).toBe("STALE");
    await waitFor(() => origin.hits("/swr") === 2, { timeout: 5000, what: "the background refresh" });
    const { families } = await settled(edge, n0 + 2);
    const o = await waitFor(
      async () => {
        const v = sample((await scrape(edge)).families, "cdn_origin_requests_total", { pool: "app" })!;
        return v === o0 + 2 && v;
      },
      { timeout: 5000, what: "two origin requests counted" },
    );
    expect(o).toBe(o0 + 2);
    expect(counted(families)).toBe(n0 + 2);
    expect(sample(families, "cdn_requests_total", { cache: "STALE", status: "2xx", pool: "app", host: "other" })).toBe(1);
  });

  it("keeps every count across a reload (the dict survives it)", async () => {
    const before = await scrape(edge);
    const n = counted(before.families);
    const hits = sample(before.families, "cdn_requests_total", { cache: "HIT", status: "2xx", pool: "app", host: "other" });
    await edge.reload();
    const after = await scrape(edge);
    expect(counted(after.families)).toBe(n);
    expect(sample(after.families, "cdn_requests_total", { cache: "HIT", status: "2xx", pool: "app", host: "other" })).toBe(hits);
    expect((await http(edge, "/a")).status).toBe(200);
    await settled(edge, n + 1);
  });

  it("never caches or proxies the endpoints", async () => {
    const hitsBefore = origin.requests.length;
    for (const path of ["/metrics", "/__stats"]) {
      const r = await http(edge, path);
      expect(r.status).toBe(200);
      expect(r.headers["cache-control"]).toBe("no-store");
      expect(r.headers["x-cache"]).toBeUndefined();
      expect((await http(edge, path, { method: "POST", body: "x" })).status).toBe(405);
    }
    expect((await http(edge, "/metrics")).headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect((await http(edge, "/__stats")).headers["content-type"]).toBe("application/json");
    expect(origin.requests.length).toBe(hitsBefore);
    // scrapes are not counted themselves
    const a = counted((await scrape(edge)).families);
    const b = counted((await scrape(edge)).families);
    expect(b).toBe(a);
  });
});

describe("metrics over HTTP: labels from the policy only", () => {
  let origin: MockOrigin;
  let edge: Edge;
  beforeAll(async () => {
    origin = await startMockOrigin();
    edge = await bootEdge({
      name: "metrics-labels",
      serverNames: ["shop.example", "*.img.example"],
      origins: { app: { servers: [{ address: origin.address }], retries: 0 }, api: { servers: [{ address: origin.address }], retries: 0 } },
      defaultOrigin: "app",
      rules: [{ name: "api", when: { path: { prefix: "/api/" } }, then: { origin: "api" } }],
      metrics: {},
    });
  });
  afterAll(async () => {
    await edge?.stop();
    await origin?.close();
  });
  it("labels hosts by server name (or wildcard) and requests by the pool a rule routed them to", async () => {
    await http(edge, "/page", { headers: { host: "shop.example" } });
    await http(edge, "/api/x", { headers: { host: "shop.example" } });
    await http(edge, "/api/y?secret=1", { headers: { host: "a.img.example" } });
    await http(edge, "/pic", { headers: { host: "b.img.example" } });
    // a host the edge refuses (421, the catch-all server) is not counted at all
    expect((await http(edge, "/page", { headers: { host: "evil.example" } })).status).toBe(421);
    const { families, text } = await settled(edge, 4);
    const req = (host: string, pool: string) => sample(families, "cdn_requests_total", { cache: "NONE", status: "2xx", pool, host });
    expect(req("shop.example", "app")).toBe(1);
    expect(req("shop.example", "api")).toBe(1);
    expect(req("*.img.example", "api")).toBe(1);
    expect(req("*.img.example", "app")).toBe(1);
    expect(sample(families, "cdn_origin_requests_total", { pool: "api" })).toBe(2);
    expect(sample(families, "cdn_origin_requests_total", { pool: "app" })).toBe(2);
    // no URL, query or client address in any label
    expect(text).not.toMatch(/\/api|secret|127\.0\.0\.1|evil/);
    expect(luaErrors(await edge.errors())).toEqual([]);
  });
});

describe("metrics over HTTP: Redis failures", () => {
  let origin: MockOrigin;
  let edge: Edge;
  beforeAll(async () => {
    origin = await startMockOrigin();
    // nothing listens on the Redis port: every cluster rate limit fails open
    edge = await bootEdge({
      name: "metrics-redis",
      origins: { app: { servers: [{ address: origin.address }], retries: 0 } },
      redis: { host: "127.0.0.1", port: await freePort(), timeout: "100ms" },
      rateLimit: [{ name: "fleet", rate: "100r/s", scope: "cluster", onRedisError: "open" }],
      metrics: {},
    });
  });
  afterAll(async () => {
    await edge?.stop();
    await origin?.close();
  });
  it("counts failed connections and the decisions taken without Redis", async () => {
    expect((await http(edge, "/one")).status).toBe(200);
    const { families } = await settled(edge, 1);
    expect(sample(families, "cdn_redis_errors_total", { kind: "connect" })).toBe(1);
    expect(sample(families, "cdn_ratelimit_decisions_total", { limit: "fleet", decision: "failed_open" })).toBe(1);
    expect(total(families, "cdn_gate_refusals_total")).toBe(0);
  });
});

describe("metrics over HTTP: per-minute fleet aggregates in Redis", () => {
  let origin: MockOrigin;
  let redis: RedisServer;
  const edges: Edge[] = [];
  beforeAll(async () => {
    origin = await startMockOrigin();
    redis = await startRedis();
    for (let i = 0; i < 2; i++) {
      edges.push(await bootEdge({ name: "metrics-fleet", origins: { app: { servers: [{ address: origin.address }], retries: 0 } }, redis: { host: "127.0.0.1", port: redis.port }, metrics: {} }));
    }
  });
  afterAll(async () => {
    for (const e of edges) await e.stop();
    await origin?.close();
    await redis?.stop();
  });
  it("adds each node's minute to the fleet's hash once the minute is over (waits for a minute boundary)", async () => {
    for (let i = 0; i < 3; i++) await http(edges[0]!, `/a${i}`);
    for (let i = 0; i < 2; i++) await http(edges[1]!, `/b${i}`);
    await settled(edges[0]!, 3);
    await settled(edges[1]!, 2);
    // summed over the minutes the requests fell in (a boundary may pass between them)
    const fleet = async () => {
      const keys = (await redis.cli("--scan", "--pattern", "cdn-build:stats:metrics-fleet:*")).split("\n").filter(Boolean);
      let requests = 0;
      let nodes = 0;
      for (const k of keys) {
        const h = (await redis.cli("HGETALL", k)).split("\n");
        for (let i = 0; i + 1 < h.length; i += 2) {
          if (h[i] === "requests") requests += Number(h[i + 1]);
          if (h[i] === "nodes") nodes += Number(h[i + 1]);
        }
        expect(Number(await redis.cli("TTL", k))).toBeGreaterThan(86400);
      }
      return { requests, nodes, keys: keys.length };
    };
    const got = await waitFor(
      async () => {
        const f = await fleet();
        return f.requests >= 5 && f;
      },
      { timeout: 75_000, interval: 1000, what: "the minute's aggregates in redis" },
    );
    expect(got.requests).toBe(5);
    expect(got.nodes).toBeGreaterThanOrEqual(2);
    for (const e of edges) expect(luaErrors(await e.errors())).toEqual([]);
  }, 90_000);
});

describe("metrics over HTTP: the allow-list", () => {
  let origin: MockOrigin;
  let edge: Edge;
  beforeAll(async () => {
    origin = await startMockOrigin();
    edge = await bootEdge({ name: "metrics-closed", origins: { app: { servers: [{ address: origin.address }] } }, serverNames: ["shop.example", "img.example"], metrics: { allow: ["10.0.0.0/8"] } });
  });
  afterAll(async () => {
    await edge?.stop();
    await origin?.close();
  });
  it("refuses a client outside it with 403, on both endpoints, for any host", async () => {
    for (const path of ["/metrics", "/__stats"]) {
      expect((await http(edge, path, { headers: { host: "shop.example" } })).status).toBe(403);
      expect((await http(edge, path, { headers: { host: "unknown.example" } })).status).toBe(403);
    }
    expect(origin.requests.length).toBe(0);
    expect(luaErrors(await edge.errors())).toEqual([]);
  });
});
