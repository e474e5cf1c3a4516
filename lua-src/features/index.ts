import type { LuaFeature } from "../core/feature";
import { cache } from "./cache";
import { headers } from "./headers";
import { rules, rulesLate } from "./rules";
import { rateLimit, rateLimitLate } from "./rate-limit";

/** Lua features in the order their handlers run within a phase (access gates will go first, cheapest first). */
export const FEATURES: LuaFeature<any>[] = [rateLimit, rateLimitLate, rules, cache, headers, rulesLate];
