import { basename } from "node:path";
import type { Feature } from "./shared/feature.js";
import type { HookData, HooksData } from "../contract/index.js";
import type { BodyHookOptions, HookFile, HookOptions, Hooks } from "../policy/types.js";
import { error, pointer, type Diagnostic } from "../validate/diagnostic.js";
import { shmSize, sizeBytes } from "../util/units.js";

/** The policy key of each hook, and its folder under `lua/hooks/` in the bundle. */
const KEYS = ["access", "headers", "body", "log"] as const;

/** The largest body the body hook sees by default (bytes). */
export const BODY_MAX_BYTES = 1048576;

function optionsOf(h: HookFile | HookOptions | BodyHookOptions): HookOptions {
  return typeof h === "string" ? { file: h } : { file: h.file, failOpen: "failOpen" in h ? h.failOpen : undefined };
}

/** The Lua module a hook file becomes (src/emit/hooks.ts compiles it there): `hooks.access.country-gate`. */
export function hookModule(key: (typeof KEYS)[number], file: string): string {
  return `hooks.${key}.${basename(file, ".ts")}`;
}

/**
 * User hooks: TypeScript files compiled by TypeScriptToLua into `lua/hooks/` (src/emit/hooks.ts does the
 * compiling when the pipeline is given the policy's folder) and run by lua-src/features/hooks.ts after the
 * built-in features of their phase.
 */
export const hooks: Feature = {
  name: "hooks",
  runtime: {
    key: "hooks",
    stages: {
      access: { "hooks:before-cache": (d) => d.access?.beforeCache === true, hooks: (d) => d.access !== undefined && !d.access.beforeCache },
      // the header filter also readies the body filter (Content-Length goes: the body may change)
      header: { hooks: (d) => d.header !== undefined || d.body !== undefined },
      body: { hooks: (d) => d.body !== undefined },
      log: { hooks: (d) => d.log !== undefined },
    },
  },
  check(policy) {
    const out: Diagnostic[] = [];
    const h: Hooks = policy.hooks ?? {};
    for (const key of KEYS) {
      const v = h[key];
      if (v === undefined) continue;
      const { file } = optionsOf(v);
      const name = basename(file, ".ts");
      // the file becomes a Lua module name: dots would be read as folders
      if (!/^[A-Za-z0-9_-]+$/.test(name)) {
        out.push(error("hookFileMissing", typeof v === "string" ? pointer("hooks", key) : pointer("hooks", key, "file"), `the ${key} hook's file name "${basename(file)}" must be letters, digits, "-" and "_" before .ts`, "rename the file, e.g. hooks/country-gate.ts"));
      }
    }
    const size = h.store?.size;
    if (size !== undefined && (sizeBytes(size) ?? 0) < 65536) {
      out.push(error("hookStoreSize", pointer("hooks", "store", "size"), `the hooks' store of ${size} is smaller than the 64k an nginx shared memory zone needs`, 'use e.g. "1m"'));
    }
    return out;
  },
  lower(policy, ir) {
    const h = policy.hooks;
    if (!h || (!h.access && !h.headers && !h.body && !h.log)) return;
    const data: HooksData = {};
    const one = (key: (typeof KEYS)[number], v: HookFile | HookOptions | BodyHookOptions): HookData => {
      const o = optionsOf(v);
      return { module: hookModule(key, o.file), file: o.file, failOpen: o.failOpen ?? false };
    };
    if (h.access) data.access = { ...one("access", h.access), beforeCache: typeof h.access !== "string" && h.access.before === "cache" };
    if (h.headers) data.header = one("headers", h.headers);
    if (h.body) data.body = { ...one("body", h.body), maxBytes: (typeof h.body === "string" ? undefined : h.body.maxBytes) ?? BODY_MAX_BYTES };
    if (h.log) {
      data.log = one("log", h.log);
      ir.luaVars.push({ name: "cdn_hook_log", value: "" });
    }
    if (h.store) ir.sharedDicts.push({ name: "cdn_hooks", size: shmSize(h.store.size ?? "10m") });
    ir.luaData.hooks = data;
  },
};
