/**
 * Refreshes through the edge itself: a GET of the client's request, sent to this nginx with a marker
 * header (a per-boot token), which fetches from the origin (conditionally when the cache holds validators)
 * and stores the answer like any response. Used for stale-while-revalidate (in a background timer) and for
 * revalidation / stale-if-error (synchronously, in the client's access phase).
 */

export const REFRESH_HEADER = "X-Cdn-Refresh";

// request headers not copied into a refresh request
const SKIP_REFRESH = new LuaTable<string, boolean>();
for (const h of ["if-none-match", "if-modified-since", "if-match", "if-unmodified-since", "if-range", "range", "connection", "keep-alive", "content-length", "transfer-encoding", "expect", "te", "upgrade", "x-cdn-refresh"]) {
  SKIP_REFRESH.set(h, true);
}

let token = "";

/** Makes the per-boot marker token (once, at init). */
export function initRefresh(this: void): void {
  math.randomseed(os.time() + math.floor(os.clock() * 1e6));
  token = ngx.md5(tostring(os.time()) + tostring(os.clock()) + tostring(math.random()) + tostring({}));
}

export function refreshToken(this: void): string {
  return token;
}

/**
 * True when the current request is a refresh this edge sent itself (stale-while-revalidate, revalidation),
 * verified by its marker token. For the gates that run before the cache's access handler (the marker header
 * is still on the request then): a refresh replays a client request that already passed them, so a gate may
 * skip it (the rate limits do: a refresh is the edge's own traffic and takes no client's token).
 */
export function isEdgeRefresh(this: void): boolean {
  return token !== "" && ngx.var.get("http_x_cdn_refresh") === token;
}

/** A GET of the current request to the edge itself, with the refresh marker (built in the access phase). */
export function refreshRequest(this: void): string {
  const vars = ngx.var;
  const parts: string[] = ["GET ", vars.get("request_uri")!, " HTTP/1.0\r\n"];
  const headers = ngx.req.get_headers(100, true);
  for (const [name, value] of pairs(headers)) {
    if (SKIP_REFRESH.get(string.lower(name)) !== true) {
      if (typeof value === "object") for (const v of value) parts.push(name, ": ", v, "\r\n");
      else parts.push(name, ": ", value, "\r\n");
    }
  }
  parts.push(REFRESH_HEADER, ": ", token, "\r\nConnection: close\r\n\r\n");
  return table.concat(parts);
}

/** Sends a refresh request to addr:port and reads the whole response; returns its status (0 on failure). */
export function doRefresh(this: void, addr: string, port: number, req: string, timeoutMs: number, tls: boolean): number {
  const sock = ngx.socket.tcp();
  sock.settimeout(timeoutMs);
  const [ok, err] = sock.connect(addr, port);
  if (ok === undefined) {
    ngx.log(ngx.WARN, "cache: refresh connect failed: ", err);
    return 0;
  }
  if (tls) {
    const [hs, herr] = sock.sslhandshake(false, undefined, false);
    if (hs === undefined) {
      ngx.log(ngx.WARN, "cache: refresh TLS handshake failed: ", herr);
      sock.close();
      return 0;
    }
  }
  sock.send(req);
  const [line] = sock.receive("*l");
  const [code] = line === undefined ? [undefined] : string.match(line, "^HTTP/%d%.%d (%d+)");
  // read to the end: the edge stores the object (and writes its metadata) before it closes
  for (;;) {
    const [chunk] = sock.receiveany(65536);
    if (chunk === undefined) break;
  }
  sock.close();
  return tonumber(code) ?? 0;
}

/** Timer callback of stale-while-revalidate: one refresh, then the key's lock is released. */
export function backgroundRefresh(this: void, premature: boolean, addr: string, port: number, req: string, timeoutMs: number, lockKey: string, tls: boolean): void {
  if (premature) return;
  doRefresh(addr, port, req, timeoutMs, tls);
  const meta = ngx.shared.get("cdn_meta");
  if (meta !== undefined) meta.delete(lockKey);
}

/** Starts a background refresh of the current request (the caller holds the lock `lockKey`). */
export function startBackgroundRefresh(this: void, lockKey: string, timeoutMs: number): void {
  const vars = ngx.var;
  ngx.timer.at(0, backgroundRefresh, vars.get("server_addr")!, tonumber(vars.get("server_port"))!, refreshRequest(), timeoutMs, lockKey, vars.get("https") === "on");
}

/** A synchronous refresh of the current request; returns the status the edge answered (0 on failure). */
export function refreshNow(this: void, timeoutMs: number): number {
  const vars = ngx.var;
  return doRefresh(vars.get("server_addr")!, tonumber(vars.get("server_port"))!, refreshRequest(), timeoutMs, vars.get("https") === "on");
}
