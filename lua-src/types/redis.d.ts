/** The Redis client of lua-nginx-redis (Debian, `nginx.redis`) / lua-resty-redis (OpenResty, `resty.redis`). */

interface RedisClient {
  set_timeout(timeoutMs: number): void;
  connect(host: string, port: number): LuaMultiReturn<[1 | undefined, string | undefined]>;
  set_keepalive(idleMs: number, poolSize: number): LuaMultiReturn<[1 | undefined, string | undefined]>;
  get_reused_times(): LuaMultiReturn<[number | undefined, string | undefined]>;
  close(): LuaMultiReturn<[1 | undefined, string | undefined]>;
  /** AUTH: "OK", `false` + message when Redis refuses it (WRONGPASS...), nil + error on I/O failure. */
  auth(password: string): LuaMultiReturn<[unknown, string | undefined]>;
  /** SELECT: "OK", `false` + message on an error reply, nil + error on I/O failure. */
  select(db: number): LuaMultiReturn<[unknown, string | undefined]>;
  /** PING: "PONG", `false` + message on an error reply (NOAUTH...), nil + error on I/O failure. */
  ping(): LuaMultiReturn<[unknown, string | undefined]>;
  /** Any Redis command by name, e.g. `red.evalsha(...)` via `redisCall`. Reply, or undefined + error. */
  [command: string]: any;
}

interface RedisModule {
  "new"(this: RedisModule): LuaMultiReturn<[RedisClient | undefined, string | undefined]>;
}
