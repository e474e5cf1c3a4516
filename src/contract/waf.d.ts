import type { HeaderVar } from "./names.js";
import type { ScopeData } from "./gate-scope.js";

/** One inspected part of the request and its rules (src/features/waf.ts -> lua-src/features/waf.ts). */
export interface WafTargetData {
  kind: "path" | "query" | "ua" | "header" | "body";
  /** Label in the log line ("path", "query", "user-agent", "header:referer", "body"). */
  label: string;
  /** nginx variable of a `header` target. */
  var?: HeaderVar;
  /** Case-insensitive matching: only for targets with custom rules (built-in patterns are lower-case). */
  ci: boolean;
  /**
   * The rules in order. A rule with `lits` runs only when one of its literals is in the input (checked by
   * `pre` first, one regex pass for all of them); the others are combined into `always`.
   */
  rules: { id: string; re: string; lits?: string[] }[];
  /**
   * The rules without literals as one PCRE alternation, run on every request. Each rule's pattern is the PCRE
   * text of its parsed form, wrapped in `(?:...)`, so the alternation matches exactly when one of them does.
   */
  always?: string;
  /** The literals of the other rules as one PCRE alternation: the prefilter, run on every request. */
  pre?: string;
}

export interface WafData {
  block: boolean;
  targets: WafTargetData[];
  /** Bytes of a request body inspected; absent: bodies are not inspected. */
  bodyMax?: number;
  /** Most bytes inspected per request over every target; past it, `block` decides (src/features/waf.ts). */
  budget: number;
  scope?: ScopeData;
}
