import type { NginxBinary } from "../../src/runtime/nginx.js";
import { compile } from "../../src/compile.js";
import { writeBundleTo } from "../../src/emit/write.js";
import { freePort, startBundle } from "../../src/runtime/nginx.js";
import type { Policy } from "../../src/policy/types.js";
import { env } from "../../src/policy/env.js";
import { startMockOrigin } from "../../test/support/mock-origin.js";
import { bootPolicy, Cleanup, CONNECTIONS, report, SECONDS, wrk, type WrkResult } from "../lib.js";
import { mkdtemp, rm } from "node:fs/promises";
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
    for (let round = 0; round < ROUNDS; round++) {
      for (let t = 0; t < targets.length; t++) rounds[t]!.push(await wrk(targets[t]![0], targets[t]![1], { headers }));
    }
    const results = rounds.map((rs) => [...rs].sort((x, y) => x.rps - y.rps)[Math.floor(rs.length / 2)]!);
    report(`access gates (origin secret, IP rules, WAF): cache HIT, 1 worker each, wrk -c${CONNECTIONS} -d${SECONDS}s, median of ${ROUNDS} alternating rounds (${bin.version}, ${bin.kind})`, results);
    const cost = 1 - results[1]!.rps / results[0]!.rps;
    console.log(`  cost of the three gates: ${(cost * 100).toFixed(1)}% of hit throughput (target: under 10%, ${cost < 0.1 ? "met" : "NOT met"})`);
    console.log(`  origin requests: ${origin.hits("/bench/obj")} (the caches served the rest)`);
  } finally {
    await cleanup.run();
  }
}
