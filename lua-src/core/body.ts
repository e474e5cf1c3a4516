import { features } from "./policy";

/**
 * Reading a request body within the policy's total deadline (`client.bodyDeadline`). nginx bounds only the
 * pause between two reads (client_body_timeout), so a body trickling in at one byte every few seconds would
 * hold its connection for hours; here the body is read from the client socket in the access phase, each read
 * waiting at most until the deadline, then handed to nginx as the request body (ngx.req.init_body /
 * append_body / finish_body: in memory up to client_body_buffer_size, then a temp file), which proxy_pass
 * sends on as if nginx had read it. A body without Content-Length (chunked) is read by nginx itself, with the
 * per-read timeout only. Every feature that needs the body (the WAF, the client limits) reads it here.
 */

const CHUNK = 65536;

/**
 * Ends a request whose body did not arrive in time: logged as 408. The read that timed out leaves the
 * connection unusable, so nginx closes it (usually without a response).
 */
function tooSlow(this: void, got: number, len: number): never {
  ngx.log(ngx.INFO, "client: request body not received within the deadline (", got, " of ", len, " bytes)");
  return ngx.exit(408);
}

/** Reads the current request's body (once; a later call does nothing more), ending the request if it is too slow. */
export function readBody(this: void): void {
  const c = features.client;
  const vars = ngx.var;
  const len = tonumber(vars.get("http_content_length") ?? "");
  if (c === undefined || c.deadline <= 0 || len === undefined || len <= 0 || vars.get("http_transfer_encoding") !== undefined) {
    ngx.req.read_body();
    return;
  }
  // undefined once the body was read already (by an earlier stage)
  const [sock] = ngx.req.socket();
  if (sock === undefined) {
    ngx.req.read_body();
    return;
  }
  ngx.update_time();
  const until = ngx.now() + c.deadline;
  ngx.req.init_body();
  let left = len;
  while (left > 0) {
    ngx.update_time();
    const remaining = until - ngx.now();
    if (remaining <= 0) return tooSlow(len - left, len);
    sock.settimeout(math.max(1, math.floor(math.min(c.readTimeout, remaining) * 1000)));
    const [data, err] = sock.receiveany(math.min(left, CHUNK));
    if (data === undefined) {
      if (err === "timeout") return tooSlow(len - left, len);
      // the client went away: nothing to answer
      return ngx.exit(444);
    }
    ngx.req.append_body(data);
    left = left - data.length;
  }
  ngx.req.finish_body();
}

/** The size of the request body read so far (memory or temp file), in bytes. */
export function bodySize(this: void): number {
  const data = ngx.req.get_body_data();
  if (data !== undefined) return data.length;
  const file = ngx.req.get_body_file();
  if (file === undefined) return 0;
  const [f] = io.open(file, "rb");
  if (f === undefined) return 0;
  const [size] = f.seek("end");
  f.close();
  return size ?? 0;
}
