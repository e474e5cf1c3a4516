// init_by_lua: load the runtime and the policy data once in the master, so workers share them, and hand
// nginx.conf's per-request hooks (`access_by_lua_block { cdn.access() }` ...) one global table of the
// hook files' functions.
declare function require(this: void, name: string): { default: (i?: number) => void };

const cdn = new LuaTable<string, (i?: number) => void>();
for (const hook of ["access", "headers", "body", "log", "certificate"]) cdn.set(hook, require(hook).default);
(_G as unknown as LuaTable<string, unknown>).set("cdn", cdn);

export {};
