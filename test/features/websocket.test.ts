/**
 * WebSocket proxying: a real WebSocket echo origin (the `ws` package) through the edge: the upgrade passes on
 * the policy's paths only, after the gates; the WebSocket idle timeout replaces the origin's read timeout;
 * nothing on those paths is cached.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { compile } from "../../src/compile.js";
import { bootEdge, type Edge } from "../support/edge.js";
import { http, luaErrors } from "../support/http.js";
import { diagnostics, policy } from "../support/policy.js";

describe("websocket: policy and config", () => {
  it("adds a WebSocket location without cache, with the upgrade headers and the idle timeout", () => {
    const conf = compile({ ...policy("127.0.0.1:3000"), cache: {}, websocket: { paths: ["/ws/*"], idleTimeout: "90s" } }, { target: "openresty" }).bundle!.files.get("nginx.conf")!;
    const ws = /location @cdn_ws \{([\s\S]*?)\n    \}/.exec(conf)![1]!;
    expect(ws).toContain("proxy_set_header Upgrade $cdn_ws_upgrade;");
    expect(ws).toContain("proxy_set_header Connection $cdn_ws_connection;");
    expect(ws).toContain("proxy_http_version 1.1;");
    expect(ws).toContain("proxy_read_timeout 90s;");
    expect(ws).not.toContain("proxy_cache");
    // the proxy location itself never passes an upgrade on
    expect(conf.match(/proxy_set_header Upgrade/g)).toHaveLength(1);
    expect(conf.match(/proxy_set_header Connection "";/g)).toHaveLength(1);
  });

  it("a rule can make requests WebSocket requests; settings without endpoints are a warning", () => {
    const conf = compile({ ...policy("127.0.0.1:3000"), rules: [{ name: "live", when: { path: "/live" }, then: { websocket: true } }] }, { target: "openresty" }).bundle!.files.get("nginx.conf")!;
    expect(conf).toContain("location @cdn_ws {");
    expect(conf).toContain("proxy_read_timeout 600s;");
    expect(diagnostics({ ...policy("127.0.0.1:3000"), websocket: { idleTimeout: "1m" } })).toEqual(["CDN2105 /websocket"]);
  });

  it("refuses an empty path list and a bad timeout", () => {
    expect(diagnostics({ ...policy("127.0.0.1:3000"), websocket: { paths: [] } }).some((d) => d.includes("/websocket/paths"))).toBe(true);
    expect(diagnostics({ ...policy("127.0.0.1:3000"), websocket: { paths: ["/ws"], idleTimeout: "0s" } })).toContain("CDN2006 /websocket/idleTimeout");
  });
});

describe("websocket through a real nginx", () => {
  let server: Server;
  let wss: WebSocketServer;
  let edge: Edge;
  let httpHits = 0;
  const upgrades: Record<string, string | undefined>[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      httpHits++;
      res.writeHead(200, { "content-type": "text/plain", "cache-control": "max-age=600" });
      res.end(`plain ${req.url} upgrade=${req.headers.upgrade ?? "-"}`);
    });
    wss = new WebSocketServer({ server });
    wss.on("connection", (sock, req) => {
      upgrades.push({ upgrade: req.headers.upgrade, connection: req.headers.connection, secret: req.headers["x-origin-secret"] as string | undefined });
      sock.on("message", (m, binary) => sock.send(binary ? m : `echo:${m.toString()}`));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    edge = await bootEdge(
      policy(`127.0.0.1:${port}`, {
        name: "ws",
        origins: { app: { servers: [{ address: `127.0.0.1:${port}` }], retries: 0, readTimeout: "1s" } },
        cache: { ttl: { "200": "1h" } },
        headers: { cacheStatus: "X-Cache" },
        originSecret: { secret: { env: "WS_EDGE_SECRET" } },
        websocket: { paths: ["/ws/*"], idleTimeout: "5s" },
        rules: [{ name: "live", when: { path: "/live", header: { name: "X-Live", exists: true } }, then: { websocket: true } }],
      }),
      { env: { WS_EDGE_SECRET: "s3cret" } },
    );
  });
  afterEach(async () => {
    expect(luaErrors(await edge.errors())).toEqual([]);
  });
  afterAll(async () => {
    await edge?.stop();
    for (const c of wss?.clients ?? []) c.terminate();
    await new Promise((r) => wss?.close(r));
    await new Promise((r) => server?.close(r));
  });

  const open = (path: string, headers: Record<string, string> = { "x-origin-secret": "s3cret" }) =>
    new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${edge.port}${path}`, { headers });
      ws.once("open", () => resolve(ws));
      ws.once("unexpected-response", (_req, res) => reject(new Error(`status ${res.statusCode}`)));
      ws.once("error", reject);
    });
  const next = (ws: WebSocket) => new Promise<string>((resolve) => ws.once("message", (m) => resolve(m.toString())));

  it("proxies a WebSocket on its paths, both ways, text and binary", async () => {
    const ws = await open("/ws/chat");
    try {
      const a = next(ws);
      ws.send("hello");
      expect(await a).toBe("echo:hello");
      const b = next(ws);
      ws.send(Buffer.from([1, 2, 3]));
      expect(await b).toBe("\u0001\u0002\u0003");
      const last = upgrades[upgrades.length - 1]!;
      expect(last.upgrade).toBe("websocket");
      expect(last.connection?.toLowerCase()).toBe("upgrade");
      // the gate's secret header never reaches the origin
      expect(last.secret).toBeUndefined();
    } finally {
      ws.close();
    }
  });

  it("keeps a silent WebSocket open past the origin's read timeout, up to the WebSocket idle timeout", async () => {
    const ws = await open("/ws/idle");
    try {
      await new Promise((r) => setTimeout(r, 2500)); // the origin's readTimeout is 1s
      expect(ws.readyState).toBe(WebSocket.OPEN);
      const a = next(ws);
      ws.send("still there");
      expect(await a).toBe("echo:still there");
    } finally {
      ws.close();
    }
  });

  it("proxies a WebSocket on a request a rule picked, and not on the same path without the rule's condition", async () => {
    const ws = await open("/live", { "x-origin-secret": "s3cret", "x-live": "1" });
    try {
      const a = next(ws);
      ws.send("rule");
      expect(await a).toBe("echo:rule");
    } finally {
      ws.close();
    }
    await expect(open("/live")).rejects.toThrow(/status 200/);
  });

  it("applies the gates to the upgrade request", async () => {
    await expect(open("/ws/chat", {})).rejects.toThrow("status 403");
  });

  it("never passes an upgrade on other paths, and never caches WebSocket paths", async () => {
    await expect(open("/chat")).rejects.toThrow(/status 200/);
    const before = httpHits;
    const a = await http(edge, "/ws/plain", { headers: { "x-origin-secret": "s3cret" } });
    const b = await http(edge, "/ws/plain", { headers: { "x-origin-secret": "s3cret" } });
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(b.body).toBe("plain /ws/plain upgrade=-");
    expect(httpHits - before).toBe(2);
    // elsewhere the cache works as usual
    await http(edge, "/page", { headers: { "x-origin-secret": "s3cret" } });
    expect((await http(edge, "/page", { headers: { "x-origin-secret": "s3cret" } })).headers["x-cache"]).toBe("HIT");
  });
});
