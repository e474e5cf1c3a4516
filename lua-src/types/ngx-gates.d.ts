/** lua-nginx-module API used by the access gates (origin secret, IP rules, WAF), on top of ngx.d.ts. */


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
