import type { HeaderVar } from "./names.js";
import type { ScopeData } from "./gate-scope.js";

/** The origin secret gate's data (src/features/origin-secret.ts -> lua-src/features/origin-secret.ts). */
export interface OriginSecretData {
  header: string;
  headerVar: HeaderVar;
  /** Environment variables holding the accepted secrets (read at init). */
  envs: string[];
  /** Requests from loopback addresses pass without the secret. */
  loopback: boolean;
  scope?: ScopeData;
}
