/**
 * A real, scriptable HTTP origin on 127.0.0.1 for integration tests.
 *
 *   const origin = await startMockOrigin();   // import { startMockOrigin } from "cdn-build/testing"
 *   origin.route("/a", { status: 200, headers: { "cache-control": "max-age=60" }, body: "A" });
 *   origin.route("/flaky", (_req, n) => (n === 1 ? { destroy: true } : { body: "ok" }));
 *   origin.route("/rst", { reset: true });   // TCP RST after reading the request
 *   ... origin.hits("/a") ...
 *   await origin.close();
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";

export interface RecordedRequest {
  method: string;
  /** Request target as received, including the query string. */
  url: string;
  /** `url` without the query string. */
  path: string;
  headers: http.IncomingHttpHeaders;
  /** Request body decoded as UTF-8 (empty string when there is none). */
  body: string;
  /** Date.now() when the request (with its body) had been received. */
  at: number;
}

export interface MockResponse {
  /** Default 200. */
  status?: number;
  headers?: Record<string, string | string[]>;
  body?: string | Buffer;
  /** Wait this long before answering (or before dropping, with `destroy`). */
  delayMs?: number;
  /** Drop the connection without answering. */
  destroy?: boolean;
  /**
   * Send the status line, the headers (with the full Content-Length unless a header says otherwise) and only
   * the first `afterBytes` bytes of the body, then: "reset" the connection (RST), "close" it (FIN), or
   * "stall" (send nothing more until the origin is closed).
   */
  cut?: { afterBytes: number; how: "reset" | "close" | "stall" };
  /** Reset the connection (TCP RST) without answering, after reading the request. */
  reset?: boolean;
}

/** `n` is the 1-based number of this request among those for the same path (query ignored). */
export type MockHandler = (req: RecordedRequest, n: number) => MockResponse | Promise<MockResponse>;

export interface MockOrigin {
  port: number;
  /** "127.0.0.1:PORT" (what an nginx upstream / proxy_pass wants). */
  address: string;
  /** "http://127.0.0.1:PORT" */
  url: string;
  requests: RecordedRequest[];
  /** Requests received: all, or for one path (query ignored) — or one exact url if it contains "?". */
  hits(pathOrUrl?: string): number;
  route(path: string, response: MockResponse | MockHandler): void;
  /** The answer for paths without a route; `undefined` goes back to the built-in one. */
  setDefault(response: MockResponse | MockHandler | undefined): void;
  /** Forget recorded requests, routes and the custom default. */
  reset(): void;
  /** Close the server and destroy open (keep-alive) sockets; the port then refuses connections. */
  close(): Promise<void>;
}

function pathOf(url: string): string {
  const q = url.indexOf("?");
  return q === -1 ? url : url.slice(0, q);
}

function hasHeader(headers: Record<string, string | string[]>, name: string): boolean {
  return Object.keys(headers).some((k) => k.toLowerCase() === name);
}

export async function startMockOrigin(opts: { port?: number } = {}): Promise<MockOrigin> {
  const requests: RecordedRequest[] = [];
  const routes = new Map<string, MockResponse | MockHandler>();
  let fallback: MockResponse | MockHandler | undefined;
  const timers = new Set<NodeJS.Timeout>();
  let port = 0;
  let closed = false;

  const delay = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        timers.delete(t);
        resolve();
      }, ms);
      timers.add(t);
    });

  const builtinDefault = (req: RecordedRequest): MockResponse => ({
    status: 200,
    headers: { "content-type": "text/plain" },
    body: `origin:${port}:${req.path}`,
  });

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = req.url ?? "/";
    const rec: RecordedRequest = {
      method: req.method ?? "GET",
      url,
      path: pathOf(url),
      headers: req.headers,
      body: Buffer.concat(chunks).toString("utf8"),
      at: Date.now(),
    };
    requests.push(rec);
    const n = requests.filter((r) => r.path === rec.path).length;

    const spec = routes.get(rec.path) ?? fallback;
    let resp: MockResponse;
    try {
      resp = spec === undefined ? builtinDefault(rec) : typeof spec === "function" ? await spec(rec, n) : spec;
    } catch (err) {
      resp = { status: 500, headers: { "content-type": "text/plain" }, body: `mock handler threw: ${String(err)}` };
    }

    if (resp.delayMs && resp.delayMs > 0) await delay(resp.delayMs);
    if (closed || res.destroyed) return;
    if (resp.reset) {
      req.socket.resetAndDestroy();
      return;
    }
    if (resp.destroy) {
      req.socket.destroy();
      return;
    }
    const headers = { ...(resp.headers ?? {}) };
    const body = resp.body ?? "";
    if (!hasHeader(headers, "content-type") && body.length > 0) headers["content-type"] = "text/plain";
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    res.setHeader("x-origin-port", String(port));
    res.statusCode = resp.status ?? 200;
    if (resp.cut) {
      const full = Buffer.from(body);
      if (!hasHeader(headers, "content-length") && !hasHeader(headers, "transfer-encoding")) res.setHeader("content-length", String(full.length));
      res.flushHeaders();
      res.write(full.subarray(0, resp.cut.afterBytes));
      const sock = req.socket;
      if (resp.cut.how === "reset") setTimeout(() => sock.resetAndDestroy(), 20);
      else if (resp.cut.how === "close") setTimeout(() => sock.destroySoon(), 20);
      return;
    }
    res.end(body);
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent && !res.destroyed) {
        res.statusCode = 500;
        res.end();
      } else {
        res.destroy();
      }
    });
  });
  // Keep-alive sockets must not keep the test process (or close()) waiting.
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, "127.0.0.1", () => {
      server.removeListener("error", reject);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;

  let closing: Promise<void> | undefined;

  return {
    port,
    address: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    requests,
    hits(pathOrUrl?: string): number {
      if (pathOrUrl === undefined) return requests.length;
      if (pathOrUrl.includes("?")) return requests.filter((r) => r.url === pathOrUrl).length;
      return requests.filter((r) => r.path === pathOrUrl).length;
    },
    route(path, response) {
      routes.set(path, response);
    },
    setDefault(response) {
      fallback = response;
    },
    reset() {
      requests.length = 0;
      routes.clear();
      fallback = undefined;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        closed = true;
        for (const t of timers) clearTimeout(t);
        timers.clear();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
