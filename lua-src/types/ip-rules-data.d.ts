/** Policy data of the IP rules gate (src/features/ip-rules.ts, src/util/ip-ranges.ts). */

interface IpRangeSetData {
  /** IPv4 ranges: starts and inclusive ends, ascending, merged. */
  v4: { s: number[]; e: number[] };
  /** IPv6 ranges as 32-digit lower-case hex strings. */
  v6: { s: string[]; e: string[] };
}

interface IpRulesData {
  allow?: IpRangeSetData;
  deny?: IpRangeSetData;
  trusted?: IpRangeSetData;
  /** nginx variable of the real-IP header. */
  headerVar: string;
  /** The header is X-Forwarded-For (a list, read right to left). */
  xff: boolean;
  scope: import("../core/gate-scope").ScopeData;
}

interface FeaturesData {
  ipRules?: IpRulesData;
}
