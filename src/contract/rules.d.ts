import type { ArgVar, CookieVar, HeaderVar } from "./names.js";
import type { IpRangeSetData } from "./ip.js";
import type { HeaderValueData } from "./headers.js";

/** The rules engine's data (src/features/rules.ts -> lua-src/features/rules.ts). */

/** A condition in normal form, as the runtime compiles it into a closure. */
export type RuleCond =
  | { t: "and" | "or"; c: RuleCond[] }
  | { t: "not"; c: RuleCond }
  | { t: "path"; exact?: Record<string, true>; prefix?: string[]; re?: string[] }
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
  /**
   * What must still hold once the index found the rule (the index guarantees its host, and its exact paths
   * and prefixes, extensions or methods when it was found by them); absent: nothing more, the rule matches.
   */
  cond?: RuleCond;
  bypass?: boolean;
  /** Named location of a TTL override ("@cdn_ttl_<seconds>"). */
  ttl?: string;
  key?: { vars: (HeaderVar | CookieVar | string)[]; tag: string };
  reqSet?: [string, HeaderValueData][];
  reqRemove?: string[];
  resSet?: [string, HeaderValueData][];
  resRemove?: string[];
  origin?: RulePoolTarget;
  rewrite?: { path?: string; strip?: string; add?: string };
  redirect?: { to: string; status: number; keepQuery: boolean };
  respond?: { status: number; body: string; type: string };
  deny?: number;
  geo?: { v: string; map: Record<string, RulePoolTarget>; default: RulePoolTarget };
  exp?: RuleExperimentData;
  image?: RuleImageData;
  /** Body size limit in bytes for the requests this rule matches (lua-src/features/client.ts enforces it). */
  maxBody?: number;
  /** The request is a WebSocket request (lua-src/features/websocket.ts reads $cdn_ws_rule). */
  ws?: true;
  /** The rule has response header work. */
  hdr: boolean;
}

/**
 * One share of the rules index (src/features/rules/rule-index.ts): rule positions (0-based), each list in rule
 * order. A rule is in one kind of list only, and its keys of that kind are disjoint, so a request finds it at
 * most once.
 */
export interface RulesPathIndex {
  /** Exact path -> rules. */
  exact?: Record<string, number[]>;
  /** Path prefixes (and the literal start of globs and `^` regexes), built into a byte trie at init. */
  prefix?: { p: string; rules: number[] }[];
  /** Lower-case extension -> rules. */
  ext?: Record<string, number[]>;
  /** Method -> rules (rules with a method but no path or extension to look up). */
  method?: Record<string, number[]>;
  /** Rules with nothing to look up: evaluated for every request of this share. */
  rest?: number[];
}

/** The rules index: the share of every request, and one share per exact host and per `*.suffix` host. */
export interface RulesIndexData {
  any?: RulesPathIndex;
  host?: Record<string, RulesPathIndex>;
  /** ".example.com" (for `*.example.com`) -> its share. */
  hostSuffix?: Record<string, RulesPathIndex>;
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
