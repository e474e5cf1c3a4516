/**
 * The one rule for header names, everywhere a policy names a header (`HeaderName` in src/policy/types.ts,
 * and the keys of `set` maps): letters, digits and `-`, 1 to 64 characters. `_` is refused. nginx drops a
 * client header spelled with `_` (`underscores_in_headers off`, which the bundle states explicitly), while
 * nginx's `$http_x_user_id`, CGI/PHP, Django and Rack read `X_User_Id` and `X-User-Id` as one header: a
 * policy name with `_` would be checked under one spelling (the gate reads `X-Origin-Secret`) and stripped
 * under the other (`proxy_set_header X_Origin_Secret ""` leaves `X-Origin-Secret` in place).
 *
 * The JSON Schema carries the same pattern (a test compares them); src/validate/schema.ts reports a name
 * that breaks it as `invalidHeaderName`, wherever it appears.
 */
export const HEADER_NAME_PATTERN = "^[A-Za-z0-9-]{1,64}$";
export const HEADER_NAME = new RegExp(HEADER_NAME_PATTERN);

/** Why `name` is refused, for the diagnostic's message. */
export function headerNameProblem(name: string): string {
  if (name.includes("_")) return `"${name}" has "_": nginx drops client headers spelled with "_", and origins read "${name}" and "${name.replace(/_/g, "-")}" as one header`;
  if (name.length === 0 || name.length > 64) return `a header name has 1 to 64 characters (got ${name.length})`;
  return `"${name}" is not a header name here (letters, digits and "-" only)`;
}
