/** lua-resty-core's `ngx.re` module (not the `ngx.re` table): options of the regex engine. */
/** @noResolution */
declare module "ngx.re" {
  /** `jit_stack_size`: bytes of PCRE's JIT stack; only before any regex is compiled (init_by_lua). */
  export function opt(this: void, option: "jit_stack_size", value: number): void;
}
