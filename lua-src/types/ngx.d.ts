/**
 * Typed declarations of the parts of the lua-nginx-module API the runtime uses. Everything is called with
 * `.` (noImplicitSelf), as in Lua: `ngx.say(...)`, `ngx.req.get_uri_args()`.
 */

type NgxHeaderValue = string | string[] | undefined;

interface NgxReq {
  /** Request headers as a table (names lower-cased unless raw). */
  get_headers(this: void, max?: number, raw?: boolean): LuaTable<string, string | string[]>;
  set_header(this: void, name: string, value: string | string[]): void;
  clear_header(this: void, name: string): void;
  /** Query arguments: value is a string, `true` for a bare key, or a list for repeated keys. */
  get_uri_args(this: void, max?: number): LuaMultiReturn<[LuaTable<string, string | boolean | (string | boolean)[]>, string | undefined]>;
  get_method(this: void): string;
  read_body(this: void): void;
  get_body_data(this: void): string | undefined;
}

interface NgxSharedDict {
  get(this: NgxSharedDict, key: string): LuaMultiReturn<[unknown, number | undefined]>;
  set(this: NgxSharedDict, key: string, value: unknown, exptime?: number, flags?: number): LuaMultiReturn<[boolean, string | undefined, boolean]>;
  add(this: NgxSharedDict, key: string, value: unknown, exptime?: number, flags?: number): LuaMultiReturn<[boolean, string | undefined, boolean]>;
  /** Like set, but fails with "no memory" instead of evicting other items. */
  safe_set(this: NgxSharedDict, key: string, value: unknown, exptime?: number, flags?: number): LuaMultiReturn<[boolean, string | undefined]>;
  incr(this: NgxSharedDict, key: string, value: number, init?: number, initTtl?: number): LuaMultiReturn<[number | undefined, string | undefined]>;
  delete(this: NgxSharedDict, key: string): void;
  get_keys(this: NgxSharedDict, max?: number): string[];
}

interface Ngx {
  /** nginx variables; a variable must be declared in nginx.conf before Lua can assign it. */
  var: LuaTable<NgxVarName, string | undefined>;
  /** Response headers (header_filter and content phases). Assign undefined to remove one. */
  header: LuaTable<string, NgxHeaderValue>;
  req: NgxReq;
  shared: LuaTable<NgxSharedDictName, NgxSharedDict | undefined>;
  status: number;
  ctx: LuaTable<NgxCtxKey, unknown>;
  worker: { id(this: void): number; count(this: void): number; pid(this: void): number };

  say(this: void, ...args: (string | number)[]): void;
  print(this: void, ...args: (string | number)[]): void;
  log(this: void, level: number, ...args: (string | number | boolean | undefined)[]): void;
  exit(this: void, status: number): never;
  now(this: void): number;
  time(this: void): number;
  escape_uri(this: void, s: string): string;
  unescape_uri(this: void, s: string): string;
  encode_args(this: void, args: LuaTable<string, unknown>): string;
  md5(this: void, s: string): string;
  sleep(this: void, seconds: number): void;

  readonly OK: number;
  /** `ngx.exit(ngx.ERROR)`: abort (in ssl_certificate_by_lua, the TLS handshake). */
  readonly ERROR: number;
  readonly ERR: number;
  readonly WARN: number;
  readonly NOTICE: number;
  readonly INFO: number;
  readonly DEBUG: number;
  readonly HTTP_OK: number;
  readonly HTTP_FORBIDDEN: number;
  readonly HTTP_NOT_FOUND: number;
}

declare const ngx: Ngx;
