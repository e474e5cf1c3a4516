import { performance } from "node:perf_hooks";
import type { NginxBinary } from "../../src/runtime/nginx.js";
import { compile } from "../../src/compile.js";
import type { Policy, Rule } from "../../src/policy/types.js";
import { startMockOrigin } from "../../test/support/mock-origin.js";
import { manyRules } from "../../test/support/many-rules.js";
import { costBundle } from "../../test/support/rules-cost.js";
import { bootPolicy, Cleanup, CONNECTIONS, report, SECONDS, wrk, type WrkResult } from "../lib.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

/** The rule every benchmark request matches, placed last: the worst case for a linear evaluation. */
const TARGET: Rule = { name: "bench-target", when: { path: "/bench/obj" }, then: { responseHeaders: { set: { "X-Rule": "target" } } } };

function policy(originAddress: string, rules: Rule[] | undefined): Omit<Policy, "listen"> {
  return {
    name: "bench-rules",
    workers: { processes: 1 },
    origins: { app: { servers: [{ address: originAddress }] } },
    cache: { ttl: { "200": "1h" } },
    accessLog: { format: "off" },
    ...(rules ? { rules } : {}),
  };
}

/**
 * The rules' access handler alone, in LuaJIT with a stubbed `ngx` (test/support/rules-cost.ts): CPU time per
 * request in nanoseconds, best of 3 processes, for 10 / 1,000 / 10,000 / 50,000 rules of the same shapes.
 * With the JIT (what production runs; LuaJIT randomises trace formation, so a run is either fast or slow: the
 * best of 3) and with the interpreter (the work done, steady).
 */
async function luaCosts(originAddress: string): Promise<void> {
  const sizes = [10, 1000, 10_000, 50_000];
  for (const jit of [true, false]) {
    const row: string[] = [];
    for (const n of sizes) {
      const b = await costBundle({ ...policy(originAddress, [...manyRules(n - 1), TARGET]), listen: { http: 8080 } } as Policy);
      try {
        let best = Infinity;
        for (let i = 0; i < 3; i++) best = Math.min(best, (await b.measure({ uri: "/bench/obj" }, { jit })).ns);
        row.push(`${n.toLocaleString("en")} rules ${best.toFixed(0)} ns`);
      } finally {
        await b.remove();
      }
    }
    console.log(`  rules evaluation alone (LuaJIT${jit ? "" : " interpreter"}, stubbed ngx, matched rule last): ${row.join(", ")}`);
  }
}

/**
 * Cache-HIT throughput with 10 rules vs 1,000 rules of the same shape (exact paths, prefixes, globs,
 * extensions, hosts), the matched rule last in both; plus the compile time of the 1,000-rule policy.
 */
export async function rulesScenario(bin: NginxBinary): Promise<void> {
  const cleanup = new Cleanup();
  try {
    const origin = await startMockOrigin();
    cleanup.add(() => origin.close());
    origin.route("/bench/obj", { headers: { "content-type": "text/plain", "cache-control": "max-age=3600" }, body: "x".repeat(1024) });

    const big = [...manyRules(999), TARGET];
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const { bundle } = compile({ ...policy(origin.address, big), listen: { http: 8080 } });
      times.push(performance.now() - t0);
      if (!bundle) throw new Error("the 1,000-rule policy did not compile");
    }
    times.sort((x, y) => x - y);

    const ten = await bootPolicy(bin, policy(origin.address, [...manyRules(9), TARGET]), cleanup);
    const thousand = await bootPolicy(bin, policy(origin.address, big), cleanup);
    const none = await bootPolicy(bin, policy(origin.address, undefined), cleanup);
    // three alternating rounds, median of each: the machine is shared, and one noisy run should not decide
    const targets: [string, string][] = [
      ["10 rules (baseline), disk HIT", `${ten.baseUrl}/bench/obj`],
      ["1,000 rules, disk HIT", `${thousand.baseUrl}/bench/obj`],
      ["no rules (reference), disk HIT", `${none.baseUrl}/bench/obj`],
    ];
    const rounds: WrkResult[][] = targets.map(() => []);
    for (let round = 0; round < ROUNDS; round++) {
      for (let t = 0; t < targets.length; t++) rounds[t]!.push(await wrk(targets[t]![0], targets[t]![1]));
    }
    const results = rounds.map((rs) => [...rs].sort((x, y) => x.rps - y.rps)[Math.floor(rs.length / 2)]!);
    report(
      `rules engine: cache HIT with 10 vs 1,000 rules, 1 worker each, wrk -c${CONNECTIONS} -d${SECONDS}s, median of ${ROUNDS} alternating rounds (${bin.version}, ${bin.kind})`,
      results,
    );
    const ratio = results[1]!.rps / results[0]!.rps;
    console.log(`  1,000 vs 10 rules: x${ratio.toFixed(3)} (target: within 10%, ${Math.abs(1 - ratio) <= 0.1 ? "met" : "NOT met"})`);
    console.log(`  compile time of the 1,000-rule policy (validate + analyse + lower + emit): median ${times[2]!.toFixed(0)} ms, min ${times[0]!.toFixed(0)} ms, max ${times[4]!.toFixed(0)} ms (target: under 1,000 ms)`);
    await luaCosts(origin.address);
    console.log(`  origin requests: ${origin.hits("/bench/obj")} (the caches served the rest)`);
  } finally {
    await cleanup.run();
  }
}
