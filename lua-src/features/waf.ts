import type { LuaFeature } from "../core/feature";
import { compileScope } from "../core/gate-scope";
import { refuse } from "../core/gate-deny";
import { clientAddress } from "../core/client-address";
import { readBody } from "../core/body";
import { compileOrFail, warnLimited } from "../core/regex";
import type { HeaderVar, WafTargetData } from "../../src/contract/index";
import { countWafMatch } from "../core/metrics";

/**
 * WAF gate.
 *
 * Each inspected part of the request (path, query, user agent, a named header, the body) is normalised,
 * then checked in two steps. Built-in rules declare literals that every match contains; the compiler joins
 * all literals of a target into one prefilter expression, and only when it matches do the regexes of the
 * rules whose literals are present run (a clean value costs one regex pass). Rules without literals (custom
 * rules, the scanner list) are combined by the compiler into one alternation per target (each rule in its
 * own group, rebuilt from its parsed form, so joining cannot change what it matches), run once; only when
 * it matches are they tried one by one, to name the rule. Every expression is compiled one by one at init,
 * and one that PCRE refuses stops nginx from starting. (One alternation of every rule was measured 2-3x slower than the sum of its parts with this PCRE:
 * branches starting with `\b` defeat its start-of-match optimisations, so every branch runs at every
 * offset.) A match
 * writes one warning line (rule id, target and client address; never the value, nor the request line) and,
 * in block mode, refuses with 403.
 *
 * A worker remembers the verdicts of the last values it saw (up to 2,048 per target, values up to 256
 * bytes; the memo is emptied when full): the same path, query or user agent is checked once.
 *
 * Cost bounds: every pattern runs in linear time (the compiler proves it, unless a custom rule opted out
 * with `unsafeRegex`); the bytes inspected per request are capped by `budget`, past which the mode decides
 * (403 in block mode, a logged pass in log mode) without inspecting the rest; and a match PCRE gives up on
 * (lua_regex_match_limit, the JIT stack) is decided by the mode as well, with one line per worker every few
 * seconds (lua-src/core/regex.ts), never by a worker stuck in a regex.
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

const MAX_DECODE_ROUNDS = 4;
/** Values up to this length have their verdict remembered, up to this many per target and worker. */
const MEMO_MAX_LEN = 256;
const MEMO_ENTRIES = 2048;
/** Literal occurrences looked at per value; past this, every rule of the target runs. */
const MAX_OCCURRENCES = 32;

// per-request scratch, reused (a worker runs one handler at a time and nothing here yields)
const marks: LuaTable<number, number> = new LuaTable();
let stamp = 0;
const searchCtx: { pos: number } = { pos: 1 };

/** True when `s` has a byte that normalisation turns into a space, or two spaces in a row (plain finds only:
 * LuaJIT compiles them, while pattern functions would abort the trace). */
function needsCollapse(s: string): boolean {
  return (
    find(s, "+", 1, true)[0] !== undefined ||
    find(s, "  ", 1, true)[0] !== undefined ||
    find(s, "\t", 1, true)[0] !== undefined ||
    find(s, "\n", 1, true)[0] !== undefined ||
    find(s, "\r", 1, true)[0] !== undefined ||
    find(s, "\v", 1, true)[0] !== undefined ||
    find(s, "\f", 1, true)[0] !== undefined
  );
}

export function normalise(s: string): string {
  // each step only when it has something to do: most values have no escapes, nulls or whitespace runs
  if (find(s, "%", 1, true)[0] !== undefined) {
    for (let i = 0; i < MAX_DECODE_ROUNDS; i++) {
      const d = unescape(s);
      if (d === s) break;
      s = d;
      if (find(s, "%", 1, true)[0] === undefined) break;
    }
  }
  s = lower(s);
  if (find(s, "\0", 1, true)[0] !== undefined) [s] = gsub(s, "%z", "");
  if (find(s, "/*", 1, true)[0] !== undefined) [s] = gsub(s, "/%*.-%*/", " ");
  if (needsCollapse(s)) [s] = gsub(s, "[%s%+]+", " ");
  return s;
}

interface Target {
  /** Regex options: case-insensitive only for targets with custom rules (built-in patterns are lower-case). */
  opts: string;
  kind: string;
  label: string;
  v: HeaderVar | undefined;
  /** Rules with literals, in order, with their literals as bytes. */
  gated: { id: string; re: string; lits: string[] }[];
  /** The prefilter: every literal of `gated` in one alternation (longest first). */
  pre: string | undefined;
  /** Literal -> indices (0-based) of the gated rules it, or a literal that is a prefix of it, belongs to. */
  litRules: LuaTable<string, number[]>;
  /** The rules without literals as one alternation, and those rules. */
  always: string | undefined;
  alwaysRules: { id: string; re: string }[];
  /** Verdicts of recent raw values (the matching rule id, or false), per worker; emptied when full. */
  memo: LuaTable<string, string | false>;
  memoN: number;
}

/** Writes `\xHH` escapes of a literal as bytes. */
function literalBytes(lit: string): string {
  const [out] = gsub(lit, "\\x(%x%x)", (h: string) => string.char(tonumber(h, 16)!));
  return out;
}

/**
 * Compiles every expression of a target, one by one, with the options it runs with; one that PCRE refuses
 * stops nginx from starting (src/core/regex.ts), so a bundle never runs with a rule missing.
 */
function compileTarget(t: WafTargetData): Target | undefined {
  const opts = t.ci ? "ijo" : "jo";
  const gated: { id: string; re: string; lits: string[] }[] = [];
  const alwaysRules: { id: string; re: string }[] = [];
  for (const r of t.rules) {
    compileOrFail(r.re, opts, "waf rule " + r.id + " (" + t.label + ")");
    if (r.lits !== undefined) {
      const bytes: string[] = [];
      for (const l of r.lits) bytes.push(literalBytes(l));
      gated.push({ id: r.id, re: r.re, lits: bytes });
    } else alwaysRules.push({ id: r.id, re: r.re });
  }
  const always = alwaysRules.length > 0 ? t.always : undefined;
  if (always !== undefined) compileOrFail(always, opts, "waf rules without literals of the " + t.label);
  if (gated.length === 0 && always === undefined) return undefined;
  const pre = gated.length > 0 ? t.pre : undefined;
  if (pre !== undefined) compileOrFail(pre, "jo", "waf literal prefilter of the " + t.label);
  const litRules: LuaTable<string, number[]> = new LuaTable();
  const all: string[] = [];
  for (let i = 0; i < gated.length; i++) {
    for (const l of gated[i].lits) {
      let list = litRules.get(l);
      if (list === undefined) {
        list = [];
        litRules.set(l, list);
        all.push(l);
      }
      list.push(i);
    }
  }
  // a match of a literal also stands for the literals that are prefixes of it (same offset)
  const expanded: LuaTable<string, number[]> = new LuaTable();
  for (const l of all) {
    const list: number[] = [];
    for (const p of all) {
      if (p.length <= l.length && sub(l, 1, p.length) === p) for (const i of litRules.get(p)!) list.push(i);
    }
    expanded.set(l, list);
  }
  return { opts, kind: t.kind, label: t.label, v: t.var, gated, pre, litRules: expanded, always, alwaysRules, memo: new LuaTable(), memoN: 0 };
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
  const client = clientAddress();
  const [ok] = timerAt(0, writeLine, id, label, client, verdict);
  if (!ok) writeLine(false, id, label, client, verdict);
}

/** What check() returns when no rule matched but PCRE gave up on one (match limit, JIT stack). */
const UNDECIDED = "#undecided";
/** The rule PCRE gave up on last, and its error, for the log line. */
let undecidedRule = "";
let undecidedErr = "";

/**
 * The id of the first rule of `t` that matches the normalised value `s`, UNDECIDED when none matched but PCRE
 * gave up on one of them, or undefined. Regex passes: the combined rules without literals, the prefilter
 * (all literals of the other rules), and only when the prefilter found something, one per rule whose
 * literals are present. When a pass gives up, the rules it stood for run one by one, so a rule that does
 * match still wins over one that could not be decided.
 */
function check(t: Target, s: string): string | undefined {
  const opts = t.opts;
  let undecided = false;
  const giveUp = (id: string, err: string) => {
    undecided = true;
    undecidedRule = id;
    undecidedErr = err;
  };
  if (t.always !== undefined) {
    const [from, , err] = reFind(s, t.always, opts);
    if (from !== undefined || err !== undefined) {
      for (const r of t.alwaysRules) {
        const [f, , e] = reFind(s, r.re, opts);
        if (f !== undefined) return r.id;
        if (e !== undefined) giveUp(r.id, e);
      }
    }
  }
  const gated = t.gated;
  const n = gated.length;
  if (n === 0) return undecided ? UNDECIDED : undefined;
  let [from, to, perr] = reFind(s, t.pre!, "jo");
  if (from === undefined && perr === undefined) return undecided ? UNDECIDED : undefined; // no rule's literal is present: no rule can match
  // mark the rules of every literal occurrence (one search per occurrence, bounded)
  stamp++;
  const litRules = t.litRules;
  let occurrences = 0;
  if (perr !== undefined) for (let i = 0; i < n; i++) marks.set(i, stamp);
  while (from !== undefined && to !== undefined) {
    occurrences++;
    if (occurrences > MAX_OCCURRENCES) {
      for (let i = 0; i < n; i++) marks.set(i, stamp);
      break;
    }
    const rules = litRules.get(sub(s, from, to));
    if (rules !== undefined) for (const i of rules) marks.set(i, stamp);
    searchCtx.pos = from + 1;
    [from, to, perr] = reFind(s, t.pre!, "jo", searchCtx);
    if (perr !== undefined) for (let i = 0; i < n; i++) marks.set(i, stamp);
  }
  for (let i = 0; i < n; i++) {
    if (marks.get(i) === stamp) {
      const r = gated[i];
      const [f, , e] = reFind(s, r.re, opts);
      if (f !== undefined) return r.id;
      if (e !== undefined) giveUp(r.id, e);
    }
  }
  return undecided ? UNDECIDED : undefined;
}

export const waf: LuaFeature<"waf"> = {
  key: "waf",
  setup(data) {
    const targets: Target[] = [];
    for (const t of data.targets) {
      const c = compileTarget(t);
      if (c !== undefined) targets.push(c);
    }
    const n = targets.length;
    const block = data.block;
    const bodyMax = data.bodyMax;
    const budget = data.budget;
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
      readBody();
      const body = ngx.req.get_body_data();
      if (body === undefined || body.length > bodyMax!) return undefined;
      return body;
    };

    return {
      initWorker: {
        waf: () => {
        // every expression was compiled in the master at init (and is inherited); this only makes sure a
        // worker has them before its first request, should its cache have dropped any
        for (const t of targets) {
          if (t.always !== undefined) reFind("", t.always, t.opts);
          for (const r of t.alwaysRules) reFind("", r.re, t.opts);
          for (const r of t.gated) reFind("", r.re, t.opts);
          if (t.pre !== undefined) reFind("", t.pre, "jo");
        }
        },
      },
      access: {
        "gate:waf": () => {
        if (!inScope()) return;
        let used = 0;
        for (let i = 0; i < n; i++) {
          const t = targets[i];
          const raw = valueOf(t);
          if (raw !== undefined && raw !== "") {
            used += raw.length;
            if (used > budget) {
              // more to inspect than one request may cost: decided by the mode, without inspecting the rest
              warnLimited("budget", "waf: inspection budget of " + budget + " bytes exceeded at the " + t.label + verdict + ", client " + clientAddress());
              if (block) return refuse(403, "waf");
              return;
            }
            let id: string | undefined;
            if (raw.length <= MEMO_MAX_LEN && t.kind !== "body") {
              // verdicts of recent values (paths, queries and user agents repeat a lot at an edge)
              const known = t.memo.get(raw);
              if (known === undefined) {
                id = check(t, normalise(raw));
                if (id !== UNDECIDED) {
                  if (t.memoN >= MEMO_ENTRIES) {
                    t.memo = new LuaTable();
                    t.memoN = 0;
                  }
                  t.memo.set(raw, id ?? false);
                  t.memoN++;
                }
              } else id = known === false ? undefined : known;
            } else id = check(t, normalise(raw));
            if (id === UNDECIDED) {
              // PCRE gave up (match limit, JIT stack): neither a match nor a miss, so the mode decides
              warnLimited("undecided:" + t.label, "waf: rule " + undecidedRule + " could not be evaluated on the " + t.label + " (" + undecidedErr + ")" + verdict + ", client " + clientAddress());
              if (block) return refuse(403, "waf");
            } else if (id !== undefined) {
              report(id, t.label, verdict);
              countWafMatch(id, block);
              if (block) return refuse(403, "waf");
              return;
            }
          }
        }
        },
      },
    };
  },
};
