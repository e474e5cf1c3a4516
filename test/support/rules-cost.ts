/**
 * CPU cost of the rules engine's access handler alone: the bundle's Lua (policy data and runtime) run in
 * LuaJIT with a stubbed `ngx` (no nginx, no network), the handler called in a loop for one request. Used by
 * the scale tests and by bench/scenarios/rules.ts.
 */
import { luajitFile } from "./luajit.js";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compile } from "../../src/compile.js";
import { writeBundleTo } from "../../src/emit/write.js";
import type { Policy } from "../../src/policy/types.js";

export interface CostRequest {
  uri: string;
  host?: string;
  method?: string;
}

/**
 * Loads the bundle in `dir`, then times `n` calls of the access handler for one request (args: uri, host,
 * method), best of 5 runs, and prints "<ns per call> <$cdn_rules>". A pattern evaluated per request is an
 * error: the stub has no PCRE.
 */
const DRIVER = `
local dir, n = arg[1], tonumber(arg[2])
package.path = dir .. "/lua/?.lua;" .. package.path
local vars = { remote_addr = "127.0.0.1" }
local method = "GET"
local ready = false
ngx = { var = vars, req = { get_method = function() return method end }, shared = {}, ERR = 4, WARN = 5,
  log = function() end, timer = { at = function() return true end },
  re = { find = function() if ready then error("a pattern ran: the stub has no PCRE") end end } }
local t0 = os.clock()
local data = require("policy_data").features.rules
local access = require("features.rules.index").rules.setup(data).access.rules
io.write(string.format("setup %.1f\\n", (os.clock() - t0) * 1000))
ready = true
for k = 3, #arg, 3 do
  vars.uri, vars.host, method = arg[k], arg[k + 1], arg[k + 2]
  for _ = 1, n do vars.cdn_rules = nil access() end
  local best = math.huge
  for _ = 1, 5 do
    local t = os.clock()
    for _ = 1, n do vars.cdn_rules = nil access() end
    best = math.min(best, os.clock() - t)
  end
  io.write(string.format("%.1f %s\\n", best / n * 1e9, tostring(vars.cdn_rules)))
end
`;

export interface CostResult {
  /** Milliseconds to load the policy data and set the rules up (LuaJIT CPU time). */
  setupMs: number;
  /** Nanoseconds of CPU per access handler call. */
  ns: number;
  /** The matched rules with response work ($cdn_rules), "nil" for none. */
  matched: string;
}

/** A policy's bundle written for measuring; `remove()` deletes it. */
export interface CostBundle {
  /** Measures one request in a LuaJIT process of its own (traces of one request shape do not serve another). */
  measure(request: CostRequest, opts?: { n?: number; jit?: boolean }): Promise<CostResult>;
  remove(): Promise<void>;
}

/** Compiles `policy` (it must have rules) and writes its bundle with the driver. */
export async function costBundle(policy: Policy): Promise<CostBundle> {
  const { bundle, diagnostics } = compile(policy, { target: "openresty" });
  if (!bundle) throw new Error(`policy did not compile: ${JSON.stringify(diagnostics.slice(0, 3))}`);
  const dir = await mkdtemp(join(tmpdir(), "cdn-rules-cost-"));
  await writeBundleTo(bundle, dir);
  await writeFile(join(dir, "driver.lua"), DRIVER);
  return {
    async measure(r, { n = 100_000, jit = true } = {}) {
      const stdout = await luajitFile(join(dir, "driver.lua"), [dir, String(n), r.uri, r.host ?? "edge.test", r.method ?? "GET"], { flags: jit ? [] : ["-joff"] });
      const [setup, line] = stdout.trim().split("\n");
      const [ns, matched] = line!.split(" ");
      return { setupMs: Number(setup!.split(" ")[1]), ns: Number(ns), matched: matched! };
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
