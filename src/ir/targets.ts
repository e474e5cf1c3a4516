/** Build targets: where each runtime finds the Lua module and the resty libraries. No I/O here. */

export type Target = "openresty" | "nginx-lua";

/** Where Debian's libnginx-mod-http-lua (and its NDK dependency) put their modules. */
export const DEBIAN_MODULES_DIR = "/usr/lib/nginx/modules";
export const DEBIAN_NDK_MODULE = `${DEBIAN_MODULES_DIR}/ndk_http_module.so`;
export const DEBIAN_LUA_MODULE = `${DEBIAN_MODULES_DIR}/ngx_http_lua_module.so`;

/** Debian's libnginx-mod-http-brotli-filter and -static. */
export const DEBIAN_BROTLI_MODULES = [`${DEBIAN_MODULES_DIR}/ngx_http_brotli_filter_module.so`, `${DEBIAN_MODULES_DIR}/ngx_http_brotli_static_module.so`];

export const TARGETS: Record<Target, { modules: string[]; luaPath: string[]; brotliModules: string[] | null }> = {
  // OpenResty ships the Lua module built in and its lualib on the default path; it has no brotli module.
  openresty: { modules: [], luaPath: [], brotliModules: null },
  // Debian/Ubuntu: libnginx-mod-http-lua (+ its NDK dependency), lua-resty-core and lrucache in /usr/share/lua/5.1.
  "nginx-lua": {
    modules: [DEBIAN_NDK_MODULE, DEBIAN_LUA_MODULE],
    luaPath: ["/usr/share/lua/5.1/?.lua"],
    brotliModules: DEBIAN_BROTLI_MODULES,
  },
};

export const TARGET_NAMES = Object.keys(TARGETS) as Target[];
