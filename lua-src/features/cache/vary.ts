import { boundSig } from "../../core/cache-key";
import { joined } from "./headers";

/**
 * A request field's value as Vary compares it (RFC 9111 4.1): every field line combined, and the whitespace
 * around list commas removed, so "en, de", "en,de" and two lines "en" and "de" are one value.
 */
function normalised(v: string | string[] | undefined): string {
  if (v === undefined) return "";
  const raw = typeof v === "string" ? v : table.concat(v, ",");
  const parts: string[] = [];
  for (const [item] of string.gmatch(raw, "[^,]+")) {
    const [t] = string.match(item, "^%s*(.-)%s*$");
    if (t !== undefined && t !== "") parts.push(t);
  }
  return table.concat(parts, ",");
}

/**
 * Variant signature: the normalised values of the request headers named by Vary (nginx variable names). With
 * `rewrite` (access and header phases), a header whose value is not in normalised form is replaced by it: nginx's
 * disk cache checks Vary itself on the raw values, and would otherwise miss a variant this signature found.
 */
export function variantSig(this: void, names: string, rewrite = false): string {
  const headers = ngx.req.get_headers(64);
  let sig = "";
  for (const [name] of string.gmatch(names, "[^,]+")) {
    // "http_accept_language" -> "accept-language" (get_headers gives lower-case names with dashes)
    const [field] = string.gsub(string.sub(name, 6), "_", "-");
    const raw = headers.get(field);
    const value = normalised(raw);
    if (rewrite && raw !== undefined && raw !== value) ngx.req.set_header(field, value);
    sig = sig + value + "\u0001";
  }
  // bounded, like the key, so the disk key fits nginx's cache file header (core/cache-key.ts)
  return boundSig(sig);
}

/** "accept-encoding, Accept" -> "http_accept,http_accept_encoding" (sorted); "*" when Vary has a star. */
export function varyNames(this: void, vary: string | string[] | undefined): string {
  const v = joined(vary);
  if (v === undefined) return "";
  const names: string[] = [];
  for (const [n] of string.gmatch(v, "[^,%s]+")) {
    if (n === "*") return "*";
    const [ln] = string.gsub(string.lower(n), "-", "_");
    names.push("http_" + ln);
  }
  table.sort(names);
  return table.concat(names, ",");
}
