import type { Feature } from "./shared/feature.js";
import type { Policy, Waf } from "../policy/types.js";
import { error, pointer, warning, type Diagnostic } from "../validate/diagnostic.js";
import { sizeBytes } from "../util/units.js";
import { checkScope } from "./shared/gate-scope.js";
import { headerVar } from "../util/nginx-var.js";
import { lowerScope } from "./shared/gate-scope.js";
import { BUILTIN_RULES, RULE_SETS } from "./waf/builtin-rules.js";
import { checkPattern, toPcre } from "./shared/regex/index.js";

export const DEFAULT_BODY_MAX = "64k";
const BODY_MAX_LIMIT = 1024 * 1024;
/** Bytes of the inspection budget beyond the body cap (path, query, user agent, headers). */
const BUDGET_HEADROOM = 64 * 1024;
const BUDGET_LIMIT = 2 * 1024 * 1024;
const BUDGET_MIN = 1024;

/** The per-request inspection budget in bytes (see `Waf.budget`). */
export function inspectionBudget(w: Waf): number {
  if (w.budget !== undefined) return sizeBytes(w.budget)!;
  const body = w.body !== undefined ? sizeBytes(w.body.maxSize ?? DEFAULT_BODY_MAX) ?? 0 : 0;
  return body + BUDGET_HEADROOM;
}

import type { HeaderVar, WafData, WafTargetData } from "../contract/index.js";

export type { WafTargetData };

/** A literal as a PCRE expression: `\xHH` escapes kept, every other non-alphanumeric character escaped. */
function literalRegex(lit: string): string {
  return lit
    .split(/(\\x[0-9a-f]{2})/)
    .map((part) => (/^\\x[0-9a-f]{2}$/.test(part) ? part : part.replace(/[^a-z0-9]/g, (c) => (c === " " ? " " : "\\" + c))))
    .join("");
}


function activeBuiltins(w: Waf) {
  const sets = new Set(w.ruleSets ?? RULE_SETS);
  const excluded = new Set(w.exclude ?? []);
  return BUILTIN_RULES.filter((r) => sets.has(r.set) && !excluded.has(r.id));
}

/**
 * Groups the enabled rules by target; the rules without literals of a target become one regex (exported for
 * tests). Every pattern, built-in or custom, is the PCRE text of its parsed form (./shared/regex/), so
 * wrapping each in `(?:...)` and joining them with `|` cannot change what any of them matches.
 */
export function compileWaf(w: Waf): WafTargetData[] {
  const groups = new Map<string, WafTargetData>();
  const add = (key: string, kind: WafTargetData["kind"], label: string, rule: { id: string; re: string; lits?: string[] }, custom: boolean, v?: HeaderVar) => {
    let g = groups.get(key);
    if (!g) {
      g = v === undefined ? { kind, label, ci: false, rules: [] } : { kind, label, var: v, ci: false, rules: [] };
      groups.set(key, g);
    }
    if (custom) g.ci = true;
    g.rules.push(rule);
  };
  const body = w.body !== undefined;
  for (const r of activeBuiltins(w)) {
    const re = toPcre(r.pattern);
    const rule = r.literals ? { id: r.id, re, lits: r.literals } : { id: r.id, re };
    for (const t of r.targets) {
      if (t === "body" && !body) continue;
      if (t === "userAgent") add("ua", "ua", "user-agent", rule, false);
      else add(t, t, t, rule, false);
    }
  }
  for (const r of w.rules ?? []) {
    const rule = { id: r.id, re: toPcre(r.pattern) };
    if (r.target === "header") {
      const name = r.header!.toLowerCase();
      add("header:" + name, "header", "header:" + name, rule, true, headerVar(name));
    } else if (r.target === "userAgent") add("ua", "ua", "user-agent", rule, true);
    else add(r.target, r.target, r.target, rule, true);
  }
  const order = ["path", "query", "ua", "header", "body"];
  const out = [...groups.values()].sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind) || (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
  for (const g of out) {
    const always = g.rules.filter((r) => r.lits === undefined);
    if (always.length > 0) g.always = always.map((r) => `(?:${r.re})`).join("|");
    // longest first: at a given offset the alternation reports the first literal that matches, and the
    // runtime adds the literals that are prefixes of it
    const lits = [...new Set(g.rules.flatMap((r) => r.lits ?? []))].sort((a, b) => b.length - a.length || (a < b ? -1 : a > b ? 1 : 0));
    if (lits.length > 0) g.pre = lits.map(literalRegex).join("|");
  }
  return out;
}

function checkWaf(w: Waf, policy: Policy): Diagnostic[] {
  const at = (...s: (string | number)[]) => pointer("waf", ...s);
  const out: Diagnostic[] = [...checkScope(w, at())];
  const builtinIds = new Set(BUILTIN_RULES.map((r) => r.id));
  (w.exclude ?? []).forEach((id, i) => {
    if (!builtinIds.has(id)) out.push(error("wafUnknownExclude", at("exclude", i), `"${id}" is not a built-in WAF rule`, `built-in rules: ${[...builtinIds].join(", ")}`));
  });
  const seen = new Map<string, number>();
  (w.rules ?? []).forEach((r, i) => {
    if (builtinIds.has(r.id)) out.push(error("wafDuplicateRuleId", at("rules", i, "id"), `"${r.id}" is the id of a built-in rule`, "give the custom rule another id"));
    const first = seen.get(r.id);
    if (first !== undefined) out.push(error("wafDuplicateRuleId", at("rules", i, "id"), `duplicate WAF rule id "${r.id}" (also at index ${first})`, "rule ids name the rule in the log; make them unique"));
    else seen.set(r.id, i);
    if (r.target === "header" && r.header === undefined) {
      out.push(error("wafHeaderTarget", at("rules", i, "header"), 'a rule with `target: "header"` needs the header name', 'e.g. header: "Referer"'));
    }
    if (r.target !== "header" && r.header !== undefined) {
      out.push(error("wafHeaderTarget", at("rules", i, "header"), `\`header\` only applies to \`target: "header"\`, not "${r.target}"`, 'remove `header`, or use target "header"'));
    }
    if (r.target === "body" && w.body === undefined) {
      out.push(error("wafBodyRuleWithoutBody", at("rules", i, "target"), "a body rule needs body inspection, which is off", 'add `body: { maxSize: "64k" }` to the waf settings'));
    }
    const { diagnostics, analysis } = checkPattern(r.pattern, {
      at: at("rules", i, "pattern"),
      ci: true,
      unsafe: r.unsafeRegex === true,
      invalid: "wafInvalidRegex",
      backReference: "wafBackReference",
    });
    out.push(...diagnostics);
    if (analysis?.matchesEverything) {
      out.push(error("wafEmptyMatch", at("rules", i, "pattern"), `${JSON.stringify(r.pattern)} matches the empty string in any value, so it would match every request`, "anchor it to something the request must contain"));
    }
    if (analysis && r.unsafeRegex === true && analysis.verdict === "linear") {
      out.push(warning("regexUnsafeUnused", at("rules", i, "unsafeRegex"), `the pattern of rule "${r.id}" runs in linear time; \`unsafeRegex\` is not needed`, "remove `unsafeRegex: true`, so that a later edit of the pattern is checked again"));
    }
  });
  if (w.body !== undefined) {
    const max = w.body.maxSize ?? DEFAULT_BODY_MAX;
    const bytes = sizeBytes(max);
    if (bytes === undefined || bytes === 0 || bytes > BODY_MAX_LIMIT) {
      out.push(error("wafBodySize", at("body", "maxSize"), `body inspection size "${max}" must be between 1 byte and 1m`, 'e.g. "64k" (bodies are held in memory while inspected)'));
    }
  }
  if (w.budget !== undefined) {
    const b = sizeBytes(w.budget);
    if (b === undefined || b < BUDGET_MIN || b > BUDGET_LIMIT) {
      out.push(error("wafBudget", at("budget"), `inspection budget "${w.budget}" must be between 1k and 2m`, 'e.g. "256k"; the default is body.maxSize plus 64k'));
    } else if (w.body !== undefined && b < (sizeBytes(w.body.maxSize ?? DEFAULT_BODY_MAX) ?? 0)) {
      out.push(warning("wafBudgetBelowBody", at("budget"), `the inspection budget (${w.budget}) is smaller than body.maxSize (${w.body.maxSize ?? DEFAULT_BODY_MAX}): bodies between the two are ${(w.mode ?? "block") === "block" ? "refused" : "passed uninspected"}`, "raise budget to body.maxSize plus what the other targets need, or lower body.maxSize"));
    }
  }
  if (activeBuiltins(w).length === 0 && (w.rules ?? []).length === 0) {
    out.push(warning("wafNoRules", at(), "the WAF has no rules: every built-in rule set is off and there are no custom rules", "enable a rule set or add rules"));
  }
  void policy;
  return out;
}

/**
 * WAF gate (policy `waf`): built-in rule sets (src/features/waf-rules.ts) and custom rules, compiled into
 * one regular expression per inspected target; body inspection sets the body buffer so bodies up to the
 * cap stay in memory.
 */
export const waf: Feature = {
  name: "waf",
  runtime: { key: "waf", stages: { access: { "gate:waf": true }, initWorker: { waf: true } } },
  check(policy) {
    return policy.waf ? checkWaf(policy.waf, policy) : [];
  },
  lower(policy, ir) {
    const w = policy.waf;
    if (!w) return;
    const bodyMax = w.body !== undefined ? sizeBytes(w.body.maxSize ?? DEFAULT_BODY_MAX)! : undefined;
    const data: WafData = { block: (w.mode ?? "block") === "block", targets: compileWaf(w), bodyMax, budget: inspectionBudget(w), scope: lowerScope(w) };
    ir.luaData.waf = data;
    if (bodyMax !== undefined) {
      ir.slots.server.push({ partial: "waf", data: { bodyBuffer: String(bodyMax) } });
    }
  },
};
