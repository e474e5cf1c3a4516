import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { compile } from "../../src/compile.js";
import { writeBundleTo } from "../../src/emit/write.js";
import type { Policy } from "../../src/policy/types.js";
import { freePort, startBundle } from "../../src/runtime/nginx.js";
import { benchDir, cpu, cpuRatio, expectHit, KIB, nginxTarget, noiseNote, rpsRatio, runRounds, Scenario, startOrigin, verdict, type BenchContext, type Target } from "../lib.js";
import { PATH, QUERY } from "../policies.js";
import type { Section } from "../stats.js";

/** The production-like HIT bundle (RAM tier, JSON access log), with or without `metrics`. */
function metricsPolicy(originAddress: string, on: boolean, ram: boolean): Omit<Policy, "listen"> {
  return {
    name: `bench-metrics-${on ? "on" : "off"}-${ram ? "ram" : "disk"}`,
    workers: { processes: 1 },
    origins: { app: { servers: [{ address: originAddress }] } },
    cache: { ttl: { "200": "1h" }, key: { query: "all" }, ...(ram ? { ram: { size: "64m", minHits: 2 } } : {}) },
    headers: { cacheStatus: "X-Cache" },
    ...(on ? { metrics: {} } : {}),
  };
}

/**
 * CPU time of the metrics log handler alone for a RAM hit (the cheapest request, where its share is the
 * largest), measured inside nginx: os.clock around 50,000 calls, best of 5, in a content handler that set
 * the request's cache label first.
 */
async function logHandlerNs(s: Scenario): Promise<number> {
  const port = await freePort();
  const { bundle, diagnostics } = compile({ ...metricsPolicy("127.0.0.1:9", true, true), name: "bench-metrics-cpu", listen: { http: port, address: "127.0.0.1" } }, { target: s.bin.kind });
  if (!bundle) throw new Error(JSON.stringify(diagnostics, null, 2));
  const dir = await benchDir("cdn-bench-");
  s.cleanup.add(() => rm(dir, { recursive: true, force: true }));
  await writeBundleTo(bundle, dir);
  const conf = (await readFile(join(dir, "nginx.conf"), "utf8")).replace(
    "location / {",
    `location = /__log_cpu {
content_by_lua_block {
  local n = 50000
  ngx.var.cdn_cache_status = "HIT-RAM"
  local log = require("features.metrics").metrics.setup(require("policy_data").features.metrics).log.metrics
  local b = math.huge
  for _ = 1, 2000 do log() end
  for _ = 1, 5 do local t = os.clock(); for _ = 1, n do log() end; b = math.min(b, os.clock() - t) end
  ngx.say(string.format("%.0f", b / n * 1e9))
}
}
location / {`,
  );
  await writeFile(join(dir, "nginx.conf"), conf);
  const n = await startBundle(dir, { port, bin: s.bin });
  s.watchLog("metrics log handler timed inside nginx", () => n.errorLog());
  try {
    const r = await fetch(`${n.baseUrl}/__log_cpu`);
    const text = (await r.text()).trim();
    if (r.status !== 200) throw new Error(`log handler timing: ${r.status} ${text}`);
    return Number(text);
  } finally {
    await n.stop();
  }
}

/**
 * What counting every request costs: HIT throughput and worker CPU per request with `metrics` on vs off,
 * for a RAM HIT and a disk HIT (bundles without a RAM tier), in interleaved rounds.
 */
export async function metricsScenario(ctx: BenchContext): Promise<Section[]> {
  const s = new Scenario(ctx.bin, ctx.clientBin);
  return s.run(async () => {
    const origin = await startOrigin(s);
    const target = `${PATH}?${QUERY}`;
    const targets: Target[] = [];
    const variants = [
      { name: "RAM HIT, metrics off", on: false, ram: true },
      { name: "RAM HIT, metrics on", on: true, ram: true },
      { name: "disk HIT, metrics off", on: false, ram: false },
      { name: "disk HIT, metrics on", on: true, ram: false },
    ];
    for (const v of variants) {
      const n = await s.bootPolicy(v.name, metricsPolicy(origin.address, v.on, v.ram));
      for (let i = 0; i < 3; i++) await expectHit(v.name, `${n.baseUrl}${target}`, {}, KIB);
      const want = v.ram ? "HIT-RAM" : "HIT";
      await expectHit(v.name, `${n.baseUrl}${target}`, {}, KIB, (pr) => (pr.headers.get("x-cache") === want ? undefined : `X-Cache: ${pr.headers.get("x-cache")}, expected ${want}`));
      targets.push(nginxTarget(v.name, n, target));
    }
    const r = await runRounds("metrics", targets, origin);
    const rows = targets.map((t) => {
      const base = t.name.replace("metrics on", "metrics off");
      const c = cpuRatio(r, t.name, base);
      return { config: t.name, ratio: rpsRatio(r, t.name, base), cpuUs: cpu(r, t.name), note: t.name === base ? "" : `CPU ${c.median >= 1 ? "+" : ""}${((c.median - 1) * 100).toFixed(1)}%` };
    });
    const line = (kind: string) => {
      const rps = rpsRatio(r, `${kind}, metrics on`, `${kind}, metrics off`);
      const c = cpuRatio(r, `${kind}, metrics on`, `${kind}, metrics off`);
      return `${kind}: metrics on vs off x${rps.median.toFixed(3)} req/s, worker CPU per request ${((c.median - 1) * 100).toFixed(1)}% (target: within 3%, ${verdict(rps.median >= 0.97 || c.median <= 1.03)})`;
    };
    const ns = await logHandlerNs(s);
    return [
      {
        title: "Metrics (log-phase counters), HIT 1 KiB",
        baseline: "each row vs the same bundle without metrics",
        rows,
        notes: [noiseNote(r), line("RAM HIT"), line("disk HIT"), `the metrics log handler alone (CPU in nginx, best of 5 x 50k calls, a RAM hit): ${ns} ns`],
      },
    ];
  });
}
