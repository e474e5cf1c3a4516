/** lua-nginx-module and Redis client calls the rate limits use, on top of ngx.d.ts and redis.d.ts. */

interface Ngx {
  /** Refreshes nginx's cached clock (ngx.now is otherwise the time of the current event loop turn). */
  update_time(this: void): void;
}

interface RedisClient {
  /** EVALSHA: the script's reply, `false` + message on an error reply (NOSCRIPT...), nil + error on I/O failure. */
  evalsha(sha: string, numKeys: number, ...args: (string | number)[]): LuaMultiReturn<[unknown, string | undefined]>;
  eval(script: string, numKeys: number, ...args: (string | number)[]): LuaMultiReturn<[unknown, string | undefined]>;
}
