/** Policy data of the WAF gate (src/features/waf.ts). */

interface WafTargetData {
  kind: "path" | "query" | "ua" | "header" | "body";
  label: string;
  var?: string;
  /** Match case-insensitively (the target has custom rules). */
  ci: boolean;
  /** Rules with literals run only when a literal is present; `\xHH` in a literal is a byte. */
  rules: { id: string; re: string; lits?: string[] }[];
  /** The rules without literals as one alternation, run on every request. */
  always?: string;
  /** The literals of the rules that have some, as one alternation (the prefilter). */
  pre?: string;
}

interface WafData {
  block: boolean;
  targets: WafTargetData[];
  bodyMax?: number;
  scope: import("../core/gate-scope").ScopeData;
}

interface FeaturesData {
  waf?: WafData;
}
