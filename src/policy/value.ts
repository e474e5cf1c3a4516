import type { ArgName, ComputedValue, CookieName, CountrySource, EnvRef, HeaderName } from "./types.js";
import { env } from "./env.js";

/**
 * Header values computed for each request (see `ComputedValue`), for `headers.*.set` and the rules'
 * `requestHeaders` / `responseHeaders`:
 *
 *   headers: { request: { set: { "X-Client-IP": value.clientIp(), "X-Width": value.arg("w") } } }
 */
export const value = {
  /** The client address (behind trusted proxies: what `clientAddress` says). */
  clientIp: (): ComputedValue => ({ clientIp: true }),
  /** The request id (see `requestId`). */
  requestId: (): ComputedValue => ({ requestId: true }),
  /** The client's country, from the default country header or the given source. */
  country: (source?: CountrySource): ComputedValue => ({ country: source ?? true }),
  /** A query parameter of the request, URL-decoded. */
  arg: (name: ArgName): ComputedValue => ({ arg: name }),
  /** A cookie of the request. */
  cookie: (name: CookieName): ComputedValue => ({ cookie: name }),
  /** A header of the request. */
  header: (name: HeaderName): ComputedValue => ({ header: name }),
  /** An environment variable of the nginx master, read at start (the same as `env()`). */
  env: (name: string): EnvRef => env(name),
};
