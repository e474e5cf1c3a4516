/** `cdn-build stats`: read every node's stats endpoint, print fleet totals and a table per node. */
import { parseArgs } from "node:util";
import { Agent, request } from "undici";

export const STATS_HELP = `Usage: cdn-build stats <node> [<node> ...] [--path /__stats] [--json] [--watch <s>] [--count <n>]

Fetches the stats endpoint of every node (policy \`metrics\`; the node must allow this machine's address in
metrics.allow) and prints the fleet's totals and one row per node: requests, cache hit ratio, requests per
second, origin requests per second, 5xx errors and edge latency (p50 / p99). A node is http://host:port (the
stats path is added) or the full URL of its stats endpoint.

  --path <path>      the stats path added to a bare node URL (default /__stats)
  --json             print the results as JSON (one document per refresh)
  --watch <s>        refresh every <s> seconds until interrupted; rates are then measured between refreshes
                     (without it they are the nodes' own last complete minute)
  --count <n>        with --watch: stop after <n> refreshes
  --timeout <ms>     per-node request timeout (default 5000)

Exit codes: 0 every node answered (on the last refresh), 1 a node did not, 2 usage error.`;

class StatsUsage extends Error {}

function usage(msg: string): never {
  throw new StatsUsage(msg);
}

/** What a node's stats endpoint returns (the fields this command reads; see docs/metrics.md). */
export interface NodeStats {
  policy: string;
  time: number;
  total_requests: number;
  origin_requests: number;
  cache_hits: number;
  cache_misses: number;
  cache_hit_ratio: number | null;
  bytes_sent: number;
  origin_bytes_received: number;
  bandwidth_saved_bytes: number;
  errors_4xx: number;
  errors_5xx: number;
  error_rate: number | null;
  gate_refusals: number;
  latency: { edge_seconds: { p50: number | null; p99: number | null }; origin_seconds: { p50: number | null; p99: number | null } };
  last_minute: { requests_per_second: number | null; origin_requests_per_second: number | null; errors_5xx_per_second: number | null };
}

export interface NodeResult {
  node: string;
  url: string;
  ok: boolean;
  error?: string;
  stats?: NodeStats;
  /** Per second: between two refreshes with --watch, else the node's last complete minute (null: unknown). */
  rates: { requests: number | null; origin: number | null; errors5xx: number | null };
}

export interface FleetTotals {
  nodes: number;
  up: number;
  total_requests: number;
  origin_requests: number;
  cache_hits: number;
  cache_misses: number;
  cache_hit_ratio: number | null;
  bytes_sent: number;
  origin_bytes_received: number;
  bandwidth_saved_bytes: number;
  errors_4xx: number;
  errors_5xx: number;
  error_rate: number | null;
  gate_refusals: number;
  requests_per_second: number | null;
  origin_requests_per_second: number | null;
}

/** The stats URL of a node argument: a bare http://host:port gets `path`; a URL with a path is used as is. */
export function statsUrl(node: string, path: string): string {
  let u: URL;
  try {
    u = new URL(node);
  } catch {
    usage(`"${node}" is not a URL (http://host:port)`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") usage(`"${node}" is not an http(s) URL`);
  if (u.pathname === "/" && u.search === "") u.pathname = path;
  return u.toString();
}

const agent = new Agent({ keepAliveTimeout: 1000, connections: 4 });

async function fetchStats(node: string, url: string, timeoutMs: number): Promise<Omit<NodeResult, "rates">> {
  try {
    const res = await request(url, { dispatcher: agent, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.body.text();
    if (res.statusCode !== 200) {
      const why = res.statusCode === 403 ? " (this address is not in the node's metrics.allow)" : res.statusCode === 404 ? " (no stats endpoint there: does the policy have `metrics`?)" : "";
      return { node, url, ok: false, error: `HTTP ${res.statusCode}${why}` };
    }
    const stats = JSON.parse(text) as NodeStats;
    if (typeof stats.total_requests !== "number") return { node, url, ok: false, error: "not a stats document" };
    return { node, url, ok: true, stats };
  } catch (err) {
    return { node, url, ok: false, error: (err as Error).message };
  }
}

/** Rates of a node: between the previous refresh and this one when there was one, else its last minute. */
function ratesOf(cur: NodeStats | undefined, prev: NodeStats | undefined): NodeResult["rates"] {
  if (cur === undefined) return { requests: null, origin: null, errors5xx: null };
  if (prev !== undefined && cur.time > prev.time && cur.total_requests >= prev.total_requests) {
    const dt = cur.time - prev.time;
    return { requests: (cur.total_requests - prev.total_requests) / dt, origin: (cur.origin_requests - prev.origin_requests) / dt, errors5xx: (cur.errors_5xx - prev.errors_5xx) / dt };
  }
  const m = cur.last_minute;
  return { requests: m?.requests_per_second ?? null, origin: m?.origin_requests_per_second ?? null, errors5xx: m?.errors_5xx_per_second ?? null };
}

/** The fleet's totals over the nodes that answered. */
export function fleetTotals(results: NodeResult[]): FleetTotals {
  const up = results.filter((r) => r.ok && r.stats);
  const sum = (f: (s: NodeStats) => number) => up.reduce((a, r) => a + f(r.stats!), 0);
  const rate = (f: (r: NodeResult) => number | null) => (up.some((r) => f(r) === null) || up.length === 0 ? null : up.reduce((a, r) => a + f(r)!, 0));
  const hits = sum((s) => s.cache_hits);
  const misses = sum((s) => s.cache_misses);
  const total = sum((s) => s.total_requests);
  const e5 = sum((s) => s.errors_5xx);
  return {
    nodes: results.length,
    up: up.length,
    total_requests: total,
    origin_requests: sum((s) => s.origin_requests),
    cache_hits: hits,
    cache_misses: misses,
    cache_hit_ratio: hits + misses > 0 ? hits / (hits + misses) : null,
    bytes_sent: sum((s) => s.bytes_sent),
    origin_bytes_received: sum((s) => s.origin_bytes_received),
    bandwidth_saved_bytes: sum((s) => s.bandwidth_saved_bytes),
    errors_4xx: sum((s) => s.errors_4xx),
    errors_5xx: e5,
    error_rate: total > 0 ? e5 / total : null,
    gate_refusals: sum((s) => s.gate_refusals),
    requests_per_second: rate((r) => r.rates.requests),
    origin_requests_per_second: rate((r) => r.rates.origin),
  };
}

const pct = (x: number | null) => (x === null ? "-" : `${(x * 100).toFixed(1)}%`);
const perSec = (x: number | null) => (x === null ? "-" : x.toFixed(1));
const ms = (x: number | null | undefined) => (x === null || x === undefined ? "-" : `${(x * 1000).toFixed(1)}ms`);

function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = Math.abs(n);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${n < 0 ? "-" : ""}${i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  ").trimEnd()).join("\n");
}

/** The human-readable report: fleet totals, then one row per node. */
export function formatReport(results: NodeResult[], fleet: FleetTotals): string {
  const lines = [
    `fleet: ${fleet.up}/${fleet.nodes} nodes answered`,
    `  requests ${fleet.total_requests}   hit ratio ${pct(fleet.cache_hit_ratio)}   origin requests ${fleet.origin_requests}   ` +
      `req/s ${perSec(fleet.requests_per_second)}   origin req/s ${perSec(fleet.origin_requests_per_second)}`,
    `  bandwidth saved ${bytes(fleet.bandwidth_saved_bytes)} (sent ${bytes(fleet.bytes_sent)}, from origins ${bytes(fleet.origin_bytes_received)})   ` +
      `5xx ${fleet.errors_5xx} (${pct(fleet.error_rate)})   4xx ${fleet.errors_4xx}   gate refusals ${fleet.gate_refusals}`,
    "",
  ];
  const rows = [["node", "requests", "hit ratio", "req/s", "origin req/s", "5xx", "edge p50/p99", "status"]];
  for (const r of results) {
    const s = r.stats;
    rows.push([
      r.node,
      s ? String(s.total_requests) : "-",
      s ? pct(s.cache_hit_ratio) : "-",
      perSec(r.rates.requests),
      perSec(r.rates.origin),
      s ? String(s.errors_5xx) : "-",
      s ? `${ms(s.latency?.edge_seconds?.p50)}/${ms(s.latency?.edge_seconds?.p99)}` : "-",
      r.ok ? "ok" : `error: ${r.error}`,
    ]);
  }
  lines.push(table(rows));
  return lines.join("\n") + "\n";
}

/** One refresh: every node fetched in parallel, with rates against the previous refresh. */
export async function collect(nodes: { node: string; url: string }[], prev: Map<string, NodeStats>, timeoutMs: number): Promise<NodeResult[]> {
  const got = await Promise.all(nodes.map((n) => fetchStats(n.node, n.url, timeoutMs)));
  return got.map((g) => ({ ...g, rates: ratesOf(g.stats, prev.get(g.url)) }));
}

export interface StatsIo {
  out: (text: string) => void;
  err: (text: string) => void;
  sleep: (ms: number) => Promise<void>;
}

export async function runStats(args: string[], io: StatsIo): Promise<number> {
  try {
    return await statsCommand(args, io);
  } catch (err) {
    if (err instanceof StatsUsage || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      io.err(`error: ${(err as Error).message}\nrun \`cdn-build stats --help\` for usage\n`);
      return 2;
    }
    throw err;
  }
}

async function statsCommand(args: string[], io: StatsIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      path: { type: "string" },
      json: { type: "boolean" },
      watch: { type: "string" },
      count: { type: "string" },
      timeout: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    io.out(STATS_HELP + "\n");
    return 0;
  }
  if (positionals.length === 0) usage("give at least one node (http://host:port)");
  const path = values.path ?? "/__stats";
  if (!path.startsWith("/")) usage("--path must start with /");
  const watch = values.watch === undefined ? undefined : Number(values.watch);
  if (watch !== undefined && !(watch > 0 && watch <= 3600)) usage("--watch takes a number of seconds from 0 to 3600");
  const count = values.count === undefined ? undefined : Number(values.count);
  if (count !== undefined && !(Number.isInteger(count) && count >= 1)) usage("--count must be a positive integer");
  if (count !== undefined && watch === undefined) usage("--count goes with --watch");
  const timeoutMs = values.timeout === undefined ? 5000 : Number(values.timeout);
  if (!(Number.isInteger(timeoutMs) && timeoutMs >= 100 && timeoutMs <= 600_000)) usage("--timeout must be milliseconds from 100 to 600000");
  const nodes = positionals.map((n) => ({ node: n, url: statsUrl(n, path) }));

  const prev = new Map<string, NodeStats>();
  let results: NodeResult[] = [];
  for (let i = 0; watch === undefined ? i < 1 : count === undefined || i < count; i++) {
    if (i > 0) await io.sleep(watch! * 1000);
    results = await collect(nodes, prev, timeoutMs);
    for (const r of results) if (r.stats) prev.set(r.url, r.stats);
    const fleet = fleetTotals(results);
    if (values.json) io.out(JSON.stringify({ time: new Date().toISOString(), fleet, nodes: results }) + "\n");
    else io.out((watch !== undefined ? `--- ${new Date().toISOString()}\n` : "") + formatReport(results, fleet));
  }
  return results.every((r) => r.ok) ? 0 : 1;
}
