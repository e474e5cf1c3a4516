import type { LuaFeature } from "../core/feature";
import { cache } from "./cache";
import { headers } from "./headers";
import { jwt } from "./jwt";
import { signedUrls } from "./signed-urls";
import { purge } from "./purge";
import { rules, rulesLate } from "./rules";
import { rateLimit, rateLimitLate } from "./rate-limit";
import { originSecret } from "./origin-secret";
import { ipRules } from "./ip-rules";
import { waf } from "./waf";

/** Lua features in the order their handlers run within a phase (access gates first, cheapest first). */
export const FEATURES: LuaFeature<any>[] = [
  originSecret,
  ipRules,
  rateLimit,
  waf,
  jwt,
  signedUrls,
  rateLimitLate,
  rules,
  cache,
  purge,
  headers,
  rulesLate,
];
