/**
 * Reading response headers safely: `ngx.header` / `ngx.resp.get_headers` return a list when a header line
 * is repeated. A field that must appear once (Date, Expires, Age, ETag, Last-Modified) is unusable when
 * repeated (RFC 9111 4.2: an invalid or duplicated freshness field), never a crash; list fields
 * (Cache-Control, Vary) are joined with commas (RFC 9110 5.3).
 */

/** The value of a field that must appear once: the string, `undefined` when absent, `false` when repeated. */
export function single(this: void, v: string | string[] | undefined): string | undefined | false {
  if (v === undefined || typeof v === "string") return v;
  return v.length === 1 ? v[0] : false;
}

/** A list field's lines as one comma-separated value (undefined when absent). */
export function joined(this: void, v: string | string[] | undefined): string | undefined {
  if (v === undefined || typeof v === "string") return v;
  return table.concat(v, ",");
}

/** A validator (ETag, Last-Modified) usable for revalidation: exactly one line, else "". */
export function validator(this: void, v: string | string[] | undefined): string {
  return typeof v === "string" ? v : "";
}

/**
 * True when an Accept-Encoding value accepts (q > 0) one of the content codings in `enc` (lower case, "br" or
 * "br, zstd"), `*` included: the origin may then have chosen that coding for this client.
 */
export function acceptsAnyCoding(this: void, ae: string | undefined, enc: string): boolean {
  if (ae === undefined) return false;
  const accepted = new LuaTable<string, boolean>();
  let star = false;
  for (const [item] of string.gmatch(string.lower(ae), "[^,]+")) {
    const [name, params] = string.match(item, "^%s*([^;%s]+)%s*(.*)$");
    if (name === undefined) continue;
    const [q] = string.match(params ?? "", "q%s*=%s*([%d.]+)");
    if (q !== undefined && (tonumber(q) ?? 1) <= 0) continue;
    if (name === "*") star = true;
    else accepted.set(name, true);
  }
  for (const [c] of string.gmatch(enc, "[^,%s]+")) if (star || accepted.get(c) === true) return true;
  return false;
}
