import type { LuaFeature } from "../core/feature";
import { cache } from "./cache";
import { headers } from "./headers";
import { rules, rulesLate } from "./rules";
import { originSecret } from "./origin-secret";
import { ipRules } from "./ip-rules";
import { waf } from "./waf";

/** Lua features in the order their handlers run within a phase (access gates first, cheapest first). */
export const FEATURES: LuaFeature<any>[] = [originSecret, ipRules, waf, rules, cache, headers, rulesLate];
