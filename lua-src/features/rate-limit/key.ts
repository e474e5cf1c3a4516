/**
 * Bucket keys of rate limits, as a pure function of what the request offers (unit-tested in LuaJIT by
 * test/features/rate-limit.test.ts). Every kind of key has its own one-letter namespace, so a header value
 * that happens to look like an address never shares a bucket with that address.
 */

/** Values longer than this are hashed (MD5 hex), so a huge header cannot blow up the bucket store. */
const MAX_KEY = 96;

function short(v: string): string {
  return v.length > MAX_KEY ? ngx.md5(v) : v;
}

/** The claim `name` of a verified claims table, or undefined (no table, or not a string/number). */
export function claimOf(this: void, claims: unknown, name: string): unknown {
  if (type(claims) !== "table") return undefined;
  return (claims as LuaTable<string, unknown>).get(name);
}

/**
 * The bucket key (without the limit's prefix) for a limit of `kind`:
 * - "group": one bucket for the whole group ("g");
 * - "header": "h" + the header value; "claim": "c" + the claim value (a string or a number);
 * - otherwise, and whenever a header/claim value is missing or empty: "i" + the client address (undefined
 *   when `ip` is not given, so callers only look the address up when they need it).
 */
export function bucketKey(this: void, kind: string, value: unknown, ip: string | undefined): string | undefined {
  if (kind === "group") return "g";
  if (kind === "header" && type(value) === "string" && value !== "") return "h" + short(value as string);
  if (kind === "claim") {
    const t = type(value);
    if (t === "number") return "c" + tostring(value);
    if (t === "string" && value !== "") return "c" + short(value as string);
  }
  return ip === undefined ? undefined : "i" + ip;
}
