/**
 * Refreshes through the edge itself: a GET of the client's request, sent to this nginx with a marker
 * header (a per-boot token), which fetches from the origin (conditionally when the cache holds validators)
 * and stores the answer like any response. Used for stale-while-revalidate (in a background timer) and for
 * revalidation / stale-if-error (synchronously, in the client's access phase).
 */

export const REFRESH_HEADER = "X-Cdn-Refresh";
/**
 * Response header of a refresh only (never sent to a client): "1" when the edge stores the answer, "0" when
 * it does not (then the client's request gets the answer relayed, not a second origin request).
 */
export const STORED_HEADER = "X-Cdn-Stored";

// response headers of a refresh answer not relayed to the client (hop-by-hop, or the edge's own)
const SKIP_RELAY = new LuaTable<string, boolean>();
for (const h of ["connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection", "x-cdn-stored", "date", "server"]) SKIP_RELAY.set(h, true);

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

/**
 * What a synchronous refresh does with an answer the edge does not store: nothing ("none", background
 * refreshes), relay it to the client unless it is a 5xx or a failure ("answers": stale-if-error may answer
 * with the stale object instead), or relay every answer ("all").
 */
export type Relay = "none" | "answers" | "all";

/**
 * Sends a refresh request to addr:port and reads the response: its status (0 on failure) and whether the
 * edge stores it. The body is read to the end (the edge stores the object, and writes its metadata, before it
 * closes) unless the answer is not stored and `relay` says so: then `unlock` (a lock key in cdn_meta) is
 * released and the answer streamed to the current client (status, end-to-end headers, body), and the request
 * ends there; the origin is asked once.
 */
export function doRefresh(this: void, addr: string, port: number, req: string, timeoutMs: number, tls: boolean, relay: Relay, unlock?: string): LuaMultiReturn<[number, boolean]> {
  const sock = ngx.socket.tcp();
  sock.settimeout(timeoutMs);
  const [ok, err] = sock.connect(addr, port);
  if (ok === undefined) {
    ngx.log(ngx.WARN, "cache: refresh connect failed: ", err);
    return $multi(0, false);
  }
  if (tls) {
    const [hs, herr] = sock.sslhandshake(false, undefined, false);
    if (hs === undefined) {
      ngx.log(ngx.WARN, "cache: refresh TLS handshake failed: ", herr);
      sock.close();
      return $multi(0, false);
    }
  }
  sock.send(req);
  const [line] = sock.receive("*l");
  const [code] = line === undefined ? [undefined] : string.match(line, "^HTTP/%d%.%d (%d+)");
  const status = tonumber(code) ?? 0;
  const names: string[] = [];
  const values: string[] = [];
  let stored = false;
  for (;;) {
    const [h] = sock.receive("*l");
    if (h === undefined || h === "") break;
    const [name, value] = string.match(h, "^([^:]+):%s*(.*)$");
    if (name !== undefined) {
      const l = string.lower(name);
      if (l === "x-cdn-stored") stored = value === "1";
      else if (SKIP_RELAY.get(l) !== true) {
        names.push(name);
        values.push(value!);
      }
    }
  }
  if (relay !== "none" && status !== 0 && !stored && (status < 500 || relay === "all")) {
    if (unlock !== undefined) ngx.shared.get("cdn_meta")?.delete(unlock);
    ngx.status = status;
    const out = ngx.header;
    for (let i = 0; i < names.length; i++) {
      const cur = out.get(names[i]);
      if (cur === undefined) out.set(names[i], values[i]);
      else if (typeof cur === "string") out.set(names[i], [cur, values[i]]);
      else {
        cur.push(values[i]);
        out.set(names[i], cur);
      }
    }
    if (ngx.req.get_method() === "HEAD") {
      sock.close();
      ngx.send_headers();
      return ngx.exit(ngx.HTTP_OK);
    }
    for (;;) {
      const [chunk] = sock.receiveany(65536);
      if (chunk === undefined) break;
      ngx.print(chunk);
      ngx.flush(true);
    }
    sock.close();
    return ngx.exit(ngx.HTTP_OK);
  }
  for (;;) {
    const [chunk] = sock.receiveany(65536);
    if (chunk === undefined) break;
  }
  sock.close();
  return $multi(status, stored);
}

/** Timer callback of stale-while-revalidate: one refresh, then the key's lock is released. */
export function backgroundRefresh(this: void, premature: boolean, addr: string, port: number, req: string, timeoutMs: number, lockKey: string, tls: boolean): void {
  if (premature) return;
  doRefresh(addr, port, req, timeoutMs, tls, "none");
  const meta = ngx.shared.get("cdn_meta");
  if (meta !== undefined) meta.delete(lockKey);
}

/** Starts a background refresh of the current request (the caller holds the lock `lockKey`). */
export function startBackgroundRefresh(this: void, lockKey: string, timeoutMs: number): void {
  const vars = ngx.var;
  ngx.timer.at(0, backgroundRefresh, vars.get("server_addr")!, tonumber(vars.get("server_port"))!, refreshRequest(), timeoutMs, lockKey, vars.get("https") === "on");
}

/**
 * A synchronous refresh of the current request: the status the edge answered (0 on failure) and whether it
 * stored the answer. An answer it does not store is relayed to the client as `relay` says (see doRefresh),
 * after releasing the lock `unlock`.
 */
export function refreshNow(this: void, timeoutMs: number, relay: Relay, unlock: string): LuaMultiReturn<[number, boolean]> {
  const vars = ngx.var;
  return doRefresh(vars.get("server_addr")!, tonumber(vars.get("server_port"))!, refreshRequest(), timeoutMs, vars.get("https") === "on", relay, unlock);
}
