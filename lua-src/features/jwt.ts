import type { LuaFeature } from "../core/feature";
import { compileScope } from "../core/gate-scope";
import { readEnv } from "../core/env";
import { decodeBase64url } from "../core/base64url";
import { decodeJson, isJsonArray, isJsonObject } from "../core/json";
import type { JwtData } from "../../src/contract/index";
import { constantTimeEquals, digestOf, hmac, parseRsaPublicKey, rsaVerify, type PublicKey } from "../core/crypto";
import { countRefusal } from "../core/metrics";

/**
 * The JWT gate. On every proxied request it removes client-sent copies of the claim headers; in scope it
 * requires a valid token (signature with the policy's key and algorithms, exp/nbf with clock skew, iss,
 * aud), forwards the chosen claims as request headers and leaves the verified claims in
 * `ngx.ctx.cdn_jwt_claims` for later handlers (claim-keyed rate limits). Refusals are 401 + WWW-Authenticate.
 */

const MAX_TOKEN = 8192;
const CACHE_MAX = 4096;

interface Verified {
  claims: LuaTable<string, unknown>;
  exp?: number;
  nbf?: number;
  /** Header values of the forwarded claims, in `forward` order (undefined: not forwarded). */
  fwd: (string | undefined)[];
}

function readKeyFile(path: string): LuaMultiReturn<[string | undefined, string | undefined]> {
  const full = string.sub(path, 1, 1) === "/" ? path : ngx.config.prefix() + path;
  const [f, err] = io.open(full, "rb");
  if (f === undefined) return $multi(undefined, tostring(err));
  const text = f.read("*a") as unknown as string | undefined;
  f.close();
  return $multi(text, undefined);
}

/** The key named by the policy, or why it is unusable (then every request in scope fails with 500). */
function loadKey(data: JwtData): LuaMultiReturn<[string | PublicKey | undefined, string | undefined]> {
  if (data.family === "hmac") {
    const secret = readEnv(data.secretEnv!);
    if (secret === undefined) return $multi(undefined, "the environment variable " + data.secretEnv! + " (HMAC secret) is not set");
    return $multi(secret, undefined);
  }
  let pem = data.pem;
  if (data.pemEnv !== undefined) {
    pem = readEnv(data.pemEnv);
    if (pem === undefined) return $multi(undefined, "the environment variable " + data.pemEnv + " (RSA public key) is not set");
  } else if (data.pemFile !== undefined) {
    const [text, err] = readKeyFile(data.pemFile);
    if (text === undefined) return $multi(undefined, "cannot read the RSA public key file " + data.pemFile + ": " + tostring(err));
    pem = text;
  }
  const [key, err] = parseRsaPublicKey(pem!);
  if (key === undefined) return $multi(undefined, "the RSA public key is unusable: " + tostring(err));
  if (key.bits < 2048) return $multi(undefined, "the RSA public key has " + tostring(key.bits) + " bits; at least 2048 are required");
  return $multi(key, undefined);
}

/** A claim value as a header value, or undefined when it has none (objects, control characters). */
function headerValue(v: unknown): string | undefined {
  const t = type(v);
  let s: string | undefined;
  if (t === "string") s = v as string;
  else if (t === "number") s = v === math.floor(v as number) && math.abs(v as number) < 1e15 ? string.format("%d", v as number) : tostring(v);
  else if (t === "boolean") s = v ? "true" : "false";
  else if (isJsonArray(v)) {
    const parts: string[] = [];
    for (const item of v) {
      const it = type(item);
      if (it !== "string" && it !== "number" && it !== "boolean") return undefined;
      parts.push(headerValue(item)!);
    }
    s = table.concat(parts, ",");
  }
  if (s === undefined || string.find(s, "[%z\x01-\x1f\x7f]")[0] !== undefined) return undefined;
  return s;
}

export const jwt: LuaFeature<"jwt"> = {
  key: "jwt",
  setup(data) {
    const inScope = compileScope(data.scope);
    const strip = data.strip;
    const forward = data.forward;
    const algs = data.algs;
    const issuers = data.issuers;
    const audiences = data.audiences;
    const skew = data.skew;
    const requireExp = data.requireExp;
    const cookieVar = data.cookieVar;
    const hmacFamily = data.family === "hmac";
    const [key, keyError] = loadKey(data);
    if (keyError !== undefined) ngx.log(ngx.WARN, "jwt gate: ", keyError, "; requests it guards will get 500");
    const challenge = 'Bearer realm="' + data.realm + '"';
    const clearHeader = ngx.req.clear_header;
    const setHeader = ngx.req.set_header;

    const refuse = (reason: string | undefined): never => {
      countRefusal("jwt", reason ?? "missing token");
      const h = ngx.header;
      h.set("WWW-Authenticate", reason === undefined ? challenge : challenge + ', error="invalid_token", error_description="' + reason + '"');
      h.set("Cache-Control", "no-store");
      h.set("Content-Type", "text/plain");
      const body = reason === undefined ? "missing bearer token\n" : "invalid_token: " + reason + "\n";
      h.set("Content-Length", tostring(body.length));
      ngx.status = ngx.HTTP_UNAUTHORIZED;
      ngx.print(body);
      return ngx.exit(ngx.HTTP_OK);
    };

    /** Verifies signature, header and claims (all but the time checks): the cache entry, or a refusal. */
    const verify = (token: string): Verified => {
      if (token.length > MAX_TOKEN) refuse("token too large");
      const [d1] = string.find(token, ".", 1, true);
      if (d1 === undefined) refuse("malformed token");
      const [d2] = string.find(token, ".", d1! + 1, true);
      if (d2 === undefined || string.find(token, ".", d2 + 1, true)[0] !== undefined) refuse("malformed token");
      const hRaw = decodeBase64url(string.sub(token, 1, d1! - 1));
      const header = hRaw === undefined ? undefined : decodeJson(hRaw, 4, 2048);
      if (!isJsonObject(header)) return refuse("malformed token header");
      const alg = header.get("alg");
      if (typeof alg !== "string" || algs[alg] !== true) return refuse("algorithm not accepted");
      if (header.get("crit") !== undefined) return refuse("unsupported critical header");
      const sig = decodeBase64url(string.sub(token, d2! + 1));
      if (sig === undefined || sig === "") return refuse("malformed signature");
      const signed = string.sub(token, 1, d2! - 1);
      if (hmacFamily) {
        if (!constantTimeEquals(hmac(digestOf(alg), key as string, signed), sig)) return refuse("bad signature");
      } else if (!rsaVerify(key as PublicKey, digestOf(alg), signed, sig)) return refuse("bad signature");
      const pRaw = decodeBase64url(string.sub(token, d1! + 1, d2! - 1));
      const claims = pRaw === undefined ? undefined : decodeJson(pRaw);
      if (!isJsonObject(claims)) return refuse("malformed token payload");
      const exp = claims.get("exp");
      if (exp === undefined) {
        if (requireExp) return refuse("no expiry");
      } else if (typeof exp !== "number") return refuse("malformed expiry");
      const nbf = claims.get("nbf");
      if (nbf !== undefined && typeof nbf !== "number") return refuse("malformed nbf");
      if (issuers !== undefined) {
        const iss = claims.get("iss");
        if (typeof iss !== "string" || issuers[iss] !== true) return refuse("wrong issuer");
      }
      if (audiences !== undefined) {
        const aud = claims.get("aud");
        let ok = false;
        if (typeof aud === "string") ok = audiences[aud] === true;
        else if (isJsonArray(aud)) {
          for (const a of aud) {
            if (typeof a === "string" && audiences[a] === true) {
              ok = true;
              break;
            }
          }
        }
        if (!ok) return refuse("wrong audience");
      }
      const fwd: (string | undefined)[] = [];
      for (let i = 0; i < forward.length; i++) fwd[i] = headerValue(claims.get(forward[i][0]));
      return { claims, exp: exp as number | undefined, nbf: nbf as number | undefined, fwd };
    };

    // Verified tokens, per worker: a repeated token (the common case: one client, many requests) costs a
    // table lookup and the time checks. Bounded: the table is dropped when it holds CACHE_MAX tokens.
    let cache = new LuaTable<string, Verified>();
    let cached = 0;

    return {
      access: {
        "gate:jwt": () => {
        const vars = ngx.var;
        // client-sent claim headers never reach the origin, whether or not this path is gated
        for (let i = 0; i < strip.length; i++) clearHeader(strip[i]);
        if (!inScope()) return;
        let token: string | undefined;
        const auth = vars.get("http_authorization");
        if (auth !== undefined) {
          const [t] = string.match(auth, "^[Bb][Ee][Aa][Rr][Ee][Rr] +([^ ]+) *$");
          token = t;
        }
        if (token === undefined && cookieVar !== undefined) {
          const c = vars.get(cookieVar);
          if (c !== undefined && c !== "") token = c;
        }
        if (token === undefined) return refuse(undefined);
        if (keyError !== undefined) {
          ngx.log(ngx.ERR, "jwt gate: ", keyError);
          return ngx.exit(ngx.HTTP_INTERNAL_SERVER_ERROR);
        }
        let entry = cache.get(token);
        if (entry === undefined) {
          entry = verify(token);
          if (cached >= CACHE_MAX) {
            cache = new LuaTable();
            cached = 0;
          }
          cache.set(token, entry);
          cached = cached + 1;
        }
        const now = ngx.time();
        if (entry.exp !== undefined && now >= entry.exp + skew) return refuse("token expired");
        if (entry.nbf !== undefined && now + skew < entry.nbf) return refuse("token not yet valid");
        const fwd = entry.fwd;
        for (let i = 0; i < forward.length; i++) {
          const v = fwd[i];
          if (v !== undefined) setHeader(forward[i][1], v);
        }
        // the verified claims, for later handlers (claim-keyed rate limits); shared between requests
        // with the same token, so read-only
        ngx.ctx.set("cdn_jwt_claims", entry.claims);
        },
      },
    };
  },
};
