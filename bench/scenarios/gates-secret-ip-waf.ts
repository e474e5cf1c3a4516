import type { NginxBinary } from "../../src/runtime/nginx.js";
import { compile } from "../../src/compile.js";
import { writeBundleTo } from "../../src/emit/write.js";
import { freePort, startBundle } from "../../src/runtime/nginx.js";
import type { Policy } from "../../src/policy/types.js";
import { env } from "../../src/policy/env.js";
import { startMockOrigin } from "../../test/support/mock-origin.js";
import { bootPolicy, Cleanup, CONNECTIONS, report, SECONDS, wrk, type WrkResult } from "../lib.js";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { execa } from "execa";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECRET = "bench-secret-0123456789abcdef";

/** 5,000 deny blocks (IPv4 /24s and IPv6 /48s), deterministic. */
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

function policy(originAddress: string, gates: boolean): Omit<Policy, "listen"> {
  return {
    name: "bench-gates",
    workers: { processes: 1 },
    origins: { app: { servers: [{ address: originAddress }] } },
    cache: { ttl: { "200": "1h" }, key: { query: "all" } },
    accessLog: { format: "off" },
    ...(gates
      ? {
          originSecret: { secret: env("BENCH_EDGE_SECRET") },
          ipRules: { deny: denyList(), trustedProxies: ["127.0.0.1"] },
          waf: {},
        }
      : {}),
  };
}

/** CPU time (user + system, seconds) used so far by the worker processes of an nginx master. */
async function workerCpu(masterPid: number): Promise<number> {
  const { stdout } = await execa("pgrep", ["-P", String(masterPid)]);
  let ticks = 0;
  for (const pid of stdout.split("\n").filter(Boolean)) {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    ticks += Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15 of stat)
  }
  return ticks / 100; // USER_HZ
}

/** One wrk run; returns requests done and the workers' CPU time per request (µs). */
async function cpuRun(masterPid: number, url: string, headers: Record<string, string>): Promise<{ requests: number; cpuUs: number }> {
  const h = Object.entries(headers).flatMap(([k, v]) => ["-H", `${k}: ${v}`]);
  const before = await workerCpu(masterPid);
  const { stdout } = await execa("wrk", ["-t1", `-c${CONNECTIONS}`, `-d${SECONDS}s`, ...h, url]);
  const after = await workerCpu(masterPid);
  if (/Non-2xx or 3xx responses/.test(stdout)) throw new Error(`error responses from ${url}`);
  const requests = Number(/(\d+) requests in/.exec(stdout)?.[1]);
  return { requests, cpuUs: ((after - before) / requests) * 1e6 };
}

/**
 * CPU time of each gate's access handler alone, measured inside nginx (os.clock around 20,000 calls, best
 * of 5) on a benign request: free of the wall-clock noise of a shared machine.
 */
async function handlerNs(bin: NginxBinary, deny: string[]): Promise<Record<string, number>> {
  const port = await freePort();
  const { bundle } = compile(
    {
      name: "bench-gates-cpu",
      workers: { processes: 1 },
      origins: { app: { servers: [{ address: "127.0.0.1:9" }] } },
      accessLog: { format: "off" },
      // scoped away from the bench location: the handlers are called by hand there
      originSecret: { secret: env("BENCH_EDGE_SECRET"), paths: ["/none"] },
      ipRules: { deny, trustedProxies: ["127.0.0.1"], paths: ["/none"] },
      waf: { paths: ["/none"] },
      listen: { http: port, address: "127.0.0.1" },
    },
    { target: bin.kind },
  );
  const dir = await mkdtemp(join(tmpdir(), "cdn-bench-"));
  try {
    await writeBundleTo(bundle!, dir);
    const conf = (await readFile(join(dir, "nginx.conf"), "utf8")).replace(
      "location / {",
      `location = /__gate_cpu {
content_by_lua_block {
  local n, f = 20000, ngx.var.arg_f
  local data = require("policy_data").features[f]
  data.scope = nil
  local file = ({ originSecret = "origin-secret", ipRules = "ip-rules", waf = "waf" })[f]
  local h = require("features." .. file)[f]:setup(data)
  if h.initWorker then h.initWorker() end
  local secret = ngx.var.http_x_origin_secret
  local set = ngx.req.set_header
  local access = h.access
  -- the secret gate strips its header: put it back before each call, and subtract that cost
  -- "fresh": a new query string on every call (the WAF's memo of seen values misses), minus that cost
  local fresh, i, args = ngx.var.arg_fresh ~= nil, 0, ngx.var.arg_q
  local setArgs = ngx.req.set_uri_args
  local function prep()
    if f == "originSecret" then set("X-Origin-Secret", secret) end
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
    const n = await startBundle(dir, { port, bin, env: { BENCH_EDGE_SECRET: SECRET } });
    try {
      const out: Record<string, number> = {};
      for (const [f, query] of [
        ["originSecret", ""],
        ["ipRules", ""],
        ["waf", "&q=hello+world"],
        ["waf-fresh", "&q=hello+world&fresh=1"],
        ["waf-lookalike-fresh", "&q=o%27brien+union+station&fresh=1"],
      ] as const) {
        const gate = f.startsWith("waf") ? "waf" : f;
        const r = await fetch(`${n.baseUrl}/__gate_cpu?f=${gate}${query}`, {
          headers: { "x-origin-secret": SECRET, "x-forwarded-for": "198.51.100.23, 127.0.0.1", "user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0" },
        });
        out[f] = Number((await r.text()).trim());
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
 * Cache-HIT throughput of the same bundle with no gates and with the origin secret, IP rules (5,000 deny
 * blocks, client address from X-Forwarded-For) and WAF gates (all built-in rule sets; path, query and
 * user agent inspected), 1 worker each, alternating rounds, median per bundle.
 */
export async function gatesSecretIpWafScenario(bin: NginxBinary): Promise<void> {
  const cleanup = new Cleanup();
  try {
    const origin = await startMockOrigin();
    cleanup.add(() => origin.close());
    origin.route("/bench/obj", { headers: { "content-type": "text/plain", "cache-control": "max-age=3600" }, body: "x".repeat(1024) });

    const none = await bootPolicy(bin, policy(origin.address, false), cleanup);
    // the gated bundle needs the secret in nginx's environment
    const port = await freePort();
    const { bundle, diagnostics } = compile({ ...policy(origin.address, true), listen: { http: port, address: "127.0.0.1" } }, { target: bin.kind });
    if (!bundle) throw new Error(JSON.stringify(diagnostics, null, 2));
    const dir = await mkdtemp(join(tmpdir(), "cdn-bench-"));
    cleanup.add(() => rm(dir, { recursive: true, force: true }));
    await writeBundleTo(bundle, dir);
    const gated = await startBundle(dir, { port, bin, env: { BENCH_EDGE_SECRET: SECRET } });
    cleanup.add(() => gated.stop());

    const path = "/bench/obj?q=o%27brien+union+station&page=2";
    const headers = {
      "x-origin-secret": SECRET,
      "x-forwarded-for": "198.51.100.23, 127.0.0.1",
      "user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    };
    const targets: [string, string][] = [
      ["no gates (baseline), disk HIT", none.baseUrl + path],
      ["secret + 5,000-CIDR IP rules + WAF, disk HIT", gated.baseUrl + path],
    ];
    const rounds: WrkResult[][] = targets.map(() => []);
    const cpu: number[][] = targets.map(() => []);
    const pids = [none.pid, gated.pid];
    for (let round = 0; round < ROUNDS; round++) {
      for (let t = 0; t < targets.length; t++) {
        rounds[t]!.push(await wrk(targets[t]![0], targets[t]![1], { headers }));
        cpu[t]!.push((await cpuRun(pids[t]!, targets[t]![1], headers)).cpuUs);
      }
    }
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
    const results = rounds.map((rs) => [...rs].sort((x, y) => x.rps - y.rps)[Math.floor(rs.length / 2)]!);
    report(`access gates (origin secret, IP rules, WAF): cache HIT, 1 worker each, wrk -c${CONNECTIONS} -d${SECONDS}s, median of ${ROUNDS} alternating rounds (${bin.version}, ${bin.kind})`, results);
    const cost = 1 - results[1]!.rps / results[0]!.rps;
    console.log(`  throughput cost of the three gates: ${(cost * 100).toFixed(1)}% (wall clock: noisy on a shared machine)`);
    const [c0, c1] = [median(cpu[0]!), median(cpu[1]!)];
    const cpuCost = 1 - c0 / c1;
    console.log(
      `  worker CPU per HIT: ${c0.toFixed(1)} µs without gates, ${c1.toFixed(1)} µs with them (median of ${ROUNDS}; rounds ${cpu[0]!.map((x) => x.toFixed(1)).join("/")} vs ${cpu[1]!.map((x) => x.toFixed(1)).join("/")}):` +
        ` the gates take ${(cpuCost * 100).toFixed(1)}% of the worker's CPU per request (target: under 10%, ${cpuCost < 0.1 ? "met" : "NOT met"})`,
    );
    const ns = await handlerNs(bin, denyList());
    console.log(
      `  handlers alone (CPU in nginx, best of 5 x 20k calls): origin secret ${ns.originSecret} ns, IP rules (5,000 CIDRs, X-Forwarded-For) ${ns.ipRules} ns, ` +
        `WAF ${ns.waf} ns (path, query and user agent seen before), ${ns["waf-fresh"]} ns (a query not seen before), ` +
        `${ns["waf-lookalike-fresh"]} ns (a new query with lookalike words: o'brien, union)`,
    );
    console.log(`  origin requests: ${origin.hits("/bench/obj")} (the caches served the rest)`);
  } finally {
    await cleanup.run();
  }
}
