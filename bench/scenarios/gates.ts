import { createHmac } from "node:crypto";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { compile } from "../../src/compile.js";
import { writeBundleTo } from "../../src/emit/write.js";
import type { Policy } from "../../src/policy/types.js";
import { env } from "../../src/policy/env.js";
import { freePort, startBundle, type NginxBinary } from "../../src/runtime/nginx.js";
import { signPath } from "../../src/sign.js";
import { startMockOrigin } from "../../test/support/mock-origin.js";
import { startRedis } from "../../test/support/redis.js";
import { bootPolicy, Cleanup, CONNECTIONS, report, SECONDS, wrk, type WrkResult, benchDir } from "../lib.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

const EDGE_SECRET = "bench-edge-secret-0123456789abcdef";
const JWT_SECRET = "bench-jwt-secret-0123456789abcdef";
const SIGN_KEY = "bench-sign-key-0123456789abcdef";
/** The environment of every bench bundle (the secrets the gates name with env("...")). */
const ENV = { BENCH_EDGE_SECRET: EDGE_SECRET, BENCH_JWT_SECRET: JWT_SECRET, BENCH_SIGN_KEY: SIGN_KEY };

/** The object every variant requests: a path, a query with lookalike words, inspected by the WAF. */
const PATH = "/bench/obj";
const QUERY = "q=o%27brien+union+station&page=2";

const b64u = (x: string | Buffer) => Buffer.from(x).toString("base64url");

/** An HS256 token valid for a day (sent in a cookie: an Authorization header would bypass the cache). */
function hs256Token(): string {
  const input = `${b64u(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${b64u(JSON.stringify({ sub: "bench", exp: Math.floor(Date.now() / 1000) + 86400 }))}`;
  return `${input}.${b64u(createHmac("sha256", JWT_SECRET).update(input).digest())}`;
}

/** 5,000 deny blocks (4,000 IPv4 /24s and 1,000 IPv6 /48s), deterministic, none covering the bench client. */
function denyList(): string[] {
  let x = 7;
  const rnd = () => (x = (x * 1103515245 + 12345) % 2 ** 31);
  const out: string[] = [];
  while (out.length < 4000) {
    const a = 11 + (rnd() % 100);
    if (a !== 127) out.push(`${a}.${rnd() % 256}.${rnd() % 256}.0/24`);
  }
  while (out.length < 5000) out.push(`2a0${rnd() % 10}:${(rnd() % 0xffff).toString(16)}:${(rnd() % 0xffff).toString(16)}::/48`);
  return out;
}

/** The access gates a bench policy can turn on. */
export type Gate = "originSecret" | "ipRules" | "rateLimit" | "waf" | "jwt" | "signedUrls" | "rateLimitWithHeaders" | "rateLimitCluster";

/** What one gate adds to the bench policy, and what every request must carry to get through it. */
interface GateSetup {
  policy: (ctx: { redisPort?: number }) => Partial<Policy>;
  headers?: Record<string, string>;
}

/**
 * Each gate configured so that every benchmark request passes it (a HIT that a gate refuses would measure
 * the refusal, not the gate).
 */
const GATES: Record<Gate, GateSetup> = {
  originSecret: { policy: () => ({ originSecret: { secret: env("BENCH_EDGE_SECRET") } }), headers: { "X-Origin-Secret": EDGE_SECRET } },
  // 5,000 denied blocks; the client (198.51.100.23) is taken from X-Forwarded-For, sent by the trusted 127.0.0.1
  ipRules: {
    policy: () => ({ ipRules: { deny: denyList(), trustedProxies: ["127.0.0.1"] } }),
    headers: { "X-Forwarded-For": "198.51.100.23, 127.0.0.1" },
  },
  // far above what wrk can send: every request takes a token, none is refused
  rateLimit: { policy: () => ({ rateLimit: [{ name: "bench", rate: "1000000r/s", burst: 10_000_000 }] }) },
  rateLimitWithHeaders: { policy: () => ({ rateLimit: [{ name: "bench", rate: "1000000r/s", burst: 10_000_000, headers: true }] }) },
  rateLimitCluster: {
    policy: ({ redisPort }) => ({
      redis: { port: redisPort, timeout: "50ms" },
      rateLimit: [{ name: "bench-cluster", rate: "1000000r/s", burst: 10_000_000, scope: "cluster" }],
    }),
  },
  // every built-in rule set on the path, the query and the user agent
  waf: { policy: () => ({ waf: {} }), headers: { "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0" } },
  // one valid token for the whole run: after the first request per worker it is a hit of the worker's
  // verified-token cache (claims still checked for exp/nbf on every request)
  jwt: {
    policy: () => ({ jwt: { algorithms: ["HS256"], secret: env("BENCH_JWT_SECRET"), cookie: "tok", forwardClaims: { sub: "X-User" } } }),
    headers: { Cookie: `tok=${hs256Token()}` },
  },
  // scoped to a download area the bench does not request: the realistic case for a site whose hot
  // cached pages are public (the in-scope cost, with a valid signature, is measured separately)
  signedUrls: { policy: () => ({ signedUrls: { paths: ["/downloads/*"], secret: env("BENCH_SIGN_KEY") } }) },
};

/** The gates of the "all gates on" bundle (node-scoped rate limit; the Redis one is measured alone). */
export const ALL_GATES: Gate[] = ["originSecret", "ipRules", "rateLimit", "waf", "jwt", "signedUrls"];

/** A cache-HIT policy with the given gates on; with no gates it is the baseline bundle. */
export function gatesPolicy(originAddress: string, gates: readonly Gate[], ctx: { redisPort?: number } = {}): Omit<Policy, "listen"> {
  const p: Omit<Policy, "listen"> = {
    name: `bench-gates-${gates.length}`,
    workers: { processes: 1 },
    origins: { app: { servers: [{ address: originAddress }] } },
    cache: { ttl: { "200": "1h" }, key: { query: "all" } },
    headers: { response: { set: { "X-Served-By": "edge" } } },
    accessLog: { format: "off" },
  };
  for (const g of gates) {
    const part = GATES[g].policy(ctx);
    // list-valued gates (rate limits) add up; others are one key each
    for (const [k, v] of Object.entries(part)) {
      const prev = (p as Record<string, unknown>)[k];
      (p as Record<string, unknown>)[k] = Array.isArray(prev) && Array.isArray(v) ? [...prev, ...v] : v;
    }
  }
  return p;
}

/** Request headers the given gates need (a secret header, a token...). */
export function gatesHeaders(gates: readonly Gate[]): Record<string, string> {
  return Object.assign({}, ...gates.map((g) => GATES[g].headers ?? {}));
}

/**
 * CPU time of some gates' access handlers alone (not JWT's: the claim headers it clears and sets on every
 * call pile up when called 100,000 times in one request), measured inside nginx (os.clock around 20,000 calls, best
 * of 5, minus the cost of the loop's own preparation) on a benign request: free of the wall-clock noise of a
 * shared machine.
 */
async function handlerNs(bin: NginxBinary): Promise<Record<string, number>> {
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
  try {
    await writeBundleTo(bundle, dir);
    const conf = (await readFile(join(dir, "nginx.conf"), "utf8")).replace(
      "location / {",
      `location = /__gate_cpu {
content_by_lua_block {
  local n, f = 20000, ngx.var.arg_f
  local data = require("policy_data").features[f]
  data.scope = nil
  local file = ({ originSecret = "origin-secret", ipRules = "ip-rules", waf = "waf", rateLimit = "rate-limit" })[f]
  local h = require("features." .. file)[f]:setup(data)
  if h.initWorker then h.initWorker() end
  local access = h.access
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
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Cache-HIT throughput of a 1 KiB object with every access gate on vs the same bundle with no gates, and
 * with each gate alone, in one run: alternating rounds, median of each; plus the worker CPU per request of
 * the same runs and each handler's CPU measured inside nginx.
 */
export async function gatesScenario(bin: NginxBinary): Promise<void> {
  const cleanup = new Cleanup();
  try {
    const origin = await startMockOrigin();
    cleanup.add(() => origin.close());
    origin.setDefault({ headers: { "content-type": "text/plain", "cache-control": "max-age=3600" }, body: "x".repeat(1024) });
    const redis = await startRedis();
    cleanup.add(() => redis.stop());
    const ctx = { redisPort: redis.port };
    const target = `${PATH}?${QUERY}`;
    const signed = signPath({ path: `/downloads/obj?${QUERY}`, expires: Math.floor(Date.now() / 1000) + 86400, key: SIGN_KEY });

    const variants: { name: string; gates: Gate[]; path?: string }[] = [
      { name: "no gates (baseline)", gates: [] },
      { name: "all gates", gates: ALL_GATES },
      { name: "origin secret", gates: ["originSecret"] },
      { name: "IP rules (5,000 CIDRs, X-Forwarded-For)", gates: ["ipRules"] },
      { name: "node rate limit", gates: ["rateLimit"] },
      { name: "node rate limit with RateLimit-* headers on every response", gates: ["rateLimitWithHeaders"] },
      { name: "WAF (all rule sets)", gates: ["waf"] },
      { name: "JWT HS256 (cookie, verified-token cache hit)", gates: ["jwt"] },
      { name: "signed URLs (scoped to a path not requested)", gates: ["signedUrls"] },
      { name: "signed URLs (in scope, valid signature)", gates: ["signedUrls"], path: signed },
      { name: "cluster rate limit (Redis EVALSHA)", gates: ["rateLimitCluster"] },
    ];
    const targets: { name: string; url: string; headers: Record<string, string>; pid: number }[] = [];
    for (const v of variants) {
      const n = await bootPolicy(bin, gatesPolicy(origin.address, v.gates, ctx), cleanup, ENV);
      // every variant gets every gate's headers: the requests are the same bytes, only the bundle differs
      targets.push({ name: v.name, url: `${n.baseUrl}${v.path ?? target}`, headers: gatesHeaders(ALL_GATES), pid: n.pid });
    }
    const rounds: WrkResult[][] = targets.map(() => []);
    for (let round = 0; round < ROUNDS; round++) {
      for (let t = 0; t < targets.length; t++) {
        const x = targets[t]!;
        rounds[t]!.push(await wrk(x.name, x.url, { headers: x.headers, pid: x.pid }));
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const results = rounds.map((rs) => [...rs].sort((x, y) => x.rps - y.rps)[Math.floor(rs.length / 2)]!);
    report(
      `access gates: cache HIT (disk, 1 KiB) with all gates, each gate alone and none, 1 worker each, wrk -c${CONNECTIONS} -d${SECONDS}s, median of ${ROUNDS} alternating rounds (${bin.version}, ${bin.kind})`,
      results,
    );
    const ratio = results[1]!.rps / results[0]!.rps;
    console.log(`  all gates (${ALL_GATES.join(", ")}) vs none: x${ratio.toFixed(3)} throughput (target: cost under 10%, ${ratio >= 0.9 ? "met" : "NOT met"}; wall clock: noisy on a shared machine)`);
    const cpu = rounds.map((rs) => median(rs.map((r) => r.cpuUs!)));
    const cpuCost = 1 - cpu[0]! / cpu[1]!;
    console.log(
      `  worker CPU per HIT (median of the same runs): ${cpu[0]!.toFixed(1)} µs without gates, ${cpu[1]!.toFixed(1)} µs with all of them:` +
        ` the gates take ${(cpuCost * 100).toFixed(1)}% of the worker's CPU per request (target: under 10%, ${cpuCost < 0.1 ? "met" : "NOT met"})`,
    );
    console.log(`  worker CPU per HIT, each variant: ${variants.map((v, i) => `${v.name} ${cpu[i]!.toFixed(1)} µs`).join("; ")}`);
    const ns = await handlerNs(bin);
    console.log(
      `  handlers alone (CPU in nginx, best of 5 x 20k calls): origin secret ${ns.originSecret} ns, IP rules (5,000 CIDRs, X-Forwarded-For) ${ns.ipRules} ns, ` +
        `node rate limit ${ns.rateLimit} ns, WAF ${ns.waf} ns (path, query and user agent seen before), ${ns["waf-fresh"]} ns (a query not seen before), ` +
        `${ns["waf-lookalike-fresh"]} ns (a new query with lookalike words: o'brien, union); not JWT: its header writes, repeated in one request, grow the header list and overstate it`,
    );
    console.log(`  origin requests: ${origin.requests.length} (${variants.length} bundles; the caches served the rest)`);
  } finally {
    await cleanup.run();
  }
}
