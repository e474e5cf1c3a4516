/** Policy data of the origin secret gate (src/features/origin-secret.ts). */

interface OriginSecretData {
  header: string;
  headerVar: string;
  /** Environment variables holding the accepted secrets (read at init). */
  envs: string[];
  loopback: boolean;
  scope: import("../core/gate-scope").ScopeData;
}

interface FeaturesData {
  originSecret?: OriginSecretData;
}
