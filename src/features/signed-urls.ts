import type { Feature } from "./shared/feature.js";
import type { SignedUrls } from "../policy/types.js";
import { error, pointer, warning, type Diagnostic } from "../validate/diagnostic.js";
import { useEnv } from "../ir/env.js";
import { checkScope, lowerScope } from "./shared/gate-scope.js";

import type { SignedUrlsData } from "../contract/index.js";

/** Defaults of the signed-URL settings, shared with `src/sign.ts`. */
export function signedUrlSettings(s: SignedUrls): { encoding: "hex" | "base64url"; expiresParam: string; signatureParam: string; requireIp: boolean } {
  return {
    encoding: s.encoding ?? "hex",
    expiresParam: s.expiresParam ?? "expires",
    signatureParam: s.signatureParam ?? "signature",
    requireIp: s.requireIp ?? false,
  };
}

function check(policy: { signedUrls?: SignedUrls }): Diagnostic[] {
  const s = policy.signedUrls;
  if (!s) return [];
  const out: Diagnostic[] = [];
  const at = (...p: (string | number)[]) => pointer("signedUrls", ...p);
  out.push(...checkScope(s, at()));
  const d = signedUrlSettings(s);
  if (d.expiresParam === d.signatureParam) {
    out.push(error("signedUrlsSameParam", at("signatureParam"), `the expiry and the signature use the same query parameter "${d.signatureParam}"`, 'give them different names, e.g. "expires" and "signature"'));
  }
  if (!s.paths) {
    out.push(
      warning("signedUrlsEverywhere", at(), "signed URLs are required on every path (no `paths`), so no page of the site can be fetched without a signature", 'scope the gate, e.g. `paths: ["/downloads/*"]`'),
    );
  }
  return out;
}

function lower(policy: { signedUrls?: SignedUrls }, ir: Parameters<NonNullable<Feature["lower"]>>[1]): void {
  const s = policy.signedUrls;
  if (!s) return;
  const d = signedUrlSettings(s);
  const data: SignedUrlsData = {
    secretEnv: useEnv(ir, s.secret),
    hex: d.encoding === "hex",
    expParam: d.expiresParam,
    sigParam: d.signatureParam,
    requireIp: d.requireIp,
  };
  const scope = lowerScope(s);
  if (scope) data.scope = scope;
  ir.luaData.signedUrls = data;
}

/** The signed-URL gate: HMAC-SHA256 over path, expiry, remaining query (and client IP). */
export const signedUrls: Feature = { name: "signed-urls", runtime: { key: "signedUrls", stages: { access: { "gate:signed": true } } }, check, lower };
