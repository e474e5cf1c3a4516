import type { LuaFeature, Handler } from "../core/feature";
import type { HookData } from "../../src/contract/index";
import { logContext, request, response } from "../edge/index";

declare function require(this: void, name: string): unknown;

/** Seconds between two error log lines of the same failing hook, per worker. */
const LOG_EVERY = 10;

/** The TypeScript file:line of a Lua location in a compiled hook (`lua/hooks/lines.lua`, loaded on the first error). */
type LineMaps = LuaTable<string, { file: string; lines: LuaTable<number, number> }>;
let lineMaps: LineMaps | undefined;

function tsLocation(this: void, trace: string): string | undefined {
  const [mod, line] = string.match(trace, "hooks/([%w_%-]+/[^:%s]+)%.lua:(%d+):");
  if (mod === undefined) return undefined;
  if (lineMaps === undefined) {
    const [ok, maps] = pcall(require, "hooks.lines");
    lineMaps = ok ? (maps as LineMaps) : new LuaTable();
  }
  const m = lineMaps.get(mod);
  if (m === undefined) return undefined;
  const ts = m.lines.get(tonumber(line) as number);
  return ts === undefined ? `${m.file} (lua/hooks/${mod}.lua:${line})` : `${m.file}:${ts}`;
}

// xpcall's message handler: runs at the point of the error, so the traceback still has the hook's frames
// (xpcall passes on one value only: the traceback waits here)
let lastTrace = "";
function withTrace(this: void, err: unknown): string {
  lastTrace = debug.traceback("", 2);
  return tostring(err);
}

/**
 * Runs a hook function `fn(arg)`; on a runtime error logs one line (at most one per LOG_EVERY seconds per hook
 * and worker) with the hook's TypeScript file:line, and ends an access-phase request with 500 unless the hook
 * fails open.
 */
function guard(this: void, phase: string, hook: HookData, fn: (this: void, a: unknown) => void, arg: unknown): Handler {
  let lastLog = -LOG_EVERY;
  const file = hook.file;
  const failed = (msg: string, trace: string) => {
    const t = ngx.now();
    if (t - lastLog < LOG_EVERY) return;
    lastLog = t;
    const where = tsLocation(msg) ?? tsLocation(trace) ?? file;
    ngx.log(ngx.ERR, `cdn-build hook ${phase} (${where}) failed: ${msg}`);
  };
  return () => {
    const [ok, msg] = xpcall(fn, withTrace, arg);
    if (!ok) {
      failed(msg as unknown as string, lastTrace);
      if (!hook.failOpen && phase === "access") ngx.exit(500);
    }
  };
}

function load(this: void, hook: HookData): (this: void, a: unknown) => void {
  const mod = require(hook.module) as { default?: unknown };
  if (type(mod) !== "table" || type(mod.default) !== "function") {
    error(`cdn-build hook ${hook.file}: its module does not export default a hook function (onAccess, onHeaders, onLog)`);
  }
  return mod.default as (this: void, a: unknown) => void;
}

/**
 * The user's hooks (compiled from TypeScript into lua/hooks/), required once at init and run after the
 * built-in features of their phase (or before the cache, `before: "cache"`). A runtime error in a hook
 * answers 500 in the access phase (unless `failOpen`) and leaves one throttled error log line.
 */
export const hooks: LuaFeature<"hooks"> = {
  key: "hooks",
  setup(data) {
    const a = data.access;
    const access = a === undefined ? undefined : guard("access", a, load(a), request);
    const header = data.header === undefined ? undefined : guard("headers", data.header, load(data.header), response);
    const log = data.log === undefined ? undefined : guard("log", data.log, load(data.log), logContext);
    return {
      access: { "hooks:before-cache": a?.beforeCache ? access : undefined, hooks: a?.beforeCache ? undefined : access },
      header: { hooks: header },
      log: { hooks: log },
    };
  },
};
