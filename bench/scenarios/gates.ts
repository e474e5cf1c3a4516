import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { compile } from "../../src/compile.js";
import { writeBundleTo } from "../../src/emit/write.js";
import type { Policy } from "../../src/policy/types.js";
import { env } from "../../src/policy/env.js";
import { freePort, startBundle } from "../../src/runtime/nginx.js";
import { signPath } from "../../src/sign.js";
import { startRedis } from "../../test/support/redis.js";
import { benchDir, cpu, cpuRatio, expectHit, KIB, nginxTarget, noiseNote, rpsRatio, runRounds, Scenario, startOrigin, verdict, type BenchContext, type Target } from "../lib.js";
import { ALL_GATES, denyList, ENV, gatesHeaders, PATH, QUERY, SIGN_KEY, withGates, type Gate } from "../policies.js";
import type { Section } from "../stats.js";

/** A cache-HIT policy with the given gates on; with no gates it is the baseline bundle. */
export function gatesPolicy(originAddress: string, gates: readonly Gate[], ctx: { redisPort?: number } = {}): Omit<Policy, "listen"> {
  return withGates(
    {
      name: `bench-gates-${gates.length}`,
      workers: { processes: 1 },
      origins: { app: { servers: [{ address: originAddress }] } },
      cache: { ttl: { "200": "1h" }, key: { query: "all" } },
      headers: { response: { set: { "X-Served-By": "edge" } } },
      accessLog: { format: "off" },
    },
    gates,
    ctx,
  );
}

/**
 * CPU time of some gates' access handlers alone (not JWT's: the claim headers it clears and sets on every
 * call pile up when called 100,000 times in one request), measured inside nginx (os.clock around 20,000 calls, best
 * of 5, minus the cost of the loop's own preparation) on a benign request: free of the wall-clock noise of a
 * shared machine.
 */
async function handlerNs(s: Scenario): Promise<Record<string, number>> {
  const bin = s.bin;
  const port = await freePort();
  const { bundle, diagnostics } = compile(
    {
      ...gatesPolicy("127.0.0.1:9", ["rateLimit"]),
      name: "bench-gates-cpu",
      // scoped away from the bench location: the handlers are called by hand there
      originSecret: { secret: env("BENCH_EDGE_SECRET"), paths: ["/none"] },
      ipRules: { deny: denyList(), trustedProxies: ["127.0.0.1"], paths: ["/none"] },
      waf: { paths: ["/none"] },
      listen: { http: port, address: "127.0.0.1" },
    },
    { target: bin.kind },
  );
  if (!bundle) throw new Error(JSON.stringify(diagnostics, null, 2));
  const dir = await benchDir("cdn-bench-");
  s.cleanup.add(() => rm(dir, { recursive: true, force: true }));
  {
    await writeBundleTo(bundle, dir);
    const conf = (await readFile(join(dir, "nginx.conf"), "utf8")).replace(
      "location / {",
      `location = /__gate_cpu {
content_by_lua_block {
  local n, f = 20000, ngx.var.arg_f
  local data = require("policy_data").features[f]
  data.scope = nil
  local module = ({ originSecret = "origin-secret", ipRules = "ip-rules", waf = "waf", rateLimit = "rate-limit.index" })[f]
  local stage = ({ originSecret = "gate:secret", ipRules = "gate:ip", waf = "gate:waf", rateLimit = "gate:rate" })[f]
  local h = require("features." .. module)[f].setup(data)
  for _, fn in pairs(h.initWorker or {}) do fn() end
  local access = h.access[stage]
  -- "fresh": a new query string on every call (the WAF's memo of seen values misses), minus that cost
  local fresh, i, args = ngx.var.arg_fresh ~= nil, 0, ngx.var.arg_q
  local setArgs = ngx.req.set_uri_args
  local function prep()
    if fresh then i = i + 1; setArgs("q=" .. args .. "&n=" .. i) end
  end
  local function once() prep() access() end
  local function base() prep() end
  local function best(fn)
    for _ = 1, 1000 do fn() end
    local b = math.huge
    for _ = 1, 5 do local t = os.clock(); for _ = 1, n do fn() end; b = math.min(b, os.clock() - t) end
    return b / n
  end
  ngx.say(string.format("%.0f", (best(once) - best(base)) * 1e9))
}
}
location / {`,
    );
    await writeFile(join(dir, "nginx.conf"), conf);
    const n = await startBundle(dir, { port, bin, env: ENV });
    s.watchLog("gate handlers timed inside nginx", () => n.errorLog());
    try {
      const out: Record<string, number> = {};
      for (const [f, query] of [
        ["originSecret", ""],
        ["ipRules", ""],
        ["rateLimit", ""],
        ["waf", "&q=hello+world"],
        ["waf-fresh", "&q=hello+world&fresh=1"],
        ["waf-lookalike-fresh", "&q=o%27brien+union+station&fresh=1"],
      ] as const) {
        const gate = f.startsWith("waf") ? "waf" : f;
        const r = await fetch(`${n.baseUrl}/__gate_cpu?f=${gate}${query}`, { headers: gatesHeaders(ALL_GATES) });
        const text = (await r.text()).trim();
        if (r.status !== 200) throw new Error(`handler timing of ${f}: ${r.status} ${text}`);
        out[f] = Number(text);
      }
      return out;
    } finally {
      await n.stop();
    }
  }
}

/**
 * Cache-HIT throughput (disk tier, 1 KiB) with every access gate on vs the same bundle with no gates, and with
 * each gate alone, in interleaved rounds; plus the worker CPU per request of the same runs and each
 * handler's CPU measured inside nginx.
 */
export async function gatesScenario(ctx: BenchContext): Promise<Section[]> {
  const s = new Scenario(ctx.bin, ctx.clientBin);
  return s.run(async () => {
    const origin = await startOrigin(s);
    const redis = await startRedis();
    s.cleanup.add(() => redis.stop());
    const rctx = { redisPort: redis.port };
    const target = `${PATH}?${QUERY}`;
    const signed = signPath({ path: `/downloads/obj?${QUERY}`, expires: Math.floor(Date.now() / 1000) + 86400, key: SIGN_KEY });

    const variants: { name: string; gates: Gate[]; path?: string }[] = [
      { name: "no gates (baseline)", gates: [] },
      { name: "all gates", gates: ALL_GATES },
      { name: "origin secret", gates: ["originSecret"] },
      { name: "IP rules (5,000 CIDRs, X-Forwarded-For)", gates: ["ipRules"] },
      { name: "node rate limit", gates: ["rateLimit"] },
      { name: "node rate limit, RateLimit-* headers on every response", gates: ["rateLimitWithHeaders"] },
      { name: "WAF (all rule sets)", gates: ["waf"] },
      { name: "JWT HS256 (cookie, verified-token cache hit)", gates: ["jwt"] },
      { name: "signed URLs (scoped to a path not requested)", gates: ["signedUrls"] },
      { name: "signed URLs (in scope, valid signature)", gates: ["signedUrls"], path: signed },
      { name: "cluster rate limit (Redis EVALSHA)", gates: ["rateLimitCluster"] },
    ];
    // every variant gets every gate's headers: the requests are the same bytes, only the bundle differs
    const headers = gatesHeaders(ALL_GATES);
    const targets: Target[] = [];
    for (const v of variants) {
      const n = await s.bootPolicy(v.name, gatesPolicy(origin.address, v.gates, rctx), ENV);
      const path = v.path ?? target;
      for (let i = 0; i < 2; i++) await expectHit(v.name, `${n.baseUrl}${path}`, headers, KIB);
      await expectHit(v.name, `${n.baseUrl}${path}`, headers, KIB, (p) => (p.headers.get("x-cache") === "HIT" ? undefined : `X-Cache: ${p.headers.get("x-cache")}`));
      targets.push(nginxTarget(v.name, n, path, { headers }));
    }
    const r = await runRounds("gates", targets, origin);
    const base = variants[0]!.name;
    const rows = targets.map((t) => {
      const c = cpuRatio(r, t.name, base);
      return { config: t.name, ratio: rpsRatio(r, t.name, base), cpuUs: cpu(r, t.name), note: t.name === base ? "" : `CPU +${((c.median - 1) * 100).toFixed(1)}%` };
    });
    const all = rpsRatio(r, "all gates", base);
    const allCpu = cpuRatio(r, "all gates", base);
    const ns = await handlerNs(s);
    return [
      {
        title: "Access gates (disk HIT, 1 KiB)",
        baseline: base,
        rows,
        notes: [
          noiseNote(r),
          `all gates (${ALL_GATES.join(", ")}) vs none: x${all.median.toFixed(3)} req/s; the gates add ${((allCpu.median - 1) * 100).toFixed(1)}% worker CPU per request (target: under 10%, ${verdict(allCpu.median < 1.1)})`,
          `handlers alone (CPU in nginx, best of 5 x 20k calls): origin secret ${ns.originSecret} ns, IP rules (5,000 CIDRs, X-Forwarded-For) ${ns.ipRules} ns, ` +
            `node rate limit ${ns.rateLimit} ns, WAF ${ns.waf} ns (path, query and user agent seen before), ${ns["waf-fresh"]} ns (a query not seen before), ` +
            `${ns["waf-lookalike-fresh"]} ns (a new query with lookalike words: o'brien, union); not JWT: its header writes, repeated in one request, grow the header list and overstate it`,
        ],
      },
    ];
  });
}
