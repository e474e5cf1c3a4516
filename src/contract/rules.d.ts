import type { ArgVar, CookieVar, HeaderVar } from "./names.js";
import type { IpRangeSetData } from "./ip.js";

/** The rules engine's data (src/features/rules.ts -> lua-src/features/rules.ts). */

/** A condition in normal form, as the runtime compiles it into a closure. */
export type RuleCond =
  | { t: "and" | "or"; c: RuleCond[] }
  | { t: "not"; c: RuleCond }
  | { t: "path"; exact: Record<string, true>; prefix: string[]; re: string[] }
  | { t: "ext" | "method"; set: Record<string, true> }
  | { t: "host"; exact: Record<string, true>; suffix: string[] }
  | { t: "var"; v: HeaderVar | CookieVar; op: "exists" | "absent" | "equals" | "matches"; value?: string }
  | { t: "arg"; v: ArgVar; op: "exists" | "absent" | "equals"; value?: string }
  | { t: "country"; v: string; set: Record<string, true> }
  | { t: "cidr"; set: IpRangeSetData }
  | { t: "ua"; re: string };

/** An origin pool a rule routes to: the proxy_pass URL and the Host header ("" = the client's). */
export interface RulePoolTarget {
  url: string;
  host: string;
}

export interface RuleExperimentData {
  name: string;
  by: "cookie" | "ip";
  cookie: string;
  cookieVar: CookieVar;
  /** Key of the per-experiment counter in the experiments dict. */
  counter: string;
  ipPrefix: string;
  /** Cookie Max-Age, seconds. */
  maxAge: number;
  header: string;
  prefix: boolean;
  key: boolean;
  /** Cumulative weights (0..1], ascending. */
  variants: { name: string; upto: number }[];
  names: Record<string, true>;
}

export interface RuleImageData {
  origin?: RulePoolTarget;
  formats: string[];
  url: string;
  widthParam: ArgVar;
  widths: number[];
}

export interface RuleData {
  name: string;
  /** Evaluation continues after this rule matched. */
  cont: boolean;
  cond: RuleCond;
  bypass?: boolean;
  /** Named location of a TTL override ("@cdn_ttl_<seconds>"). */
  ttl?: string;
  key?: { vars: (HeaderVar | CookieVar | string)[]; tag: string };
  reqSet?: [string, string][];
  reqRemove?: string[];
  resSet?: [string, string][];
  resRemove?: string[];
  origin?: RulePoolTarget;
  rewrite?: { path?: string; strip?: string; add?: string };
  redirect?: { to: string; status: number; keepQuery: boolean };
  respond?: { status: number; body: string; type: string };
  deny?: number;
  geo?: { v: string; map: Record<string, RulePoolTarget>; default: RulePoolTarget };
  exp?: RuleExperimentData;
  image?: RuleImageData;
  /** The rule has response header work. */
  hdr: boolean;
}

/** Indexes of rule positions (0-based) by a necessary condition; `always` rules are evaluated on every request. */
export interface RulesIndexData {
  exact: Record<string, number[]>;
  prefix: { p: string; rules: number[] }[];
  ext: Record<string, number[]>;
  host: Record<string, number[]>;
  hostSuffix: Record<string, number[]>;
  always: number[];
}

export interface RulesData {
  rules: RuleData[];
  index: RulesIndexData;
  hasHeader: boolean;
  hasTtl: boolean;
  hasCookie: boolean;
  keyParts: boolean;
  routed: boolean;
}
