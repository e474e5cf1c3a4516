/**
 * @noSelfInFile
 *
 * The edge API of cdn-build hooks (`import { onAccess } from "cdn-build/edge"`): the one declaration of what a
 * hook may call. A hook file is type-checked against it at `cdn-build build` and compiled by TypeScriptToLua;
 * in nginx the calls go to the Lua runtime (lua-src/edge/index.ts, which implements these types), in Node to the
 * in-memory implementation (src/edge/node.ts). Every function is `this: void`: called with `.` in Lua (no `self`).
 *
 * A hook runs after the built-in features of its phase (see docs/hooks.md for the order). Nothing here
 * allocates per request unless the hook asks for it (`state`, `jsonDecode`).
 */


/** Per-request values a hook keeps from one phase to the next (access -> headers -> log). */
export type State = Record<string, string | number | boolean | undefined>;

/** The request, in the access phase (before the cache and the origin see it). */
export interface Request {
  /** The request method, upper case (`GET`). */
  readonly method: string;
  /**
   * The normalised path, decoded, without the query (nginx's `$uri`): `/a/b.html`. After `rewrite()` it is
   * the new path.
   */
  readonly path: string;
  /** The raw query string without `?` (`""` when there is none). */
  readonly query: string;
  /** The host the client asked for (`Host` header, lower case). */
  readonly host: string;
  /** The client address: the peer, or the address the trusted proxies forwarded (`clientAddress` policy). */
  readonly clientAddress: string;
  /** Values shared with the headers and log hooks of this request. */
  readonly state: State;
  /** A request header (case-insensitive name); for a repeated header, its first value. */
  header(this: void, name: string): string | undefined;
  /** A cookie of the request. */
  cookie(this: void, name: string): string | undefined;
  /**
   * A claim of the JSON Web Token the `jwt` gate verified for this request (strings, numbers and booleans;
   * undefined for other claims, or when the gate did not check this request).
   */
  claim(this: void, name: string): string | number | boolean | undefined;
  /** A query argument, raw (not decoded); `""` for a bare `?flag`. */
  arg(this: void, name: string): string | undefined;
  /**
   * Sets a header on the request sent to the origin (replaces any value the client sent; an empty value
   * removes it). The forwarding headers the edge strips stay stripped unless `headers.allowOverrides` lets
   * them through.
   */
  setHeader(this: void, name: string, value: string): void;
  /** Removes a header from the request sent to the origin. */
  removeHeader(this: void, name: string): void;
  /**
   * Changes the path (and, when given, the query string) the cache key and the origin see. No new location
   * lookup happens: the request stays in the edge's proxy location.
   */
  rewrite(this: void, path: string, query?: string): void;
  /** Ends the request with `status` (400-599) and a plain-text body (empty by default); nothing after it runs. */
  deny(this: void, status: number, body?: string): never;
  /** Ends the request with a redirect (301, 302, 303, 307, 308) to `location`. */
  redirect(this: void, status: number, location: string): never;
  /** Ends the request with this status, body and response headers. */
  respond(this: void, status: number, body: string, headers?: Record<string, string>): never;
}

/** The response, in the header filter (before its headers are sent; the body cannot change here). */
export interface Response {
  /** The response status. */
  readonly status: number;
  /** The cache status (`HIT`, `MISS`, `EXPIRED`, `STALE`, `BYPASS`, `HIT-RAM`...), undefined when not cached. */
  readonly cacheStatus: string | undefined;
  /** The request method. */
  readonly method: string;
  /** The request path (`$uri`). */
  readonly path: string;
  /** Values the access hook left for this request. */
  readonly state: State;
  /** A response header (as the origin or an earlier feature set it). */
  header(this: void, name: string): string | undefined;
  /** A request header (e.g. to pick a variant). */
  requestHeader(this: void, name: string): string | undefined;
  /** Sets a response header. */
  setHeader(this: void, name: string, value: string): void;
  /** Removes a response header. */
  removeHeader(this: void, name: string): void;
}

/** The response whose body the body hook sees (its headers are already sent: read-only). */
export interface BodyResponse {
  readonly status: number;
  readonly cacheStatus: string | undefined;
  readonly method: string;
  readonly path: string;
  readonly state: State;
  /** A response header. */
  header(this: void, name: string): string | undefined;
}

/** The finished request, in the log phase (after the response was sent). */
export interface LogContext {
  readonly status: number;
  readonly cacheStatus: string | undefined;
  readonly method: string;
  readonly path: string;
  /** Seconds since the request started (nginx's `$request_time`). */
  readonly duration: number;
  readonly state: State;
  /**
   * Adds `name=value` to the `hook` field of this request's JSON access log line (fields are separated by a
   * space). Only when the access log is on (JSON, the default).
   */
  field(this: void, name: string, value: string | number | boolean): void;
}

/** A hook as the bundle runs it; `onAccess` & co. only mark the phase for the type checker. */
export type AccessHook = { readonly __phase: "access" } & ((this: void, req: Request) => void);
export type HeadersHook = { readonly __phase: "headers" } & ((this: void, res: Response) => void);
export type LogHook = { readonly __phase: "log" } & ((this: void, ctx: LogContext) => void);
export type BodyHook = { readonly __phase: "body" } & ((this: void, res: BodyResponse, body: string) => string | undefined);

/** The access hook: `export default onAccess((req) => { ... })`. */
export declare function onAccess(this: void, fn: (this: void, req: Request) => void): AccessHook;
/** The headers hook: `export default onHeaders((res) => { ... })`. */
export declare function onHeaders(this: void, fn: (this: void, res: Response) => void): HeadersHook;
/**
 * The body hook: `export default onBody((res, body) => body.replace("a", "b"))`. It gets the whole body (up
 * to the policy's `maxBytes`) and returns the new one, or undefined to send it unchanged.
 */
export declare function onBody(this: void, fn: (this: void, res: BodyResponse, body: string) => string | undefined): BodyHook;
/** The log hook: `export default onLog((ctx) => { ... })`. */
export declare function onLog(this: void, fn: (this: void, ctx: LogContext) => void): LogHook;

/**
 * The key/value store shared by all hooks and workers (declare it in the policy: `hooks: { store: { size:
 * "10m" } }`). Values are strings, numbers or booleans; `ttl` is in seconds (0 or absent: no expiry). Kept
 * across reloads, emptied by a restart; when full, the least recently used keys go.
 */
export interface Store {
  get(this: void, key: string): string | number | boolean | undefined;
  set(this: void, key: string, value: string | number | boolean, ttl?: number): void;
  /** Adds `by` (default 1) to a number and returns the new value; a missing key starts at 0 with this `ttl`. */
  incr(this: void, key: string, by?: number, ttl?: number): number;
  delete(this: void, key: string): void;
}
export declare const store: Store;

/** Seconds since the epoch, with milliseconds (the worker's cached clock, `ngx.now()`). */
export declare function now(this: void): number;
/** SHA-256 of `data`, lower-case hex. */
export declare function sha256Hex(this: void, data: string): string;
/** HMAC-SHA-256 of `message` with `key`, lower-case hex. */
export declare function hmacSha256Hex(this: void, key: string, message: string): string;
/** Standard base64 (with padding). */
export declare function base64Encode(this: void, data: string): string;
/** Decodes standard base64; undefined when `text` is not base64. */
export declare function base64Decode(this: void, text: string): string | undefined;
/** JSON text of a value (objects, arrays, strings, numbers, booleans). */
export declare function jsonEncode(this: void, value: unknown): string;
/** Parses JSON text (at most 16 KiB, 16 levels deep); undefined when it is not valid JSON. */
export declare function jsonDecode(this: void, text: string): unknown;
