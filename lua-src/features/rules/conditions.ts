import type { ArgVar, RuleCond } from "../../../src/contract/index";
import { clientAddress } from "../../core/client-address";
import { compileSet, parseAddr } from "../../core/ip";
import { compileOrFail, warnLimited } from "../../core/regex";
import { refuse } from "../../core/gate-deny";
import { extension, host, method, path } from "./facts";

/** A rule's condition, compiled once at setup. */
export type Pred = (this: void) => boolean;

/** Every pattern of the conditions with its options and the rule it belongs to, compiled at setup. */
const regexes: [string, string, string][] = [];
/** The rule whose condition is being compiled (for the messages of its patterns). */
let compilingRule = "";

/** Notes a pattern to compile at setup; returns the rule it belongs to. */
function track(re: string, opts: string): string {
  regexes.push([re, opts, compilingRule]);
  return compilingRule;
}

/**
 * Whether `re` matches. When PCRE gives up (match limit, JIT stack) the condition is neither true nor false,
 * and no outcome of the rules is safe to act on (a `deny` that does not match lets the request through):
 * the request is refused, with one line per worker every few seconds.
 */
function reFind(subject: string, re: string, opts: string, rule: string): boolean {
  const [from, , err] = ngx.re.find(subject, re, opts);
  if (err !== undefined) {
    warnLimited("rules:" + rule, "rules: a pattern of rule " + rule + " could not be evaluated (" + err + "), request refused, client " + clientAddress());
    refuse(403, "rules");
  }
  return from !== undefined;
}

/** A query parameter is present, with a value (`$arg_x`) or bare (`?x`, which `$arg_x` does not see). */
function argPresent(varName: ArgVar): boolean {
  if (ngx.var.get(varName) !== undefined) return true;
  const args = ngx.var.get("args");
  if (args === undefined) return false;
  const name = string.sub(varName, 5);
  const n = name.length;
  let from = 1;
  while (true) {
    const [s] = string.find(args, name, from, true);
    if (s === undefined) return false;
    const before = s === 1 ? "&" : string.sub(args, s - 1, s - 1);
    const after = string.sub(args, s + n, s + n);
    if (before === "&" && (after === "" || after === "&")) return true;
    from = s + 1;
  }
}

function compileCond(c: RuleCond): Pred {
  switch (c.t) {
    case "and": {
      const parts = c.c.map((x) => compileCond(x));
      const n = parts.length;
      if (n === 0) return () => true;
      if (n === 1) return parts[0];
      return () => {
        for (let i = 0; i < n; i++) if (!parts[i]()) return false;
        return true;
      };
    }
    case "or": {
      const parts = c.c.map((x) => compileCond(x));
      const n = parts.length;
      return () => {
        for (let i = 0; i < n; i++) if (parts[i]()) return true;
        return false;
      };
    }
    case "not": {
      const inner = compileCond(c.c);
      return () => !inner();
    }
    case "path": {
      const exact = c.exact;
      const prefixes = c.prefix ?? [];
      const res = c.re ?? [];
      const rule = compilingRule;
      for (const r of res) track(r, "jo");
      return () => {
        const p = path();
        if (exact !== undefined && exact[p] === true) return true;
        for (const pre of prefixes) if (string.sub(p, 1, pre.length) === pre) return true;
        for (const re of res) if (reFind(p, re, "jo", rule)) return true;
        return false;
      };
    }
    case "ext": {
      const set = c.set;
      return () => set[extension()] === true;
    }
    case "method": {
      const set = c.set;
      return () => set[method()] === true;
    }
    case "host": {
      const exact = c.exact;
      const suffixes = c.suffix;
      return () => {
        const h = host();
        if (exact[h] === true) return true;
        for (const s of suffixes) if (h.length > s.length && string.sub(h, -s.length) === s) return true;
        return false;
      };
    }
    case "var":
    case "arg": {
      const name = c.v;
      const value = c.value;
      const decode = c.t === "arg";
      switch (c.op) {
        case "exists":
          return decode ? () => argPresent(name as ArgVar) : () => {
            const v = ngx.var.get(name);
            return v !== undefined && v !== "";
          };
        case "absent":
          return decode ? () => !argPresent(name as ArgVar) : () => {
            const v = ngx.var.get(name);
            return v === undefined || v === "";
          };
        case "equals":
          return () => {
            const v = ngx.var.get(name);
            if (v === undefined) return false;
            return (decode ? ngx.unescape_uri(v) : v) === value;
          };
        case "matches": {
          const rule = track(value!, "jo");
          return () => {
            const v = ngx.var.get(name);
            return v !== undefined && reFind(v, value!, "jo", rule);
          };
        }
      }
      return () => false;
    }
    case "country": {
      // the country comes from a header or a variable the operator names (e.g. one set by a GeoIP module)
      const name = c.v as NgxVarName;
      const set = c.set;
      return () => {
        const v = ngx.var.get(name);
        return v !== undefined && set[string.upper(v)] === true;
      };
    }
    case "cidr": {
      const inSet = compileSet(c.set)!;
      return () => {
        parseAddr(clientAddress());
        return inSet();
      };
    }
    case "ua": {
      const re = c.re;
      const rule = track(re, "joi");
      return () => {
        const ua = ngx.var.get("http_user_agent");
        return ua !== undefined && reFind(ua, re, "joi", rule);
      };
    }
  }
}

/** A rule's condition as a closure (in the master, at setup), its patterns noted under the rule's name. */
export function compileRuleCond(rule: string, c: RuleCond): Pred {
  compilingRule = rule;
  return compileCond(c);
}

/** Compiles every pattern noted so far, one by one: a pattern PCRE refuses stops nginx from starting, naming the rule. */
export function compilePatterns(): void {
  for (const [re, opts, rule] of regexes) compileOrFail(re, opts, "rule " + rule);
}

/** Compiled in the master at setup; this makes sure each worker has them before its first request. */
export function warmPatterns(): void {
  for (const [re, opts] of regexes) ngx.re.find("", re, opts);
}
