import { createPublicKey } from "node:crypto";
import type { Feature } from "./shared/feature.js";
import type { Jwt, JwtAlgorithm } from "../policy/types.js";
import { error, pointer, warning, type Diagnostic } from "../validate/diagnostic.js";
import { checkDuration, checkUnique } from "../validate/checks.js";
import { durationMs } from "../util/units.js";
import { useEnv } from "../ir/env.js";
import { checkScope, lowerScope } from "./shared/gate-scope.js";

const HMAC_ALGS: readonly JwtAlgorithm[] = ["HS256", "HS384", "HS512"];
/** Request headers a claim must never overwrite: nginx frames, routes or authenticates with them. */
const RESERVED = new Set(["authorization", "host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer", "cookie", "expect"]);
const CLAIM = /^[\x21-\x7e]{1,128}$/;

import type { JwtData } from "../contract/index.js";

function list(v: string | string[] | undefined): string[] | undefined {
  return v === undefined ? undefined : typeof v === "string" ? [v] : v;
}

/** Checks an inline PEM the way OpenSSL will read it: an RSA public key. */
function checkPem(pem: string, at: string): Diagnostic[] {
  let key;
  try {
    key = createPublicKey({ key: pem, format: "pem" });
  } catch (e) {
    return [error("jwtInvalidPem", at, `the public key is not a valid PEM public key (${(e as Error).message})`, 'paste a "-----BEGIN PUBLIC KEY-----" block (SubjectPublicKeyInfo), e.g. from `openssl rsa -pubout`')];
  }
  if (!/^-----BEGIN PUBLIC KEY-----/.test(pem.trim())) {
    return [error("jwtInvalidPem", at, "the public key must be a SubjectPublicKeyInfo PEM (-----BEGIN PUBLIC KEY-----)", "convert it with `openssl rsa -pubin -in key.pem -RSAPublicKey_in -pubout` or `openssl pkey -pubout`")];
  }
  if (key.asymmetricKeyType !== "rsa") {
    return [error("jwtUnsuitableKey", at, `RS256 needs an RSA public key, this one is ${key.asymmetricKeyType}`, "use the RSA public key of the token issuer")];
  }
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < 2048) return [error("jwtUnsuitableKey", at, `the RSA key has ${bits} bits; at least 2048 are required`, "ask the issuer for a 2048-bit or larger key")];
  return [];
}

function check(policy: { jwt?: Jwt; cache?: { bypass?: { cookies?: string[] } } }): Diagnostic[] {
  const j = policy.jwt;
  if (!j) return [];
  const out: Diagnostic[] = [];
  const at = (...s: (string | number)[]) => pointer("jwt", ...s);
  out.push(...checkScope(j, at()));
  const algs = j.algorithms;
  out.push(...checkUnique(algs, (i) => at("algorithms", i), "algorithm"));
  const hmac = algs.filter((a) => HMAC_ALGS.includes(a));
  const rsa = algs.filter((a) => !HMAC_ALGS.includes(a));
  if (hmac.length && rsa.length) {
    out.push(error("jwtMixedAlgorithms", at("algorithms"), `HMAC (${hmac.join(", ")}) and RSA (${rsa.join(", ")}) algorithms are mixed`, "one gate has one key: list only HS256/HS384/HS512 (with `secret`) or only RS256 (with `publicKey`)"));
  }
  if (hmac.length) {
    if (!j.secret) out.push(error("jwtMissingSecret", at("secret"), `${hmac.join(", ")} needs an HMAC secret`, 'add `secret: env("JWT_SECRET")`'));
    if (j.publicKey && !rsa.length) out.push(error("jwtUnusedKey", at("publicKey"), "a public key is set but only HMAC algorithms are accepted", "remove `publicKey`, or accept RS256 instead of the HS algorithms"));
  }
  if (rsa.length) {
    if (!j.publicKey) out.push(error("jwtMissingPublicKey", at("publicKey"), "RS256 needs the issuer's RSA public key", 'add `publicKey: { pem: "-----BEGIN PUBLIC KEY-----..." }`, `{ file: "/etc/edge/jwt.pem" }` or `env("JWT_PUBLIC_KEY")`'));
    if (j.secret && !hmac.length) out.push(error("jwtUnusedKey", at("secret"), "an HMAC secret is set but only RS256 is accepted", "remove `secret`: RS256 tokens are verified with `publicKey` only"));
  }
  const pk = j.publicKey;
  if (pk && "pem" in pk) out.push(...checkPem(pk.pem, at("publicKey", "pem")));
  if (pk && "file" in pk && (pk.file === "" || pk.file.split("/").includes(".."))) {
    out.push(error("jwtKeyFilePath", at("publicKey", "file"), "the key file path must be non-empty and must not contain '..'", 'use an absolute path like "/etc/edge/jwt.pem" or one inside the bundle'));
  }
  out.push(...checkDuration(j.clockSkew, at("clockSkew"), { allowZero: true }));
  const skew = j.clockSkew !== undefined ? durationMs(j.clockSkew) : undefined;
  if (skew !== undefined && skew > 600_000) {
    out.push(error("jwtClockSkewTooLarge", at("clockSkew"), `a clock skew of ${j.clockSkew} keeps expired tokens valid for too long`, 'keep it at 10 minutes or less, e.g. "30s"'));
  }
  for (const key of ["issuer", "audience"] as const) {
    const v = list(j[key]);
    if (v === undefined) continue;
    if (v.length === 0) out.push(error("jwtEmptyIssuerOrAudience", at(key), `the ${key} list is empty, so no token would pass`, `list at least one ${key}, or remove the key`));
    v.forEach((s, i) => {
      if (s === "") out.push(error("jwtEmptyIssuerOrAudience", typeof j[key] === "string" ? at(key) : at(key, i), `an empty ${key} never matches`, `write the exact ${key} string`));
    });
  }
  const fwd = j.forwardClaims ?? {};
  const claims = Object.keys(fwd);
  for (const claim of claims) {
    const header = fwd[claim]!;
    if (!CLAIM.test(claim)) out.push(error("jwtInvalidClaimName", at("forwardClaims", claim), `"${claim}" is not a usable claim name`, "use the claim's name as it appears in the token payload (printable ASCII, no spaces)"));
    if (RESERVED.has(header.toLowerCase())) {
      out.push(error("jwtReservedClaimHeader", at("forwardClaims", claim), `claims cannot be forwarded in the ${header} header`, "pick a header of your own, e.g. X-User-Id"));
    }
  }
  out.push(...checkUnique(claims.map((c) => fwd[c]!), (i) => at("forwardClaims", claims[i]!), "claim header"));
  if (j.cookie && policy.cache && !(policy.cache.bypass?.cookies ?? []).some((c) => c === j.cookie) && claims.length) {
    out.push(
      warning(
        "jwtCookieNotBypassed",
        at("cookie"),
        `tokens from the "${j.cookie}" cookie do not bypass the cache, so a response the origin built for one user (from the forwarded claims) can be served to another valid token holder`,
        `add "${j.cookie}" to cache.bypass.cookies, or have the origin send Cache-Control: private for per-user responses`,
      ),
    );
  }
  return out;
}

function lower(policy: { jwt?: Jwt }, ir: Parameters<NonNullable<Feature["lower"]>>[1]): void {
  const j = policy.jwt;
  if (!j) return;
  const family = j.algorithms.some((a) => HMAC_ALGS.includes(a)) ? "hmac" : "rsa";
  const fwd = Object.entries(j.forwardClaims ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const data: JwtData = {
    algs: Object.fromEntries([...j.algorithms].sort().map((a) => [a, true])),
    family,
    skew: Math.floor((durationMs(j.clockSkew ?? "30s") ?? 30_000) / 1000),
    requireExp: j.requireExp ?? true,
    forward: fwd,
    strip: [...new Set(fwd.map(([, h]) => h.toLowerCase()))].sort(),
    realm: j.realm ?? "edge",
  };
  if (family === "hmac") data.secretEnv = useEnv(ir, j.secret!);
  else {
    const pk = j.publicKey!;
    if ("pem" in pk) data.pem = pk.pem;
    else if ("file" in pk) data.pemFile = pk.file;
    else data.pemEnv = useEnv(ir, pk);
  }
  const iss = list(j.issuer);
  if (iss) data.issuers = Object.fromEntries([...iss].sort().map((s) => [s, true]));
  const aud = list(j.audience);
  if (aud) data.audiences = Object.fromEntries([...aud].sort().map((s) => [s, true]));
  if (j.cookie) data.cookieVar = `cookie_${j.cookie}`;
  const scope = lowerScope(j);
  if (scope) data.scope = scope;
  ir.luaData.jwt = data;
}

/** The JWT gate (HS256/384/512, RS256): compile-time checks and the Lua data of `lua-src/features/jwt.ts`. */
export const jwt: Feature = { name: "jwt", runtime: { key: "jwt", stages: { access: { "gate:jwt": true } } }, check, lower };
