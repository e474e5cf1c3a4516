/** The JWT gate's policy data (src/features/jwt.ts, `JwtData`). */
interface JwtData {
  algs: LuaTable<string, boolean>;
  family: "hmac" | "rsa";
  secretEnv?: string;
  pem?: string;
  pemFile?: string;
  pemEnv?: string;
  issuers?: LuaTable<string, boolean>;
  audiences?: LuaTable<string, boolean>;
  skew: number;
  requireExp: boolean;
  cookieVar?: string;
  forward: [string, string][];
  strip: string[];
  realm: string;
  scope?: import("../core/gate-scope").ScopeData;
}

interface FeaturesData {
  jwt?: JwtData;
}
