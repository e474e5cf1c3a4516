import type { LuaFeature, Handler } from "../core/feature";
import type { HookData } from "../../src/contract/index";
import { bodyResponse, logContext, request, response } from "../edge/index";

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

/** A body being collected for the body hook (in ngx.ctx from the header filter on). */
interface BodyBuffer {
  chunks: string[];
  size: number;
  /** Over maxBytes: the rest goes out as it comes. */
  passing: boolean;
}

/**
 * The header filter's part for the body hook: a response whose body the hook may change loses its
 * Content-Length and gets a buffer; the others (HEAD, 204, 304, compressed bodies) pass untouched.
 */
function readyBody(this: void): void {
  const status = ngx.status;
  if (status === 204 || status === 304 || ngx.req.get_method() === "HEAD") return;
  const enc = ngx.header.get("Content-Encoding");
  if (enc !== undefined && enc !== "" && enc !== "identity") return;
  ngx.header.set("Content-Length", undefined);
  const buf: BodyBuffer = { chunks: [], size: 0, passing: false };
  ngx.ctx.set("cdn_hook_body", buf);
}

/** The body filter: collects the body up to maxBytes, then hands it to the hook at the last chunk. */
function bodyFilter(this: void, hook: HookData & { maxBytes: number }, fn: (this: void, r: unknown, body: string) => unknown): Handler {
  let lastLog = -LOG_EVERY;
  const max = hook.maxBytes;
  return () => {
    const buf = ngx.ctx.get("cdn_hook_body") as BodyBuffer | undefined;
    if (buf === undefined || buf.passing) return;
    const chunk = ngx.arg.get(1) as string;
    const eof = ngx.arg.get(2) as boolean;
    if (chunk !== "") {
      buf.size += chunk.length;
      if (buf.size > max) {
        // too long for the hook: what was held back goes out now, the rest as it comes
        buf.passing = true;
        buf.chunks.push(chunk);
        ngx.arg.set(1, table.concat(buf.chunks));
        buf.chunks = [];
        return;
      }
      buf.chunks.push(chunk);
    }
    if (!eof) {
      ngx.arg.set(1, "");
      return;
    }
    const body = table.concat(buf.chunks);
    buf.chunks = [];
    const [ok, out] = xpcall(fn, withTrace, bodyResponse, body);
    if (!ok) {
      const t = ngx.now();
      if (t - lastLog >= LOG_EVERY) {
        lastLog = t;
        const msg = out as unknown as string;
        ngx.log(ngx.ERR, `cdn-build hook body (${tsLocation(msg) ?? tsLocation(lastTrace) ?? hook.file}) failed: ${msg}`);
      }
    }
    ngx.arg.set(1, ok && typeof out === "string" ? out : body);
  };
}

function load(this: void, hook: HookData): (this: void, a: unknown) => void {
  const mod = require(hook.module) as { default?: unknown };
  if (type(mod) !== "table" || type(mod.default) !== "function") {
    error(`cdn-build hook ${hook.file}: its module does not export default a hook function (onAccess, onHeaders, onBody, onLog)`);
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
    const headersHook = data.header === undefined ? undefined : guard("headers", data.header, load(data.header), response);
    // with a body hook, the header filter first readies the body filter
    const header = data.body === undefined ? headersHook : headersHook === undefined ? readyBody : () => {
      readyBody();
      headersHook();
    };
    const body = data.body === undefined ? undefined : bodyFilter(data.body, load(data.body) as (this: void, r: unknown, body: string) => unknown);
    const log = data.log === undefined ? undefined : guard("log", data.log, load(data.log), logContext);
    return {
      access: { "hooks:before-cache": a?.beforeCache ? access : undefined, hooks: a?.beforeCache ? undefined : access },
      header: { hooks: header },
      body: { hooks: body },
      log: { hooks: log },
    };
  },
};
