import type { LuaFeature } from "../core/feature";
import type { MetricName, MetricsData } from "../../src/contract/index";
import { countRedisError, enableCounters, labelValue } from "../core/metrics";
import { redisConnect, redisRelease } from "../core/redis";
import { encodeJson, jsonArray, jsonNull } from "../core/json";

/**
 * Metrics: counters and histograms in the `cdn_metrics` shared dict, written in the log phase with atomic
 * `incr` (exact across workers), read by the Prometheus endpoint (`renderMetrics`) and the stats API
 * (`renderStats`).
 *
 * The keys the log phase writes are short, because a shared dict hashes the whole key on every `incr`
 * (measured: about 3.5 ns per byte, so the series text of a request counter, ~70 bytes, cost 260 ns against
 * 35 ns for a 10-byte key). The endpoints turn them back into series:
 *   R<c><d>|<host>|<pool>                cdn_requests_total: c a one-letter cache label (LABEL_CODE), d the
 *                                         status class digit (0: outside 1xx-5xx)
 *   S                                     cdn_sent_bytes_total
 *   E|<i> / E|s                           cdn_edge_response_seconds: bucket i (not cumulative, 13 = +Inf) / sum;
 *                                         bucket 1 is not written: it is the counted requests the others lack
 *   O|<i>|<pool> / O|s|<pool>             cdn_origin_response_seconds, by pool
 *   C|<pool>, B|<pool>                    cdn_origin_requests_total, cdn_origin_received_bytes_total
 *   M|<minute>                            the totals at the start of that minute (the /__stats series)
 * Names and labels, not indexes, are in the keys: the dict survives a reload that changes the policy. The
 * rarer counters of ../core/metrics.ts are kept under their series text. The per-minute snapshots are taken
 * by worker 0 at every minute boundary: the log phase pays nothing for them.
 *
 * Cost per request (the log phase): a HIT served within a millisecond is 2 `incr` (request, bytes sent)
 * and 2 variable reads (`$cdn_cache_status`, `$bytes_sent`); a slower one adds the latency sum and its
 * bucket; a response from the origin adds `$upstream_response_time`, `$upstream_bytes_received` and 3 or 4
 * `incr`. Key strings are built once per label combination and kept (labels are bounded).
 */

const floor = math.floor;
const gmatch = string.gmatch;
const find = string.find;
const sub = string.sub;

/** Cache labels of responses that never touched the origin (no upstream variable to read). */
const NO_ORIGIN = new LuaTable<string, boolean>();
for (const l of ["HIT", "HIT-RAM", "STALE-RAM"]) NO_ORIGIN.set(l, true);
/** The labels the cache gives (`$cdn_cache_status`), and NONE (no cache decision: gates, endpoints, POST). */
/** Their one-letter codes in the dict keys (kept stable: a reload keeps the dict). */
const LABEL_CODE = new LuaTable<string, string>();
const CODE_LABEL = new LuaTable<string, string>();
for (const [l, c] of [
  ["HIT", "h"],
  ["HIT-RAM", "r"],
  ["STALE-RAM", "s"],
  ["MISS", "m"],
  ["EXPIRED", "e"],
  ["STALE", "t"],
  ["UPDATING", "u"],
  ["REVALIDATED", "v"],
  ["BYPASS", "b"],
  ["NONE", "n"],
  ["OTHER", "o"],
] as [string, string][]) {
  LABEL_CODE.set(l, c);
  CODE_LABEL.set(c, l);
}
/** Served from a cache tier (for the hit ratio and the tier counters). */
const RAM_HIT = new LuaTable<string, boolean>();
for (const l of ["HIT-RAM", "STALE-RAM"]) RAM_HIT.set(l, true);
const DISK_HIT = new LuaTable<string, boolean>();
for (const l of ["HIT", "STALE", "UPDATING", "REVALIDATED"]) DISK_HIT.set(l, true);
/** Looked up and not served from the cache. */
const MISS = new LuaTable<string, boolean>();
for (const l of ["MISS", "EXPIRED", "BYPASS"]) MISS.set(l, true);

const SENT: MetricName = "cdn_sent_bytes_total";
const EDGE: MetricName = "cdn_edge_response_seconds";
const ORIGIN: MetricName = "cdn_origin_response_seconds";
const MINUTES = 60;

/** HELP text and TYPE of every family the endpoint can show, in output order. */
const FAMILIES: [MetricName, "counter" | "gauge" | "histogram", string][] = [
  ["cdn_requests_total", "counter", "Requests answered by the edge, by cache status, status class, origin pool and host (a listed server name, else other)."],
  ["cdn_cache_hits_total", "counter", "Responses served from a cache tier: ram (HIT-RAM, STALE-RAM) or disk (HIT, STALE, UPDATING, REVALIDATED)."],
  [SENT, "counter", "Bytes sent to clients (headers and bodies)."],
  ["cdn_origin_received_bytes_total", "counter", "Bytes received from origins, by pool. Bandwidth saved = sent - received."],
  ["cdn_origin_requests_total", "counter", "Requests sent to origins (each retry counts), by pool."],
  [ORIGIN, "histogram", "Origin response time in seconds (each attempt), by pool."],
  [EDGE, "histogram", "Edge response time in seconds ($request_time), every counted request."],
  ["cdn_gate_refusals_total", "counter", "Requests refused by an access gate, by gate and reason."],
  ["cdn_ratelimit_decisions_total", "counter", "Rate-limit decisions other than admit: limited, failed_open, failed_closed (Redis unreachable), by limit."],
  ["cdn_waf_matches_total", "counter", "WAF rule matches, by rule id and action (block or log)."],
  ["cdn_purges_total", "counter", "Purge items applied on this node, by kind (url, prefix, tag, all) and source (api, fleet)."],
  ["cdn_purged_objects_total", "counter", "Cache keys purged (found by URL, prefix or tag)."],
  ["cdn_redis_errors_total", "counter", "Redis failures, by kind: connections (connect, auth, select, config) and commands (command)."],
  ["cdn_shared_dict_capacity_bytes", "gauge", "Size of a shared dict (cdn_meta: cache metadata, about twice the keys zone; cdn_ram: RAM tier; cdn_purge: purge index)."],
  ["cdn_shared_dict_free_bytes", "gauge", "Free memory of a shared dict."],
  ["cdn_build_info", "gauge", "The policy this bundle was built from (always 1)."],
];

let dict: NgxSharedDict;
let data: MetricsData;
let edgeBounds: number[] = [];
let originBounds: number[] = [];

/** A function from a duration to its bucket (1..13, 13 = +Inf), unrolled: no loop on the hot path. */
function bucketer(b: number[]): (this: void, t: number) => number {
  if (b.length !== 12) error("cdn-build runtime: metrics histograms have 12 bounds, got " + b.length);
  const [b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12] = [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11]];
  return (t) => {
    if (t <= b1) return 1;
    if (t <= b2) return 2;
    if (t <= b3) return 3;
    if (t <= b4) return 4;
    if (t <= b5) return 5;
    if (t <= b6) return 6;
    if (t <= b7) return 7;
    if (t <= b8) return 8;
    if (t <= b9) return 9;
    if (t <= b10) return 10;
    if (t <= b11) return 11;
    if (t <= b12) return 12;
    return 13;
  };
}

function histKeys(prefix: string, suffix: string): string[] {
  const out: string[] = [];
  for (let i = 1; i <= 13; i++) out.push(prefix + i + suffix);
  return out;
}

interface OriginKeys {
  buckets: string[];
  sum: string;
  count: string;
  recv: string;
}

export const metrics: LuaFeature<"metrics"> = {
  key: "metrics",
  setup(d) {
    const shm = ngx.shared.get(d.dict);
    if (shm === undefined) error("cdn-build runtime: the metrics dict " + d.dict + " is not declared in nginx.conf");
    dict = shm;
    data = d;
    edgeBounds = d.edgeBuckets;
    originBounds = d.originBuckets;
    enableCounters(shm);
    const cacheOn = d.cache;
    const readHost = d.readHost;
    const fixedHost = d.fixedHost;
    const defaultPool = d.defaultPool;
    const routedUrls = d.routedUrls === undefined ? undefined : (d.routedUrls as unknown as LuaTable<string, string>);
    const hostSet = new LuaTable<string, boolean>();
    for (const h of d.hosts) hostSet.set(h, true);
    const wildcards = d.wildcards;
    const edgeBucket = bucketer(d.edgeBuckets);
    const originBucket = bucketer(d.originBuckets);
    const edgeKeys = histKeys("E|", "");
    const edgeSum = "E|s";
    const now = ngx.now;
    const startTime = ngx.req.start_time;

    /** The host label: a listed server name (or the wildcard pattern it matches), else "other". */
    const hostLabel = (h: string | undefined): string => {
      if (h === undefined) return "other";
      if (hostSet.get(h) === true) return h;
      for (const w of wildcards) {
        if (sub(w, 1, 2) === "*.") {
          const suffix = sub(w, 2);
          if (h.length > suffix.length && sub(h, -suffix.length) === suffix) return w;
        } else if (sub(w, -2) === ".*") {
          const prefix = sub(w, 1, -2);
          if (h.length > prefix.length && sub(h, 1, prefix.length) === prefix) return w;
        }
      }
      return "other";
    };

    // label -> status class -> pool -> host -> key, filled as combinations occur (all bounded)
    const requestKeys = new LuaTable<string, LuaTable<number, LuaTable<string, LuaTable<string, string>>>>();
    const requestKey = (label: string, cls: number, pool: string, host: string): string => {
      let a = requestKeys.get(label);
      if (a === undefined) {
        a = new LuaTable();
        requestKeys.set(label, a);
      }
      let b = a.get(cls);
      if (b === undefined) {
        b = new LuaTable();
        a.set(cls, b);
      }
      let c = b.get(pool);
      if (c === undefined) {
        c = new LuaTable();
        b.set(pool, c);
      }
      let k = c.get(host);
      if (k === undefined) {
        k = "R" + (LABEL_CODE.get(label) ?? "o") + (cls >= 1 && cls <= 5 ? cls : 0) + "|" + host + "|" + pool;
        c.set(host, k);
      }
      return k;
    };

    const originKeys = new LuaTable<string, OriginKeys>();
    const originOf = (pool: string): OriginKeys => {
      let o = originKeys.get(pool);
      if (o === undefined) {
        o = { buckets: histKeys("O|", "|" + pool), sum: "O|s|" + pool, count: "C|" + pool, recv: "B|" + pool };
        originKeys.set(pool, o);
      }
      return o;
    };

    /** One origin attempt: counted, and its time observed when it has one ("-": no response). */
    const attempt = (o: OriginKeys, v: string) => {
      dict.incr(o.count, 1, 0);
      const t = tonumber(v);
      if (t === undefined) return;
      dict.incr(o.buckets[originBucket(t) - 1], 1, 0);
      if (t > 0) dict.incr(o.sum, t, 0);
    };

    /** The upstream part of a request that reached an origin (retries and internal redirects list several). */
    const origin = (pool: string, urt: string, recv: string | undefined) => {
      const o = originOf(pool);
      if (find(urt, ",", 1, true)[0] === undefined && find(urt, ":", 1, true)[0] === undefined) attempt(o, urt);
      else for (const [v] of gmatch(urt, "[^%s,:]+")) attempt(o, v);
      if (recv === undefined || recv === "") return;
      let n = tonumber(recv);
      if (n === undefined) {
        n = 0;
        for (const [v] of gmatch(recv, "%d+")) n += tonumber(v)!;
      }
      if (n > 0) dict.incr(o.recv, n, 0);
    };

    const log = () => {
      const vars = ngx.var;
      let label = "NONE";
      if (cacheOn) {
        const l = vars.get("cdn_cache_status");
        if (l !== undefined && l !== "") label = l;
      }
      const fromCache = NO_ORIGIN.get(label) === true;
      const pool = routedUrls === undefined ? defaultPool : (routedUrls.get(vars.get("cdn_origin_url") ?? "") ?? defaultPool);
      if (!fromCache && cacheOn && vars.get("cdn_cache_refresh") === "1") {
        // a refresh the edge sent itself (stale-while-revalidate, revalidation; the cache marks them with
        // $cdn_cache_refresh, their marker header is gone by now): an origin fetch, not a client request
        // (the client's request was counted with its own label)
        const urt = vars.get("upstream_response_time");
        if (urt !== undefined && urt !== "") origin(pool, urt, vars.get("upstream_bytes_received"));
        return;
      }
      const host = readHost ? hostLabel(vars.get("host")) : fixedHost;
      const shm = dict;
      shm.incr(requestKey(label, floor(ngx.status / 100), pool, host), 1, 0);
      const sent = tonumber(vars.get("bytes_sent"));
      if (sent !== undefined && sent > 0) shm.incr("S", sent, 0);
      // the first edge bucket (most hits) is not written: it is the requests the other buckets do not hold
      const t = now() - startTime();
      if (t > 0) {
        const b = edgeBucket(t);
        if (b > 1) shm.incr(edgeKeys[b - 1], 1, 0);
        shm.incr(edgeSum, t, 0);
      }
      if (fromCache) return;
      const urt = vars.get("upstream_response_time");
      if (urt === undefined || urt === "") return;
      origin(pool, urt, vars.get("upstream_bytes_received"));
    };

    const initWorker = () => {
      if (ngx.worker.id() !== 0) return;
      snapshot();
      scheduleSnapshot();
    };

    return { log: { metrics: log }, initWorker: { metrics: initWorker } };
  },
};

// ---- reading the dict back -----------------------------------------------------------------------------

interface Totals {
  requests: number;
  hits: number;
  ramHits: number;
  diskHits: number;
  misses: number;
  origin: number;
  e4: number;
  e5: number;
  sent: number;
  recv: number;
  refused: number;
}

const TOTAL_FIELDS: (keyof Totals)[] = ["requests", "hits", "ramHits", "diskHits", "misses", "origin", "e4", "e5", "sent", "recv", "refused"];

function emptyTotals(): Totals {
  return { requests: 0, hits: 0, ramHits: 0, diskHits: 0, misses: 0, origin: 0, e4: 0, e5: 0, sent: 0, recv: 0, refused: 0 };
}

function startsWith(s: string, p: string): boolean {
  return sub(s, 1, p.length) === p;
}

interface Hist {
  buckets: number[];
  sum: number;
}

/** Everything the dict holds, as series: counters (family -> lines), histograms by their label text, totals. */
interface Snapshot {
  series: LuaTable<string, string[]>;
  edge: LuaTable<string, Hist>;
  origin: LuaTable<string, Hist>;
  totals: Totals;
}

function histOf(byLabels: LuaTable<string, Hist>, labels: string): Hist {
  let h = byLabels.get(labels);
  if (h === undefined) {
    h = { buckets: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], sum: 0 };
    byLabels.set(labels, h);
  }
  return h;
}

function observe(h: Hist, idx: string, v: number): void {
  if (idx === "s") h.sum = v;
  else {
    const i = tonumber(idx);
    if (i !== undefined && i >= 1 && i <= 13) h.buckets[i - 1] = v;
  }
}

function num(v: number): string {
  if (v === floor(v) && math.abs(v) < 2 ** 53) return string.format("%d", v);
  return string.format("%.9g", v);
}

/** Reads the whole dict once (a scrape, a stats request, a minute snapshot). */
function readDict(withSeries: boolean): Snapshot {
  const series = new LuaTable<string, string[]>();
  const snap: Snapshot = { series, edge: new LuaTable(), origin: new LuaTable(), totals: emptyTotals() };
  const t = snap.totals;
  const push = (family: string, line: string) => {
    if (!withSeries) return;
    let l = series.get(family);
    if (l === undefined) {
      l = [];
      series.set(family, l);
    }
    l.push(line);
  };
  const keys = dict.get_keys(0);
  table.sort(keys);
  for (const k of keys) {
    const [v] = dict.get(k);
    if (typeof v !== "number") continue;
    const c = sub(k, 1, 2);
    if (sub(k, 1, 1) === "R" && sub(k, 4, 4) === "|") {
      const [code, cls, host, pool] = string.match(k, "^R(%l)(%d)|([^|]*)|(.*)$");
      const label = code === undefined ? undefined : CODE_LABEL.get(code);
      if (label === undefined) continue;
      const klass = cls === "0" ? "other" : cls + "xx";
      push("cdn_requests_total", 'cdn_requests_total{cache="' + label + '",status="' + klass + '",pool="' + labelValue(pool!) + '",host="' + labelValue(host!) + '"} ' + num(v));
      t.requests += v;
      if (RAM_HIT.get(label) === true) {
        t.hits += v;
        t.ramHits += v;
      } else if (DISK_HIT.get(label) === true) {
        t.hits += v;
        t.diskHits += v;
      } else if (MISS.get(label) === true) t.misses += v;
      if (cls === "4") t.e4 += v;
      else if (cls === "5") t.e5 += v;
    } else if (k === "S") {
      push(SENT, SENT + " " + num(v));
      t.sent += v;
    } else if (c === "C|") {
      push("cdn_origin_requests_total", 'cdn_origin_requests_total{pool="' + labelValue(sub(k, 3)) + '"} ' + num(v));
      t.origin += v;
    } else if (c === "B|") {
      push("cdn_origin_received_bytes_total", 'cdn_origin_received_bytes_total{pool="' + labelValue(sub(k, 3)) + '"} ' + num(v));
      t.recv += v;
    } else if (c === "E|") {
      observe(histOf(snap.edge, ""), sub(k, 3), v);
    } else if (c === "O|") {
      const [idx, pool] = string.match(k, "^O|([%ds]+)|(.*)$");
      if (idx !== undefined) observe(histOf(snap.origin, 'pool="' + labelValue(pool!) + '"'), idx, v);
    } else if (c !== "M|") {
      // a counter of ../core/metrics.ts, kept under its series text
      const [family] = string.match(k, "^([%w_:]+)");
      if (family !== undefined) push(family, k + " " + num(v));
      if (family === "cdn_gate_refusals_total") t.refused += v;
    }
  }
  // the first edge bucket: every counted request the others do not hold
  const edge = histOf(snap.edge, "");
  let above = 0;
  for (let i = 1; i < 13; i++) above += edge.buckets[i];
  edge.buckets[0] = math.max(0, t.requests - above);
  return snap;
}

// ---- snapshots and the per-minute series --------------------------------------------------------------

function encodeTotals(t: Totals): string {
  const parts: string[] = [];
  for (const f of TOTAL_FIELDS) parts.push(string.format("%.17g", t[f]));
  return table.concat(parts, " ");
}

function decodeTotals(s: unknown): Totals | undefined {
  if (typeof s !== "string") return undefined;
  const t = emptyTotals();
  let i = 0;
  for (const [v] of gmatch(s, "%S+")) {
    const f = TOTAL_FIELDS[i];
    if (f === undefined) break;
    t[f] = tonumber(v) ?? 0;
    i++;
  }
  return t;
}

/** Worker 0: the totals at the start of this minute (kept an hour and a bit). */
function snapshot(): void {
  const minute = floor(ngx.time() / 60);
  const key = "M|" + minute;
  if (dict.get(key)[0] !== undefined) return;
  dict.set(key, encodeTotals(readDict(false).totals), (MINUTES + 2) * 60);
}

/** Redis field names of the per-minute aggregates, by total. */
const REDIS_FIELDS: Record<keyof Totals, string> = {
  requests: "requests",
  hits: "cache_hits",
  ramHits: "cache_hits_ram",
  diskHits: "cache_hits_disk",
  misses: "cache_misses",
  origin: "origin_requests",
  e4: "errors_4xx",
  e5: "errors_5xx",
  sent: "bytes_sent",
  recv: "origin_bytes_received",
  refused: "gate_refusals",
};
/** The Redis commands the aggregates use (methods: called with the client as self). */
interface StatsRedis {
  hincrby(this: StatsRedis, key: string, field: string, n: number): LuaMultiReturn<[unknown, string | undefined]>;
  expire(this: StatsRedis, key: string, seconds: number): LuaMultiReturn<[unknown, string | undefined]>;
}

/** How long Redis keeps a minute's aggregates. */
const REDIS_TTL = 2 * 86400;

/**
 * Worker 0, with `redis`: adds this node's counts of minute `m` (the difference of two snapshots) to the
 * fleet's hash for that minute, `<prefix>:<minute start>`, and counts itself in its `nodes` field. A minute
 * whose snapshots are missing (the node was down), or whose push fails (Redis down), is not sent.
 */
function pushMinute(m: number): void {
  const prefix = data.redisPrefix;
  if (prefix === undefined) return;
  const from = decodeTotals(dict.get("M|" + m)[0]);
  const to = decodeTotals(dict.get("M|" + (m + 1))[0]);
  if (from === undefined || to === undefined) return;
  const [client] = redisConnect();
  if (client === undefined) return; // counted by redisConnect
  const red = client as unknown as StatsRedis;
  const key = prefix + ":" + m * 60;
  let ok = true;
  for (const f of TOTAL_FIELDS) {
    const n = floor(to[f] - from[f]);
    // a reply is a number; nil (connection failed) or false (an error reply) is a failure
    if (n > 0 && ok) ok = typeof red.hincrby(key, REDIS_FIELDS[f], n)[0] === "number";
  }
  if (ok) ok = typeof red.hincrby(key, "nodes", 1)[0] === "number";
  if (ok) ok = typeof red.expire(key, REDIS_TTL)[0] === "number";
  if (!ok) {
    countRedisError("command");
    client.close();
    ngx.log(ngx.WARN, "metrics: could not add minute ", m * 60, " to redis");
    return;
  }
  redisRelease(client);
}

function onMinute(this: void, premature: boolean): void {
  if (premature) return;
  const [ok, err] = pcall(snapshot);
  if (!ok) ngx.log(ngx.ERR, "metrics: minute snapshot failed: ", tostring(err));
  else if (data.redisPrefix !== undefined) {
    // the minute that just ended (this timer runs right after its boundary)
    const [pok, perr] = pcall(pushMinute, floor(ngx.time() / 60) - 1);
    if (!pok) ngx.log(ngx.ERR, "metrics: minute aggregate for redis failed: ", tostring(perr));
  }
  scheduleSnapshot();
}

function scheduleSnapshot(): void {
  const now = ngx.now();
  const [t, err] = ngx.timer.at(60 - (now % 60) + 0.01, onMinute);
  if (t === undefined) ngx.log(ngx.ERR, "metrics: cannot schedule the minute snapshot: ", tostring(err));
}

// ---- the Prometheus endpoint --------------------------------------------------------------------------

function le(b: number): string {
  return string.format("%g", b);
}

/** The exposition (text format 0.0.4) of everything in the dict, plus the dict fill gauges. */
export function renderMetrics(): string {
  const snap = readDict(true);
  const series = snap.series;
  const t = snap.totals;
  const push = (family: string, line: string) => {
    let l = series.get(family);
    if (l === undefined) {
      l = [];
      series.set(family, l);
    }
    l.push(line);
  };
  if (t.ramHits > 0 || t.diskHits > 0) {
    push("cdn_cache_hits_total", 'cdn_cache_hits_total{tier="disk"} ' + num(t.diskHits));
    push("cdn_cache_hits_total", 'cdn_cache_hits_total{tier="ram"} ' + num(t.ramHits));
  }
  for (const [name, byLabels, bounds] of [
    [EDGE, snap.edge, edgeBounds],
    [ORIGIN, snap.origin, originBounds],
  ] as [string, LuaTable<string, Hist>, number[]][]) {
    const labelList: string[] = [];
    for (const [l] of byLabels) labelList.push(l);
    table.sort(labelList);
    for (const l of labelList) {
      const h = byLabels.get(l)!;
      const pre = l === "" ? "" : l + ",";
      let cum = 0;
      for (let i = 0; i < 12; i++) {
        cum += h.buckets[i];
        push(name, name + "_bucket{" + pre + 'le="' + le(bounds[i]) + '"} ' + num(cum));
      }
      cum += h.buckets[12];
      push(name, name + "_bucket{" + pre + 'le="+Inf"} ' + num(cum));
      push(name, name + "_sum" + (l === "" ? "" : "{" + l + "}") + " " + num(h.sum));
      push(name, name + "_count" + (l === "" ? "" : "{" + l + "}") + " " + num(cum));
    }
  }
  const dicts: NgxSharedDictName[] = [];
  for (const [name] of ngx.shared) if (startsWith(name, "cdn_")) dicts.push(name);
  table.sort(dicts);
  for (const name of dicts) {
    const d = ngx.shared.get(name)!;
    const [ok, cap] = pcall(() => d.capacity());
    const [ok2, free] = pcall(() => d.free_space());
    if (ok) push("cdn_shared_dict_capacity_bytes", 'cdn_shared_dict_capacity_bytes{dict="' + name + '"} ' + num(cap as number));
    if (ok2) push("cdn_shared_dict_free_bytes", 'cdn_shared_dict_free_bytes{dict="' + name + '"} ' + num(free as number));
  }
  push("cdn_build_info", 'cdn_build_info{policy="' + labelValue(data.name) + '"} 1');
  const out: string[] = [];
  const known = new LuaTable<string, boolean>();
  // every family is described, with or without series yet (a dashboard's queries find them all); the
  // counters without labels start at 0
  for (const [name, type, help] of FAMILIES) {
    known.set(name, true);
    out.push("# HELP " + name + " " + help);
    out.push("# TYPE " + name + " " + type);
    const lines = series.get(name);
    if (lines !== undefined) for (const l of lines) out.push(l);
    else if (name === SENT || name === "cdn_purged_objects_total") out.push(name + " 0");
  }
  // a family the table above does not describe (none today) is still shown, untyped
  const rest: string[] = [];
  for (const [name] of series) if (known.get(name) !== true) rest.push(name);
  table.sort(rest);
  for (const name of rest) {
    out.push("# TYPE " + name + " untyped");
    for (const l of series.get(name)!) out.push(l);
  }
  out.push("");
  return table.concat(out, "\n");
}

// ---- the stats API ------------------------------------------------------------------------------------

/** A quantile estimated from bucket counts (linear inside the bucket, as Prometheus' histogram_quantile). */
function quantile(q: number, buckets: number[], bounds: number[]): number | undefined {
  let total = 0;
  for (const n of buckets) total += n;
  if (total === 0) return undefined;
  const rank = q * total;
  let cum = 0;
  for (let i = 0; i < 13; i++) {
    const n = buckets[i];
    if (cum + n >= rank && n > 0) {
      if (i === 12) return bounds[11];
      const lower = i === 0 ? 0 : bounds[i - 1];
      return lower + (bounds[i] - lower) * ((rank - cum) / n);
    }
    cum += n;
  }
  return bounds[11];
}

function mergedBuckets(byLabels: LuaTable<string, Hist> | undefined): number[] {
  const out = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
  if (byLabels === undefined) return out;
  for (const [, h] of byLabels) for (let i = 0; i < 13; i++) out[i] += h.buckets[i];
  return out;
}

function ratio(a: number, b: number): number | object {
  return b > 0 ? a / b : jsonNull;
}

function orNull(v: number | undefined): number | object {
  return v === undefined ? jsonNull : v;
}

function minuteEntry(minute: number, from: Totals, to: Totals): LuaTable<string, unknown> {
  const e = new LuaTable<string, unknown>();
  e.set("time", minute * 60);
  e.set("requests", to.requests - from.requests);
  e.set("cache_hits", to.hits - from.hits);
  e.set("cache_misses", to.misses - from.misses);
  e.set("origin_requests", to.origin - from.origin);
  e.set("errors_4xx", to.e4 - from.e4);
  e.set("errors_5xx", to.e5 - from.e5);
  e.set("bytes_sent", to.sent - from.sent);
  e.set("origin_bytes_received", to.recv - from.recv);
  return e;
}

/** The stats document (JSON): totals, ratios, latency percentiles, the last hour minute by minute. */
export function renderStats(): string {
  const snap = readDict(false);
  const t = snap.totals;
  const edge = mergedBuckets(snap.edge);
  const origin = mergedBuckets(snap.origin);
  const now = ngx.now();
  const current = floor(now / 60);
  const minutes: LuaTable<string, unknown>[] = jsonArray([]);
  let last: LuaTable<string, unknown> | undefined;
  for (let m = current - MINUTES + 1; m <= current; m++) {
    const from = decodeTotals(dict.get("M|" + m)[0]);
    const to = m === current ? t : decodeTotals(dict.get("M|" + (m + 1))[0]);
    if (from !== undefined && to !== undefined) {
      const e = minuteEntry(m, from, to);
      minutes.push(e);
      if (m === current - 1) last = e;
    }
  }
  const doc = new LuaTable<string, unknown>();
  doc.set("policy", data.name);
  doc.set("time", now);
  doc.set("total_requests", t.requests);
  doc.set("origin_requests", t.origin);
  doc.set("cache_hits", t.hits);
  doc.set("cache_hits_ram", t.ramHits);
  doc.set("cache_hits_disk", t.diskHits);
  doc.set("cache_misses", t.misses);
  doc.set("cache_hit_ratio", ratio(t.hits, t.hits + t.misses));
  doc.set("bytes_sent", t.sent);
  doc.set("origin_bytes_received", t.recv);
  doc.set("bandwidth_saved_bytes", t.sent - t.recv);
  doc.set("errors_4xx", t.e4);
  doc.set("errors_5xx", t.e5);
  doc.set("error_rate", ratio(t.e5, t.requests));
  doc.set("client_error_rate", ratio(t.e4, t.requests));
  doc.set("gate_refusals", t.refused);
  const lat = new LuaTable<string, unknown>();
  const el = new LuaTable<string, unknown>();
  el.set("p50", orNull(quantile(0.5, edge, edgeBounds)));
  el.set("p99", orNull(quantile(0.99, edge, edgeBounds)));
  const ol = new LuaTable<string, unknown>();
  ol.set("p50", orNull(quantile(0.5, origin, originBounds)));
  ol.set("p99", orNull(quantile(0.99, origin, originBounds)));
  lat.set("edge_seconds", el);
  lat.set("origin_seconds", ol);
  doc.set("latency", lat);
  // rates over the last complete minute (null until one has passed)
  const rates = new LuaTable<string, unknown>();
  const per = (field: string) => (last === undefined ? jsonNull : (last.get(field) as number) / 60);
  rates.set("requests_per_second", per("requests"));
  rates.set("origin_requests_per_second", per("origin_requests"));
  rates.set("errors_5xx_per_second", per("errors_5xx"));
  doc.set("last_minute", rates);
  doc.set("minutes", minutes);
  return encodeJson(doc) + "\n";
}

/** Content handler of the two endpoints (their location already refused addresses outside the allow-list). */
export function serveEndpoint(this: void, kind: "metrics" | "stats"): void {
  const h = ngx.header;
  h.set("Cache-Control", "no-store");
  const method = ngx.req.get_method();
  if (method !== "GET" && method !== "HEAD") {
    h.set("Allow", "GET, HEAD");
    ngx.status = 405;
    ngx.say("use GET");
    return ngx.exit(ngx.HTTP_OK);
  }
  if (dict === undefined) {
    ngx.status = 404;
    ngx.say("this policy has no metrics");
    return ngx.exit(ngx.HTTP_OK);
  }
  const body = kind === "metrics" ? renderMetrics() : renderStats();
  h.set("Content-Type", kind === "metrics" ? "text/plain; version=0.0.4; charset=utf-8" : "application/json");
  ngx.print(body);
  return ngx.exit(ngx.HTTP_OK);
}
