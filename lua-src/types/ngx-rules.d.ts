/** lua-nginx-module API used by the rules engine, on top of ngx.d.ts. */

interface NgxReq {
  /** Changes the URI; with jump=false (the default) processing goes on in the current location. */
  set_uri(this: void, uri: string, jump?: boolean): void;
  set_uri_args(this: void, args: string | LuaTable<string, any>): void;
}

interface NgxRe {
  find(this: void, subject: string, regex: string, options?: string): LuaMultiReturn<[number | undefined, number | undefined, string | undefined]>;
}

interface Ngx {
  re: NgxRe;
  redirect(this: void, uri: string, status?: number): never;
  exec(this: void, uri: string, args?: string): never;
  send_headers(this: void): void;
  md5_bin(this: void, s: string): string;
  crc32_long(this: void, s: string): number;
  readonly HTTP_MOVED_PERMANENTLY: number;
}
