/** Policy data of the WAF gate (src/features/waf.ts). */

interface WafTargetData {
  kind: "path" | "query" | "ua" | "header" | "body";
  label: string;
  var?: string;
  re: string;
  rules: { id: string; re: string }[];
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
