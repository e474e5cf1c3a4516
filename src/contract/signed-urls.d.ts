import type { ScopeData } from "./gate-scope.js";

/** The signed-URL gate's data (src/features/signed-urls.ts -> lua-src/features/signed-urls.ts). */
export interface SignedUrlsData {
  secretEnv: string;
  /** Signatures in hex (else base64url). */
  hex: boolean;
  expParam: string;
  sigParam: string;
  requireIp: boolean;
  scope?: ScopeData;
}
