/**
 * LuaJIT's `ffi` module (`import * as ffi from "ffi"`); C values are opaque (`any`) to TypeScript.
 * @noResolution
 */
declare module "ffi" {
  const lib: {
    cdef(this: void, defs: string): void;
    C: any;
    load(this: void, name: string, global?: boolean): any;
    new: (this: void, ct: string, ...init: unknown[]) => any;
    string(this: void, ptr: unknown, len?: number): string;
    gc(this: void, cdata: any, finalizer: any): any;
    cast(this: void, ct: string, value: unknown): any;
  };
  export = lib;
}
