/** The hooks feature's data (src/features/hooks.ts -> lua-src/features/hooks.ts): the user's compiled hooks. */

/** One user hook: a module of the bundle (`lua/hooks/<phase>/...`) whose default export is the hook function. */
export interface HookData {
  /** The Lua module to require at init (`hooks.access.country-gate`). */
  module: string;
  /** The hook's TypeScript file as the policy names it (for error log lines). */
  file: string;
  /** On a runtime error, go on with the request instead of answering 500. */
  failOpen: boolean;
}

export interface HooksData {
  /** Runs in the access phase, after the built-in features (or before the cache with `before: "cache"`). */
  access?: HookData & { beforeCache: boolean };
  header?: HookData;
  /** The body hook: sees whole bodies of up to `maxBytes` (longer ones pass unchanged). */
  body?: HookData & { maxBytes: number };
  log?: HookData;
}
