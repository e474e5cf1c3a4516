import type { IpRangeSetData } from "./ip.js";
import type { ScopeData } from "./gate-scope.js";

/** The IP rules gate's data (src/features/ip-rules.ts -> lua-src/features/ip-rules.ts). */
export interface IpRulesData {
  allow?: IpRangeSetData;
  deny?: IpRangeSetData;
  scope?: ScopeData;
}
