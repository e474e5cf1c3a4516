/**
 * lua-nginx-module API used by the purge feature, on top of ngx.d.ts. Declared as separate interfaces the
 * purge modules cast to (`ngx as unknown as PurgeNgx`), so they never clash with other features' additions.
 */

interface PurgeDict {
  get(this: PurgeDict, key: string): LuaMultiReturn<[unknown, number | undefined]>;
  set(this: PurgeDict, key: string, value: unknown, exptime?: number, flags?: number): LuaMultiReturn<[boolean, string | undefined, boolean]>;
  add(this: PurgeDict, key: string, value: unknown, exptime?: number, flags?: number): LuaMultiReturn<[boolean, string | undefined, boolean]>;
  delete(this: PurgeDict, key: string): void;
  expire(this: PurgeDict, key: string, exptime: number): LuaMultiReturn<[boolean | undefined, string | undefined]>;
  rpush(this: PurgeDict, key: string, value: string): LuaMultiReturn<[number | undefined, string | undefined]>;
  lpop(this: PurgeDict, key: string): LuaMultiReturn<[string | undefined, string | undefined]>;
  llen(this: PurgeDict, key: string): LuaMultiReturn<[number | undefined, string | undefined]>;
  get_keys(this: PurgeDict, max?: number): string[];
  flush_all(this: PurgeDict): void;
}

interface PurgeNgx {
  /** The nil reply of Redis / a JSON null. */
  null: unknown;
  shared: LuaTable<NgxSharedDictName, PurgeDict | undefined>;
  config: { prefix(this: void): string };
  timer: { at(this: void, delay: number, fn: (premature: boolean) => void): LuaMultiReturn<[unknown, string | undefined]> };
  worker: { id(this: void): number | undefined; exiting(this: void): boolean; pid(this: void): number };
  decode_args(this: void, s: string, max?: number): LuaTable<string, string | boolean | (string | boolean)[]>;
  req: {
    get_body_file(this: void): string | undefined;
    get_headers(this: void, max?: number): LuaTable<string, string | string[]>;
  };
}

/**
 * Stream commands of the Redis client used by the purge fan-out (called as methods). Replies: the value, or
 * `false` + message for a Redis error, or undefined + message for a connection error; nil replies are `ngx.null`.
 */
interface PurgeRedis {
  xadd(this: PurgeRedis, ...args: (string | number)[]): LuaMultiReturn<[unknown, string | undefined]>;
  xread(this: PurgeRedis, ...args: (string | number)[]): LuaMultiReturn<[unknown, string | undefined]>;
  xrevrange(this: PurgeRedis, ...args: (string | number)[]): LuaMultiReturn<[unknown, string | undefined]>;
  xrange(this: PurgeRedis, ...args: (string | number)[]): LuaMultiReturn<[unknown, string | undefined]>;
  xinfo(this: PurgeRedis, ...args: (string | number)[]): LuaMultiReturn<[unknown, string | undefined]>;
  set_timeout(this: PurgeRedis, ms: number): void;
  close(this: PurgeRedis): void;
}
