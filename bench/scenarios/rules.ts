import { performance } from "node:perf_hooks";
import { compile } from "../../src/compile.js";
import type { Policy } from "../../src/policy/types.js";
import { costBundle } from "../../test/support/rules-cost.js";
import { cpu, expectHit, KIB, nginxTarget, noiseNote, rpsRatio, targetLine, runRounds, Scenario, startOrigin, type BenchContext, type Target } from "../lib.js";
import { cachePolicy, ENV, PATH, rulesEndingWithTarget } from "../policies.js";
import { summarize, type Section } from "../stats.js";

const TEN = "10 rules, disk HIT";
const THOUSAND = "1,000 rules, disk HIT";
const NONE = "no rules (reference), disk HIT";

function policy(origin: string, rules: number): Omit<Policy, "listen"> {
  const p = cachePolicy(`bench-rules-${rules}`, origin);
  return rules ? { ...p, rules: rulesEndingWithTarget(rules) } : p;
}

/**
 * The rules' access handler alone, in LuaJIT with a stubbed `ngx` (test/support/rules-cost.ts): CPU time per
 * request in nanoseconds, best of 3 processes, with the JIT (what production runs; LuaJIT forms traces with
 * some randomness, so a run is either fast or slow: the best of 3) and with the interpreter (the work done).
 */
async function luaNsPerRequest(p: Omit<Policy, "listen">, jit: boolean): Promise<number> {
  const b = await costBundle({ ...p, listen: { http: 8080 } } as Policy);
  try {
    let best = Infinity;
    for (let i = 0; i < 3; i++) best = Math.min(best, (await b.measure({ uri: PATH }, { jit })).ns);
    return best;
  } finally {
    await b.remove();
  }
}

/**
 * Cache-HIT throughput with 10 rules vs 1,000 rules of the same shape (exact paths, prefixes, globs,
 * extensions, hosts), the matched rule last in both, and no rules for reference, in interleaved rounds;
 * plus the compile time of the 1,000-rule policy and the rules' handler timed alone in LuaJIT.
 */
export async function rulesScenario(ctx: BenchContext): Promise<Section[]> {
  const s = new Scenario(ctx.bin, ctx.clientBin);
  return s.run(async () => {
    const origin = await startOrigin(s);
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const { bundle } = compile({ ...policy(origin.address, 1000), listen: { http: 8080 } });
      times.push(performance.now() - t0);
      if (!bundle) throw new Error("the 1,000-rule policy did not compile");
    }
    const ten = await s.bootPolicy("10 rules", policy(origin.address, 10), ENV);
    const thousand = await s.bootPolicy("1,000 rules", policy(origin.address, 1000), ENV);
    const none = await s.bootPolicy("no rules", policy(origin.address, 0), ENV);
    for (const n of [ten, thousand, none]) for (let i = 0; i < 2; i++) await expectHit("warm", `${n.baseUrl}${PATH}`, {}, KIB);
    const hit = (p: { headers: Headers }) => (p.headers.get("x-cache") === "HIT" ? undefined : `X-Cache: ${p.headers.get("x-cache")}`);
    for (const n of [ten, thousand]) await expectHit("rules", `${n.baseUrl}${PATH}`, {}, KIB, (p) => hit(p) ?? (p.headers.get("x-rule") === "target" ? undefined : `X-Rule: ${p.headers.get("x-rule")}`));
    await expectHit("no rules", `${none.baseUrl}${PATH}`, {}, KIB, hit);
    const targets: Target[] = [nginxTarget(TEN, ten, PATH), nginxTarget(THOUSAND, thousand, PATH), nginxTarget(NONE, none, PATH)];
    const r = await runRounds("rules", targets, origin);
    const rows = targets.map((t) => ({ config: t.name, ratio: rpsRatio(r, t.name, TEN), cpuUs: cpu(r, t.name) }));
    const ct = summarize(times);
    const lua: string[] = [];
    for (const jit of [true, false]) {
      const ns: string[] = [];
      for (const n of [10, 1000, 10_000, 50_000]) ns.push(`${n.toLocaleString("en")}: ${(await luaNsPerRequest(policy(origin.address, n), jit)).toFixed(0)} ns`);
      lua.push(`rules evaluation alone (LuaJIT${jit ? "" : " interpreter"}, stubbed ngx, matched rule last): ${ns.join(", ")}`);
    }
    return [
      {
        title: "Rules engine (disk HIT, 1 KiB, the matching rule last)",
        baseline: TEN,
        rows,
        notes: [
          noiseNote(r),
          targetLine(r, "1,000 vs 10 rules", THOUSAND, TEN, (x) => Math.abs(1 - x) <= 0.1, "within 10%"),
          `compile time of the 1,000-rule policy (validate + analyse + lower + emit): median ${ct.median.toFixed(0)} ms [${ct.min.toFixed(0)}–${ct.max.toFixed(0)}] of 5`,
          ...lua,
        ],
      },
    ];
  });
}
