import type { NginxBinary } from "../../src/runtime/nginx.js";
import type { Policy } from "../../src/policy/types.js";
import { startMockOrigin } from "../../test/support/mock-origin.js";
import { startRedis } from "../../test/support/redis.js";
import { bootPolicy, Cleanup, CONNECTIONS, report, SECONDS, wrk, type WrkResult } from "../lib.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

/** The access gates a bench policy can turn on (the other gates add their entry here). */
export type Gate = "rateLimit" | "rateLimitCluster";

/** What one gate adds to the bench policy, and what every request must carry to get through it. */
interface GateSetup {
  policy: (ctx: { redisPort?: number }) => Partial<Policy>;
  headers?: Record<string, string>;
  needsRedis?: boolean;
}

/**
 * Each gate configured so that every benchmark request passes it (a HIT that a gate refuses would measure
 * the refusal, not the gate): the rate limit is far above what wrk can send.
 */
const GATES: Record<Gate, GateSetup> = {
  rateLimit: { policy: () => ({ rateLimit: [{ name: "bench", rate: "1000000r/s", burst: 10_000_000 }] }) },
  rateLimitCluster: {
    needsRedis: true,
    policy: ({ redisPort }) => ({
      redis: { port: redisPort, timeout: "50ms" },
      rateLimit: [{ name: "bench-cluster", rate: "1000000r/s", burst: 10_000_000, scope: "cluster" }],
    }),
  },
};

/** The gates of the "all gates on" bundle (node-scoped rate limit; Redis is measured separately). */
export const ALL_GATES: Gate[] = ["rateLimit"];

/** A cache-HIT policy with the given gates on; with no gates it is the baseline bundle. */
export function gatesPolicy(originAddress: string, gates: readonly Gate[], ctx: { redisPort?: number } = {}): Omit<Policy, "listen"> {
  const p: Omit<Policy, "listen"> = {
    name: `bench-gates-${gates.length}`,
    workers: { processes: 1 },
    origins: { app: { servers: [{ address: originAddress }] } },
    cache: { ttl: { "200": "1h" } },
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
 * Cache-HIT throughput of a 1 KiB object with every access gate on vs the same bundle with no gates, in one
 * run: alternating rounds, median of each. Also the cluster-scoped (Redis) rate limit alone, for reference.
 */
export async function gatesScenario(bin: NginxBinary): Promise<void> {
  const cleanup = new Cleanup();
  try {
    const origin = await startMockOrigin();
    cleanup.add(() => origin.close());
    origin.route("/obj", { headers: { "content-type": "text/plain", "cache-control": "max-age=3600" }, body: "x".repeat(1024) });
    const redis = await startRedis();
    cleanup.add(() => redis.stop());
    const ctx = { redisPort: redis.port };

    const variants: { name: string; gates: Gate[] }[] = [
      { name: "no gates (baseline), disk HIT", gates: [] },
      { name: `all gates (${ALL_GATES.join(", ")}), disk HIT`, gates: ALL_GATES },
      { name: "cluster rate limit (Redis EVALSHA), disk HIT", gates: ["rateLimitCluster"] },
    ];
    const targets: { name: string; url: string; headers: Record<string, string> }[] = [];
    for (const v of variants) {
      const n = await bootPolicy(bin, gatesPolicy(origin.address, v.gates, ctx), cleanup);
      targets.push({ name: v.name, url: `${n.baseUrl}/obj`, headers: gatesHeaders(v.gates) });
    }
    const rounds: WrkResult[][] = targets.map(() => []);
    for (let round = 0; round < ROUNDS; round++) {
      for (let t = 0; t < targets.length; t++) rounds[t]!.push(await wrk(targets[t]!.name, targets[t]!.url, { headers: targets[t]!.headers }));
    }
    const results = rounds.map((rs) => [...rs].sort((x, y) => x.rps - y.rps)[Math.floor(rs.length / 2)]!);
    report(
      `access gates: cache HIT with all gates vs none, 1 worker each, wrk -c${CONNECTIONS} -d${SECONDS}s, median of ${ROUNDS} alternating rounds (${bin.version}, ${bin.kind})`,
      results,
    );
    const ratio = results[1]!.rps / results[0]!.rps;
    console.log(`  all gates vs none: x${ratio.toFixed(3)} (target: cost under 10%, ${ratio >= 0.9 ? "met" : "NOT met"})`);
    console.log(`  origin requests: ${origin.hits("/obj")} (the caches served the rest)`);
  } finally {
    await cleanup.run();
  }
}
