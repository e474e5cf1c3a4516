/** lua-nginx-module API used by the cache feature (RFC 9111 semantics and the RAM tier), on top of ngx.d.ts. */

interface NgxTcpSocket {
  settimeout(this: NgxTcpSocket, ms: number): void;
  connect(this: NgxTcpSocket, host: string, port: number): LuaMultiReturn<[number | undefined, string | undefined]>;
  sslhandshake(this: NgxTcpSocket, reused?: boolean, serverName?: string, verify?: boolean): LuaMultiReturn<[unknown, string | undefined]>;
  send(this: NgxTcpSocket, data: string): LuaMultiReturn<[number | undefined, string | undefined]>;
  receive(this: NgxTcpSocket, pattern: string | number): LuaMultiReturn<[string | undefined, string | undefined, string | undefined]>;
  receiveany(this: NgxTcpSocket, max: number): LuaMultiReturn<[string | undefined, string | undefined]>;
  close(this: NgxTcpSocket): void;
}

interface NgxSharedDict {
  replace(this: NgxSharedDict, key: string, value: unknown, exptime?: number, flags?: number): LuaMultiReturn<[boolean, string | undefined, boolean]>;
  ttl(this: NgxSharedDict, key: string): LuaMultiReturn<[number | undefined, string | undefined]>;
  expire(this: NgxSharedDict, key: string, exptime: number): LuaMultiReturn<[boolean, string | undefined]>;
}

interface NgxReq {
  http_version(this: void): number;
  start_time(this: void): number;
}

interface Ngx {
  timer: { at(this: void, delay: number, fn: (this: void, premature: boolean, ...args: any[]) => void, ...args: any[]): LuaMultiReturn<[unknown, string | undefined]> };
  socket: { tcp(this: void): NgxTcpSocket };
  resp: { get_headers(this: void, max?: number, raw?: boolean): LuaTable<string, string | string[]> };
  /** Body filter: arg[1] is the chunk, arg[2] true at the end of the body. */
  arg: LuaTable<number, any>;
  parse_http_time(this: void, s: string): number | undefined;
  http_time(this: void, t: number): string;
  decode_args(this: void, s: string, max?: number): LuaTable<string, string | boolean | (string | boolean)[]>;
  update_time(this: void): void;
  /** Flushes the response output; with `wait`, until the client has it (or the send timeout). */
  flush(this: void, wait?: boolean): void;
  readonly HTTP_NOT_MODIFIED: number;
  readonly HTTP_HEAD: number;
}
