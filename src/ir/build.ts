import type { Policy } from "../policy/types.js";
import { FEATURES } from "../features/index.js";
import type { EdgeIR, Target } from "./types.js";
import { DEBIAN_LUA_MODULE, DEBIAN_NDK_MODULE } from "../runtime/nginx.js";

/** Where each target finds the Lua module and the resty libraries. */
const TARGETS: Record<Target, { modules: string[]; luaPath: string[] }> = {
  // OpenResty ships the Lua module built in and its lualib on the default path.
  openresty: { modules: [], luaPath: [] },
  // Debian/Ubuntu: libnginx-mod-http-lua (+ its NDK dependency), lua-resty-core and lrucache in /usr/share/lua/5.1.
  "nginx-lua": {
    modules: [DEBIAN_NDK_MODULE, DEBIAN_LUA_MODULE],
    luaPath: ["/usr/share/lua/5.1/?.lua"],
  },
};

export const TARGET_NAMES = Object.keys(TARGETS) as Target[];

/** Lowers a validated policy into the IR: a skeleton, then each feature adds its part, in registry order. */
export function buildIR(policy: Policy, target: Target, toolVersion: string): EdgeIR {
  const t = TARGETS[target];
  const ir: EdgeIR = {
    name: policy.name,
    target,
    toolVersion,
    main: { user: null, workerProcesses: "auto", workerConnections: 4096, workerRlimitNofile: 9216, modules: [...t.modules], env: [] },
    luaPackagePath: ["$prefix/lua/?.lua", ...t.luaPath, ";"].join(";"),
    sharedDicts: [],
    bodyFilter: false,
    luaVars: [],
    server: { listen: [], serverNames: [] },
    slots: { main: [], http: [], server: [], proxy: [], locations: [] },
    luaData: {},
  };
  for (const f of FEATURES) f.lower?.(policy, ir);
  ir.main.env = [...new Set(ir.main.env)].sort();
  return ir;
}

/**
 * Declares that the Lua runtime reads `ref` from the environment (nginx only passes variables listed with
 * `env`) and returns the variable name for the feature's Lua data.
 */
export function useEnv(ir: EdgeIR, ref: { env: string }): string {
  ir.main.env.push(ref.env);
  return ref.env;
}
