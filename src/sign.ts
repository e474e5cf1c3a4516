import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * Signed URLs, the TypeScript side (`cdn-build sign`); `lua-src/features/signed-urls.ts` is the edge side.
 * Both follow the same definition, pinned by test/fixtures/signed-urls/vectors.json:
 *
 *   string to sign = <path> "\n" <expires> "\n" <query> [ "\n" <ip> ]
 *
 * - <path>: the request path exactly as it appears in the request line (percent-encoding kept, no `?`).
 * - <expires>: the expiry parameter's value, decimal Unix seconds.
 * - <query>: the other query parameters, in their order and raw encoding, joined by `&` (empty segments
 *   dropped); "" when there are none.
 * - <ip>: the client address as nginx sees it ($remote_addr), only for URLs bound to an IP.
 *
 * signature = HMAC-SHA256(key, string to sign), written as lower-case hex or base64url without padding.
 */

export interface SignSettings {
  encoding: "hex" | "base64url";
  expiresParam: string;
  signatureParam: string;
}

export const DEFAULT_SIGN_SETTINGS: SignSettings = { encoding: "hex", expiresParam: "expires", signatureParam: "signature" };

/** The exact string the HMAC covers (see above). */
export function stringToSign(path: string, expires: number | string, query: string, ip?: string): string {
  return `${path}\n${expires}\n${query}${ip !== undefined ? `\n${ip}` : ""}`;
}

export function signature(key: string | Buffer, message: string, encoding: SignSettings["encoding"]): string {
  const mac = createHmac("sha256", key).update(message, "utf8").digest();
  return encoding === "hex" ? mac.toString("hex") : mac.toString("base64url");
}

const PATH_SAFE = /[A-Za-z0-9\-._~!$&'()*+,;=:@/%]/;

/** Percent-encodes what cannot appear raw in a request path (existing %XX escapes are kept). */
export function encodePath(path: string): string {
  let out = "";
  for (const ch of path) out += PATH_SAFE.test(ch) ? ch : [...Buffer.from(ch, "utf8")].map((b) => "%" + b.toString(16).toUpperCase().padStart(2, "0")).join("");
  return out;
}

/** Splits a raw query string into its non-empty `&`-separated segments. */
function segments(query: string): string[] {
  return query === "" ? [] : query.split("&").filter((s) => s !== "");
}

function segmentKey(seg: string): string {
  const eq = seg.indexOf("=");
  return eq < 0 ? seg : seg.slice(0, eq);
}

export interface SignInput {
  /** Path, optionally with a query string: `/downloads/a.zip` or `/downloads/a.zip?v=2`. */
  path: string;
  /** Expiry, Unix seconds. */
  expires: number;
  key: string | Buffer;
  /** Bind the URL to this client address. */
  ip?: string;
  settings?: Partial<SignSettings>;
}

/** Signs a path: returns `<path>?<query&>expires=<n>&signature=<sig>`. */
export function signPath(input: SignInput): string {
  const s = { ...DEFAULT_SIGN_SETTINGS, ...input.settings };
  if (!input.path.startsWith("/")) throw new Error(`the path must start with "/": ${input.path}`);
  if (!Number.isInteger(input.expires) || input.expires < 0) throw new Error(`expires must be whole Unix seconds: ${input.expires}`);
  const q = input.path.indexOf("?");
  const path = encodePath(q < 0 ? input.path : input.path.slice(0, q));
  const rest = segments(q < 0 ? "" : input.path.slice(q + 1));
  for (const seg of rest) {
    const k = segmentKey(seg);
    if (k === s.expiresParam || k === s.signatureParam) throw new Error(`the path already has a "${k}" query parameter`);
  }
  const query = rest.join("&");
  const sig = signature(input.key, stringToSign(path, input.expires, query, input.ip), s.encoding);
  return `${path}?${query === "" ? "" : query + "&"}${s.expiresParam}=${input.expires}&${s.signatureParam}=${sig}`;
}

export type SignedUrlVerdict = { ok: true; rest: string } | { ok: false; status: 403 | 410; reason: string };

/**
 * The edge's decision for a request target (`/path?query`), the same as the Lua gate: 403 for a missing,
 * malformed or wrong signature, 410 for a valid but expired one; otherwise the query without the two
 * parameters. Used by tests as a reference implementation.
 */
export function verifySignedUrl(target: string, key: string | Buffer, clientIp: string, now: number, settings: Partial<SignSettings> & { requireIp?: boolean } = {}): SignedUrlVerdict {
  const s = { ...DEFAULT_SIGN_SETTINGS, ...settings };
  const q = target.indexOf("?");
  const path = q < 0 ? target : target.slice(0, q);
  let exp: string | undefined;
  let sig: string | undefined;
  const rest: string[] = [];
  for (const seg of segments(q < 0 ? "" : target.slice(q + 1))) {
    const k = segmentKey(seg);
    const v = seg.slice(k.length + 1);
    if (k === s.expiresParam) {
      if (exp !== undefined) return { ok: false, status: 403, reason: "duplicate expiry" };
      exp = v;
    } else if (k === s.signatureParam) {
      if (sig !== undefined) return { ok: false, status: 403, reason: "duplicate signature" };
      sig = v;
    } else rest.push(seg);
  }
  if (exp === undefined || sig === undefined) return { ok: false, status: 403, reason: "missing signature" };
  if (!/^[0-9]{1,12}$/.test(exp)) return { ok: false, status: 403, reason: "malformed expiry" };
  const query = rest.join("&");
  const given = s.encoding === "hex" ? sig.toLowerCase() : sig;
  const same = (m: string) => {
    const want = Buffer.from(signature(key, m, s.encoding));
    const got = Buffer.from(given);
    return want.length === got.length && timingSafeEqual(want, got);
  };
  const ok = (!settings.requireIp && same(stringToSign(path, exp, query))) || same(stringToSign(path, exp, query, clientIp));
  if (!ok) return { ok: false, status: 403, reason: "bad signature" };
  if (now > Number(exp)) return { ok: false, status: 410, reason: "expired" };
  return { ok: true, rest: query };
}
