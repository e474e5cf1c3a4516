import type { Feature } from "./feature.js";
import { server } from "./server.js";
import { origins } from "./origins.js";
import { cache } from "./cache.js";
import { headers } from "./headers.js";
import { health } from "./health.js";
import { accessLog } from "./access-log.js";
import { purge } from "./purge.js";
import { rules } from "./rules.js";
import { redis } from "./redis.js";
import { jwt } from "./jwt.js";
import { signedUrls } from "./signed-urls.js";
import { rateLimit } from "./rate-limit.js";
import { originSecret } from "./origin-secret.js";
import { ipRules } from "./ip-rules.js";
import { waf } from "./waf.js";

/**
 * Every feature, in the order their checks run and their parts are emitted. Access gates (when added) go
 * cheapest first; see docs/architecture.md and docs/gates.md.
 */
export const FEATURES: readonly Feature[] = [
  server,
  origins,
  redis,
  originSecret,
  ipRules,
  rateLimit,
  waf,
  jwt,
  signedUrls,
  cache,
  headers,
  health,
  accessLog,
  purge,
  rules,
];

export type { Feature };
