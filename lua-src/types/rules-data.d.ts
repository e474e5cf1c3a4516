/** The rules engine's policy data (src/features/rules.ts builds it; see `luaRule` and `buildIndex`). */

type RuleCond =
  | { t: "and" | "or"; c: RuleCond[] }
  | { t: "not"; c: RuleCond }
  | { t: "path"; exact: LuaTable<string, boolean>; prefix: string[]; re: string[] }
  | { t: "ext" | "method"; set: LuaTable<string, boolean> }
  | { t: "host"; exact: LuaTable<string, boolean>; suffix: string[] }
  | { t: "var" | "arg"; v: string; op: "exists" | "absent" | "equals" | "matches"; value?: string }
  | { t: "country"; v: string; set: LuaTable<string, boolean> }
  | { t: "cidr"; nets: { family: number; words: number[]; prefix: number }[] }
  | { t: "ua"; re: string };

interface RulePoolTarget {
  url: string;
  host: string;
}

interface RuleData {
  name: string;
  cont: boolean;
  cond: RuleCond;
  bypass?: boolean;
  ttl?: string;
  key?: { vars: string[]; tag: string };
  reqSet?: [string, string][];
  reqRemove?: string[];
  resSet?: [string, string][];
  resRemove?: string[];
  origin?: RulePoolTarget;
  rewrite?: { path?: string; strip?: string; add?: string };
  redirect?: { to: string; status: number; keepQuery: boolean };
  respond?: { status: number; body: string; type: string };
  deny?: number;
  geo?: { v: string; map: LuaTable<string, RulePoolTarget>; default: RulePoolTarget };
  exp?: {
    name: string;
    by: "cookie" | "ip";
    cookie: string;
    cookieVar: string;
    counter: string;
    ipPrefix: string;
    maxAge: number;
    header: string;
    prefix: boolean;
    key: boolean;
    variants: { name: string; upto: number }[];
    names: LuaTable<string, boolean>;
  };
  image?: { origin?: RulePoolTarget; formats: string[]; url: string; widthParam: string; widths: number[] };
  hdr: boolean;
}

interface RulesIndexData {
  exact: LuaTable<string, number[]>;
  prefix: { p: string; rules: number[] }[];
  ext: LuaTable<string, number[]>;
  host: LuaTable<string, number[]>;
  hostSuffix: LuaTable<string, number[]>;
  always: number[];
}

interface RulesData {
  rules: RuleData[];
  index: RulesIndexData;
  hasHeader: boolean;
  hasTtl: boolean;
  hasCookie: boolean;
  keyParts: boolean;
  routed: boolean;
}

interface FeaturesData {
  rules?: RulesData;
}
