import type { LuaFeature } from "../core/feature";
import { cache } from "./cache";
import { headers } from "./headers";
import { purge } from "./purge";
import { rules, rulesLate } from "./rules";

/** Lua features in the order their handlers run within a phase (access gates will go first, cheapest first). */
export const FEATURES: LuaFeature<any>[] = [rules, cache, purge, headers, rulesLate];
