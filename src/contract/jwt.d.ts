import type { CookieVar } from "./names.js";
import type { ScopeData } from "./gate-scope.js";

/** The JWT gate's data (src/features/jwt.ts -> lua-src/features/jwt.ts). */
export interface JwtData {
  algs: Record<string, true>;
  family: "hmac" | "rsa";
  secretEnv?: string;
  pem?: string;
  pemFile?: string;
  pemEnv?: string;
  issuers?: Record<string, true>;
  audiences?: Record<string, true>;
  /** Clock skew allowed on exp/nbf, seconds. */
  skew: number;
  requireExp: boolean;
  cookieVar?: CookieVar;
  /** [claim, header] pairs forwarded to the origin. */
  forward: [string, string][];
  /** Request headers removed before the gate (the claim headers, lower-case). */
  strip: string[];
  realm: string;
  scope?: ScopeData;
}
