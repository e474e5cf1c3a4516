import { execa } from "execa";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { compile } from "../../src/compile.js";
import { writeBundleTo } from "../../src/emit/write.js";
import type { Policy } from "../../src/policy/types.js";
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
 * The rules' access handler alone, in LuaJIT with a stubbed `ngx` (no nginx, no network): CPU time per
 * request for a policy, in nanoseconds. Deterministic enough to show how evaluation scales with rule count.
 */
const DRIVER = `
local dir, n = arg[1], tonumber(arg[2])
package.path = dir .. "/lua/?.lua;" .. package.path
local vars = { uri = "${PATH}", host = "127.0.0.1", cdn_rules_on = "1", remote_addr = "127.0.0.1" }
-- patterns are compiled (checked) at setup; none may run on this request's path
local ready = false
ngx = { var = vars, req = { get_method = function() return "GET" end }, shared = {}, ERR = 4, WARN = 5,
  log = function() end, timer = { at = function() return true end },
  re = { find = function() if ready then error("no regex expected on this path") end return nil end } }
local data = require("policy_data").features.rules
local feature = require("features.rules").rules
local access = feature.setup(data).access.rules
ready = true
for _ = 1, n do access() end
local best = math.huge
for _ = 1, 5 do
  local t = os.clock()
  for _ = 1, n do access() end
  best = math.min(best, os.clock() - t)
end
assert(vars.cdn_rules ~= nil, "the target rule did not match")
io.write(string.format("%.0f", best / n * 1e9))
`;

async function luaNsPerRequest(p: Omit<Policy, "listen">): Promise<number> {
  const { bundle } = compile({ ...p, listen: { http: 8080 } });
  if (!bundle) throw new Error("policy did not compile");
  const dir = await mkdtemp(join(tmpdir(), "cdn-bench-lua-"));
  try {
    await writeBundleTo(bundle, dir);
    await writeFile(join(dir, "driver.lua"), DRIVER);
    const { stdout } = await execa("luajit", [join(dir, "driver.lua"), dir, "200000"], { timeout: 120_000 });
    return Number(stdout);
  } finally {
    await rm(dir, { recursive: true, force: true });
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
    const ns10 = await luaNsPerRequest(policy(origin.address, 10));
    const ns1000 = await luaNsPerRequest(policy(origin.address, 1000));
    return [
      {
        title: "Rules engine (disk HIT, 1 KiB, the matching rule last)",
        baseline: TEN,
        rows,
        notes: [
          noiseNote(r),
          targetLine(r, "1,000 vs 10 rules", THOUSAND, TEN, (x) => Math.abs(1 - x) <= 0.1, "within 10%"),
          `compile time of the 1,000-rule policy (validate + analyse + lower + emit): median ${ct.median.toFixed(0)} ms [${ct.min.toFixed(0)}–${ct.max.toFixed(0)}] of 5`,
          `rules evaluation alone (LuaJIT, stubbed ngx, best of 5 x 200k): 10 rules ${ns10} ns/request, 1,000 rules ${ns1000} ns/request (x${(ns1000 / ns10).toFixed(2)})`,
        ],
      },
    ];
  });
}
