/**
 * Unkeyed input (security issue 11 §3): what a request carries that the cache key does not name must not
 * decide what is stored for everyone. Kept apart from the cache's own logic; index.ts calls these two.
 *
 * - A GET or HEAD with a body: the body reaches the origin but not the key, so the request bypasses the
 *   cache (neither served from it nor stored). The body still reaches the origin (APIs that read GET bodies
 *   keep working, uncached).
 * - Forwarding headers the policy lets through with `cache: "key"` (`headers.allowOverrides`): every value
 *   the client sent (nginx passes them all to the origin, not only the first one `$http_*` holds) joins the
 *   key, escaped, so no two different sets of values give one key.
 */

/** True for a GET or HEAD that carries a body (a non-zero Content-Length, or any Transfer-Encoding). */
export function getWithBody(this: void, method: string): boolean {
  if (method !== "GET" && method !== "HEAD") return false;
  const vars = ngx.var;
  const cl = vars.get("http_content_length");
  return (cl !== undefined && cl !== "0") || vars.get("http_transfer_encoding") !== undefined;
}

/** The key's part for the headers in `names` (lower-case): `#h:<name>=<values>` each, "%" when absent. */
export function headerKeyPart(this: void, names: string[]): string {
  // every header, however many the client sent: one past a limit would still reach the origin
  const headers = ngx.req.get_headers(0);
  const parts: string[] = [];
  for (const name of names) {
    const v = headers.get(name);
    let text: string;
    if (v === undefined) text = "%";
    else if (typeof v === "string") text = ngx.escape_uri(v);
    else {
      const each: string[] = [];
      for (const one of v) each.push(ngx.escape_uri(one));
      text = table.concat(each, ",");
    }
    parts.push("#h:" + name + "=" + text);
  }
  return table.concat(parts);
}
