import type { LuaFeature } from "../../core/feature";
import type { RulesData } from "../../../src/contract/index";
import { apply, beginActions, endActions } from "./actions";
import { compilePatterns, compileRuleCond, warmPatterns, type Pred } from "./conditions";
import { beginFacts } from "./facts";
import { compileLookup, walk } from "./lookup";
import { dataNow } from "../../core/header-value";

/**
 * The rules engine at run time.
 *
 * setup() (init_by_lua, once) turns the condition each rule still needs once the index found it into a
 * closure (./conditions.ts) and builds the index (./lookup.ts). A request then evaluates only the rules its
 * host, path, extension and method point at, plus the rules the index cannot narrow, in policy order, so its
 * cost does not grow with the number of rules. The actions are in ./actions.ts.
 */

interface Compiled {
  access: () => void;
  nostoreCheck: () => void;
  ttlExec: () => void;
  responseHeaders: () => void;
}

let compiled: Compiled | undefined;

function compile(data: RulesData): Compiled {
  if (compiled !== undefined) return compiled;
  const rules = data.rules;
  // by rule position (0-based); none: the index lookup already decided that the rule matches
  const preds = new LuaTable<number, Pred>();
  rules.forEach((r, i) => {
    if (r.cond !== undefined) preds.set(i, compileRuleCond(r.name, r.cond));
  });
  compilePatterns();
  const lookup = compileLookup(data.index);
  const cookieDict = data.hasCookie ? ngx.shared.get("cdn_experiments") : undefined;
  const hasKey = data.keyParts;
  const hasTtl = data.hasTtl;

  /** Evaluates rule i; true when evaluation stops there. */
  const visit = (i: number): boolean => {
    const p = preds.get(i);
    if (p !== undefined && !p()) return false;
    const r = rules[i];
    apply(i, r, cookieDict);
    return !r.cont;
  };

  const access = () => {
    beginFacts(ngx.var.get("uri") ?? "/");
    beginActions();
    walk(lookup(), visit);
    endActions(hasKey, hasTtl);
  };

  // header filter, before other features change headers: a TTL override must still never store what the
  // origin marked private / no-store / no-cache (Cache-Control is ignored in the TTL locations)
  const nostoreCheck = () => {
    const vars = ngx.var;
    if (vars.get("cdn_rules_ttl") === "") return;
    let cc = ngx.header.get("Cache-Control");
    if (cc === undefined) return;
    if (typeof cc === "object") cc = table.concat(cc, ",");
    const l = string.lower(cc);
    if (string.find(l, "private", 1, true)[0] !== undefined || string.find(l, "no-store", 1, true)[0] !== undefined || string.find(l, "no-cache", 1, true)[0] !== undefined) {
      vars.set("cdn_rules_nostore", "1");
    }
  };

  // end of the access phase (after the cache key is computed): a TTL override continues in its location
  const ttlExec = () => {
    const loc = ngx.var.get("cdn_rules_ttl");
    if (loc !== undefined && loc !== "") ngx.exec(loc);
  };

  const responseHeaders = () => {
    const vars = ngx.var;
    const h = ngx.header;
    const ids = data.hasHeader ? vars.get("cdn_rules") : undefined;
    if (ids !== undefined && ids !== "") {
      for (const [id] of string.gmatch(ids, "%d+")) {
        const r = rules[tonumber(id)!];
        if (r.resRemove !== undefined) for (const name of r.resRemove) h.set(name, undefined);
        if (r.resSet !== undefined) for (const [name, v] of r.resSet) h.set(name, dataNow(v));
        if (r.image !== undefined) {
          const vary = h.get("Vary");
          if (vary === undefined) h.set("Vary", "Accept");
          else {
            const v = typeof vary === "object" ? table.concat(vary, ", ") : vary;
            if (ngx.re.find(v, "(^|[ ,])accept($|[ ,])", "joi")[0] === undefined) h.set("Vary", v + ", Accept");
          }
        }
      }
    }
    if (data.hasCookie) {
      const cookies = vars.get("cdn_rules_cookie");
      if (cookies !== undefined && cookies !== "") {
        const lines: string[] = [];
        const existing = h.get("Set-Cookie");
        if (typeof existing === "string") lines.push(existing);
        else if (existing !== undefined) for (const l of existing) lines.push(l);
        for (const [l] of string.gmatch(cookies, "[^\n]+")) lines.push(l);
        h.set("Set-Cookie", lines);
      }
    }
  };

  compiled = { access, nostoreCheck, ttlExec, responseHeaders };
  return compiled;
}

/**
 * Access phase, before the cache key ("rules"): evaluates the rules; at its end ("rules:ttl", after the cache
 * key is computed) it hands a TTL override to its location. Header filter: the TTL no-store guard before the
 * cache decides ("rules:nostore"), and the matched rules' response headers after the policy-wide ones, so a
 * rule wins ("rules:headers": `Vary: Accept` and experiment cookies too).
 */
export const rules: LuaFeature<"rules"> = {
  key: "rules",
  setup(data) {
    const c = compile(data);
    return {
      access: { rules: c.access, "rules:ttl": data.hasTtl ? c.ttlExec : undefined },
      header: {
        "rules:nostore": data.hasTtl ? c.nostoreCheck : undefined,
        "rules:headers": data.hasHeader || data.hasCookie ? c.responseHeaders : undefined,
      },
      initWorker: { rules: warmPatterns },
    };
  },
};
