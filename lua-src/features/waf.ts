import type { LuaFeature } from "../core/feature";
import { compileScope } from "../core/gate-scope";
import { refuse } from "../core/gate-deny";

/**
 * WAF gate.
 *
 * Each inspected part of the request (path, query, user agent, a named header, the body) is normalised,
 * then matched once against the alternation of all its rules (compiled by the compiler, one regex per
 * target). Only when that matches are the target's rules tried one by one, to name the rule. A match
 * writes one warning line (rule id, target and client address; never the value, nor the request line) and,
 * in block mode, refuses with 403.
 *
 * Normalisation: URL-decoded until stable (at most 4 rounds: double and triple encodings), lower-cased,
 * null bytes removed, then `+`, runs of whitespace (tabs, newlines, vertical tabs) and SQL comments
 * (`/ * ... * /`) collapsed into one space.
 */

const unescape = ngx.unescape_uri;
const lower = string.lower;
const gsub = string.gsub;
const find = string.find;
const sub = string.sub;
const reFind = ngx.re.find;
const reGsub = ngx.re.gsub;

const MAX_DECODE_ROUNDS = 4;
const COLLAPSE = "(?:[\\s\\x0b+]|/\\*.*?\\*/)+";

export function normalise(s: string): string {
  for (let i = 0; i < MAX_DECODE_ROUNDS; i++) {
    const d = unescape(s);
    if (d === s) break;
    s = d;
  }
  s = lower(s);
  if (find(s, "\0", 1, true)[0] !== undefined) [s] = gsub(s, "%z", "");
  const [c] = reGsub(s, COLLAPSE, " ", "jo");
  return c ?? s;
}

interface Target {
  kind: string;
  label: string;
  v: string | undefined;
  re: string;
  rules: { id: string; re: string }[];
}

/** Checks the combined expression of a target compiles; otherwise keeps only the rules that do. */
function compileTarget(t: WafTargetData): Target | undefined {
  const [, , err] = reFind("", t.re, "ij");
  if (err === undefined) return { kind: t.kind, label: t.label, v: t.var, re: t.re, rules: t.rules };
  ngx.log(ngx.ERR, "waf: the rules of target ", t.label, " do not compile together (", err, "); dropping the broken ones");
  const good: { id: string; re: string }[] = [];
  for (const r of t.rules) {
    const [, , e] = reFind("", r.re, "ij");
    if (e === undefined) good.push(r);
    else ngx.log(ngx.ERR, "waf: rule ", r.id, " does not compile: ", e);
  }
  if (good.length === 0) return undefined;
  const parts: string[] = [];
  for (const r of good) parts.push("(?:" + r.re + ")");
  return { kind: t.kind, label: t.label, v: t.var, re: table.concat(parts, "|"), rules: good };
}

type TimerAt = (this: void, delay: number, cb: (this: void, premature: boolean, ...args: string[]) => void, ...args: string[]) => LuaMultiReturn<[boolean | undefined, string | undefined]>;
const timerAt = (ngx as unknown as { timer: { at: TimerAt } }).timer.at;

function writeLine(this: void, _premature: boolean, id: string, label: string, client: string, verdict: string): void {
  ngx.log(ngx.WARN, "waf: rule ", id, " matched the ", label, verdict, ", client ", client);
}

/**
 * One warning line per match. It is written from a zero-delay timer: a log call in the request would get
 * nginx's request context appended (the request line, which holds the payload of a path/query attack).
 * If no timer can be created (too many pending), the line is written in the request after all.
 */
function report(id: string, label: string, verdict: string): void {
  const client = (ngx.ctx.get("cdn_client_ip") as string | undefined) ?? ngx.var.get("remote_addr") ?? "?";
  const [ok] = timerAt(0, writeLine, id, label, client, verdict);
  if (!ok) writeLine(false, id, label, client, verdict);
}

/** The rule of `t` that matches `s` (the combined expression did). */
function whichRule(t: Target, s: string): string {
  for (const r of t.rules) {
    const [from] = reFind(s, r.re, "ijo");
    if (from !== undefined) return r.id;
  }
  return "?";
}

export const waf: LuaFeature<WafData> = {
  name: "waf",
  setup(data) {
    const targets: Target[] = [];
    for (const t of data.targets) {
      const c = compileTarget(t);
      if (c !== undefined) targets.push(c);
    }
    const n = targets.length;
    const block = data.block;
    const bodyMax = data.bodyMax;
    const inScope = compileScope(data.scope);
    const verdict = block ? " (blocked)" : " (logged)";

    /** The raw value of a target for the current request, or undefined when absent. */
    const valueOf = (t: Target): string | undefined => {
      const vars = ngx.var;
      const kind = t.kind;
      if (kind === "path") {
        const uri = vars.get("request_uri") ?? "/";
        const [q] = find(uri, "?", 1, true);
        return q === undefined ? uri : sub(uri, 1, q - 1);
      }
      if (kind === "query") return vars.get("args");
      if (kind === "ua") return vars.get("http_user_agent");
      if (kind === "header") return vars.get(t.v!);
      // body
      const len = tonumber(vars.get("content_length") ?? "0") ?? 0;
      if (len > bodyMax!) {
        ngx.log(ngx.INFO, "waf: body of ", len, " bytes is over the inspection cap, not inspected");
        return undefined;
      }
      if (len === 0 && vars.get("http_transfer_encoding") === undefined) return undefined;
      ngx.req.read_body();
      const body = ngx.req.get_body_data();
      if (body === undefined || body.length > bodyMax!) return undefined;
      return body;
    };

    return {
      initWorker: () => {
        // compile (and JIT) every expression once per worker, not on a first request
        for (const t of targets) {
          reFind("", t.re, "ijo");
          for (const r of t.rules) reFind("", r.re, "ijo");
        }
      },
      access: () => {
        if (!inScope()) return;
        for (let i = 0; i < n; i++) {
          const t = targets[i];
          const raw = valueOf(t);
          if (raw !== undefined && raw !== "") {
            const s = normalise(raw);
            const [from] = reFind(s, t.re, "ijo");
            if (from !== undefined) {
              report(whichRule(t, s), t.label, verdict);
              if (block) return refuse(403, "waf");
              return;
            }
          }
        }
      },
    };
  },
};
