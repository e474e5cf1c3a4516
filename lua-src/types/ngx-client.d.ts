/** lua-nginx-module API used to read request bodies with a deadline (core/body.ts), on top of ngx.d.ts. */

interface NgxReqSocket {
  settimeout(this: NgxReqSocket, ms: number): void;
  receiveany(this: NgxReqSocket, max: number): LuaMultiReturn<[string | undefined, string | undefined]>;
}

interface NgxReq {
  /** The downstream connection, to read the request body from (undefined and an error when it cannot). */
  socket(this: void): LuaMultiReturn<[NgxReqSocket | undefined, string | undefined]>;
  /** Starts a new request body (buffered in memory up to client_body_buffer_size, then in a temp file). */
  init_body(this: void, bufferSize?: number): void;
  append_body(this: void, data: string): void;
  finish_body(this: void): void;
}

interface NgxReq {
  /** The temp file holding the request body, when it did not fit in memory. */
  get_body_file(this: void): string | undefined;
}
