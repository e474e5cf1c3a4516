/** Parts of the ngx API the access gates use (LuaJIT's ffi module: ffi.d.ts). */

interface NgxReq {
  /** Replaces the query string (a raw string is used as is); $args and the proxied URI follow. */
  set_uri_args(this: void, args: string | LuaTable<string, unknown>): void;
}

interface Ngx {
  /** Standard base64; undefined when the input is not valid base64. */
  decode_base64(this: void, s: string): string | undefined;
  encode_base64(this: void, s: string, noPadding?: boolean): string;
  config: { prefix(this: void): string };
  readonly HTTP_UNAUTHORIZED: number;
  readonly HTTP_GONE: number;
  readonly HTTP_INTERNAL_SERVER_ERROR: number;
}

/** LuaJIT's bit operations, required by name (the `bit` global is not an identifier TSTL accepts). */
/** @noResolution */
declare module "bit" {
  export function bxor(this: void, x: number, y: number): number;
  export function bor(this: void, x: number, y: number): number;
}

interface NgxRe {
  /** With a context table: the search starts at `ctx.pos` (1-based). */
  find(this: void, subject: string, regex: string, options: string, ctx: { pos: number }): LuaMultiReturn<[number | undefined, number | undefined, string | undefined]>;
}
