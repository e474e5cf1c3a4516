import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { compile } from "../../src/compile.js";
import { writeBundleTo } from "../../src/emit/write.js";
import { freePort, startBundle } from "../../src/runtime/nginx.js";
import { benchDir, cpu, cpuRatio, expectHit, KIB, nginxTarget, noiseNote, rpsRatio, runRounds, Scenario, startOrigin, verdict, type BenchContext, type Target } from "../lib.js";
import { PATH, QUERY } from "../policies.js";
import type { Section } from "../stats.js";
import { gatesPolicy } from "./gates.js";

/** The trivial access hook of the target: one request header read, one request header set. */
const TRIVIAL = `import { onAccess } from "cdn-build/edge";

export default onAccess((req) => {
  req.setHeader("X-Seen", req.header("X-Bench") ?? "-");
});
`;

/**
 * CPU time of the trivial hook inside nginx (os.clock around 20,000 calls, best of 5, minus the loop's own
 * cost), free of a shared machine's wall-clock noise: the access handler a request runs (the error guard,
 * `xpcall`, around the hook) and the hook function alone.
 */
interface HookNs {
  handler: number;
  hook: number;
  /** Edge API calls and the ngx calls they wrap. */
  calls: Record<string, number>;
}

async function hookNs(s: Scenario, project: string, policy: object): Promise<HookNs> {
  const port = await freePort();
  const { bundle, diagnostics } = compile({ ...policy, name: "bench-hooks-cpu", listen: { http: port, address: "127.0.0.1" } }, { target: s.bin.kind, baseDir: project });
  if (!bundle) throw new Error(JSON.stringify(diagnostics, null, 2));
  const dir = await benchDir("cdn-bench-");
  s.cleanup.add(() => rm(dir, { recursive: true, force: true }));
  await writeBundleTo(bundle, dir);
  const conf = (await readFile(join(dir, "nginx.conf"), "utf8")).replace(
    "location / {",
    `location = /__hook_cpu {
content_by_lua_block {
  local n = 20000
  local data = require("policy_data").features.hooks
  local handler = require("features.hooks").hooks.setup(data).access.hooks
  local hook = require(data.access.module).default
  local req = require("edge.index").request
  local function direct() hook(req) end
  local function none() end
  local function best(fn)
    for _ = 1, 1000 do fn() end
    local b = math.huge
    for _ = 1, 5 do local t = os.clock(); for _ = 1, n do fn() end; b = math.min(b, os.clock() - t) end
    return b / n
  end
  local base = best(none)
  local ns = function(fn) return string.format("%.0f", (best(fn) - base) * 1e9) end
  local v = ngx.var
  local setHeader = ngx.req.set_header
  local x
  local calls = {
    "req.header", function() x = req.header("X-Bench") end,
    "ngx.var.http_x_bench", function() x = v.http_x_bench end,
    "req.setHeader", function() req.setHeader("X-Seen", "1") end,
    "ngx.req.set_header", function() setHeader("X-Seen", "1") end,
    "req.path", function() x = req.path end,
    "ngx.var.uri", function() x = v.uri end,
  }
  local out = { ns(handler), ns(direct) }
  for i = 1, #calls, 2 do out[#out + 1] = calls[i] .. "=" .. ns(calls[i + 1]) end
  ngx.say(table.concat(out, " "))
}
}
location / {`,
  );
  await writeFile(join(dir, "nginx.conf"), conf);
  const n = await startBundle(dir, { port, bin: s.bin });
  s.watchLog("hook timed inside nginx", () => n.errorLog());
  try {
    const r = await fetch(`${n.baseUrl}/__hook_cpu`, { headers: { "X-Bench": "1" } });
    const text = (await r.text()).trim();
    if (r.status !== 200) throw new Error(`hook timing: ${r.status} ${text}`);
    const [handler, hook, ...rest] = text.split(" ");
    return { handler: Number(handler), hook: Number(hook), calls: Object.fromEntries(rest.map((kv) => [kv.split("=")[0]!, Number(kv.split("=")[1])])) };
  } finally {
    await n.stop();
  }
}

/**
 * Cache-HIT throughput (disk tier, 1 KiB) of the gates scenario's baseline bundle with a trivial TypeScript
 * access hook vs the same bundle without it, in interleaved rounds; the hook runs on every request, a HIT
 * included (the access phase runs before nginx serves from its cache).
 */
export async function hooksScenario(ctx: BenchContext): Promise<Section[]> {
  const s = new Scenario(ctx.bin, ctx.clientBin);
  return s.run(async () => {
    const origin = await startOrigin(s);
    const project = await benchDir("cdn-bench-hooks-");
    await mkdir(join(project, "hooks"));
    await writeFile(join(project, "hooks", "trivial.ts"), TRIVIAL);
    const target = `${PATH}?${QUERY}`;
    const headers = { "X-Bench": "1" };
    const base = "no hook (baseline)";
    const variants = [
      { name: base, policy: gatesPolicy(origin.address, []) },
      { name: "trivial access hook (1 header read, 1 set)", policy: { ...gatesPolicy(origin.address, []), hooks: { access: "./hooks/trivial.ts" } } },
    ];
    const targets: Target[] = [];
    for (const v of variants) {
      const n = await s.bootPolicy(v.name, v.policy, undefined, {}, { baseDir: project });
      for (let i = 0; i < 2; i++) await expectHit(v.name, `${n.baseUrl}${target}`, headers, KIB);
      await expectHit(v.name, `${n.baseUrl}${target}`, headers, KIB, (p) => (p.headers.get("x-cache") === "HIT" ? undefined : `X-Cache: ${p.headers.get("x-cache")}`));
      targets.push(nginxTarget(v.name, n, target, { headers }));
    }
    const r = await runRounds("hooks", targets, origin);
    const hook = variants[1]!.name;
    const ratio = rpsRatio(r, hook, base);
    const c = cpuRatio(r, hook, base);
    const ns = await hookNs(s, project, variants[1]!.policy);
    return [
      {
        title: "User hooks (disk HIT, 1 KiB)",
        baseline: base,
        rows: targets.map((t) => ({ config: t.name, ratio: rpsRatio(r, t.name, base), cpuUs: cpu(r, t.name), note: t.name === base ? "" : `CPU ${c.median >= 1 ? "+" : ""}${((c.median - 1) * 100).toFixed(1)}%` })),
        notes: [
          noiseNote(r),
          `trivial access hook vs none: x${ratio.median.toFixed(3)} req/s, worker CPU per request x${c.median.toFixed(3)} (target: within 5%, ${verdict(ratio.median >= 0.95 || c.median <= 1.05)})`,
          `inside nginx (CPU, best of 5 x 20k calls): the access handler with the hook ${ns.handler} ns per request, of which the hook function itself (1 header read, 1 header set) ${ns.hook} ns and the error guard (xpcall) ${ns.handler - ns.hook} ns`,
          `edge API calls vs the ngx calls they wrap (ns): req.header ${ns.calls["req.header"]} vs ngx.var.http_x_bench ${ns.calls["ngx.var.http_x_bench"]}; req.setHeader ${ns.calls["req.setHeader"]} vs ngx.req.set_header ${ns.calls["ngx.req.set_header"]}; req.path ${ns.calls["req.path"]} vs ngx.var.uri ${ns.calls["ngx.var.uri"]}`,
        ],
      },
    ];
  });
}
