/**
 * base64url (RFC 4648 §5) without padding, on top of ngx.encode_base64 / ngx.decode_base64. Decoding is
 * strict: only the url-safe alphabet, no padding, and the encoding must be canonical (the unused low bits of
 * the last character are zero), so one byte string has exactly one accepted text form.
 */

const encode64 = ngx.encode_base64;
const decode64 = ngx.decode_base64;
const TO_STD = new LuaTable<string, string>();
TO_STD.set("-", "+");
TO_STD.set("_", "/");
const TO_URL = new LuaTable<string, string>();
TO_URL.set("+", "-");
TO_URL.set("/", "_");
const PAD = ["", "", "==", "="];

export function encodeBase64url(s: string): string {
  const [out] = string.gsub(encode64(s, true), "[+/]", TO_URL as any);
  return out;
}

/** The decoded bytes, or undefined when `s` is not canonical unpadded base64url. */
export function decodeBase64url(s: string): string | undefined {
  const n = s.length;
  if (n === 0) return "";
  if (n % 4 === 1) return undefined;
  if (string.find(s, "[^A-Za-z0-9_-]")[0] !== undefined) return undefined;
  const [std] = string.gsub(s, "[-_]", TO_STD as any);
  const out = decode64(std + PAD[n % 4]);
  if (out === undefined) return undefined;
  if (n % 4 !== 0 && encodeBase64url(out) !== s) return undefined;
  return out;
}
