/**
 * Client limits and timeouts: slow headers, slow bodies (a total deadline, not only a per-read timeout),
 * slow readers, body size limits (global and per rule), connections per address. Raw sockets (node:net), with
 * short timeouts in the policy so every test ends within seconds.
 */
import { createConnection, type Socket } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { compile } from "../../src/compile.js";
import { bootEdge, type Edge } from "../support/edge.js";
import { http, luaErrors, rawRequest } from "../support/http.js";
import { startMockOrigin, type MockOrigin } from "../support/mock-origin.js";
import { diagnostics, policy } from "../support/policy.js";

describe("client limits: policy and config", () => {
  const conf = (extra: object) => compile({ ...policy("127.0.0.1:3000"), ...extra }, { target: "openresty" }).bundle!.files.get("nginx.conf")!;

  it("applies a CDN's defaults without the key", () => {
    const c = conf({});
    for (const line of [
      "client_header_timeout 5s;",
      "client_body_timeout 10s;",
      "send_timeout 10s;",
      "keepalive_timeout 30s;",
      "keepalive_requests 1000;",
      "client_max_body_size 10485760;",
      "large_client_header_buffers 4 8k;",
    ]) {
      expect(c.split("\n").map((l) => l.trim())).toContain(line);
    }
    expect(c).not.toMatch(/limit_conn|multi_accept/);
  });

  it("takes the policy's values; a rule can raise nginx's body limit", () => {
    const c = conf({
      client: { headerTimeout: "2s", bodyTimeout: "3s", sendTimeout: "4s", keepaliveTimeout: "500ms", keepaliveRequests: 50, maxBodySize: "1m", headerBuffers: { count: 8, size: "16k" }, connectionsPerAddress: 20 },
      rules: [{ name: "up", when: { path: "/upload/*" }, then: { maxBodySize: "100m" } }],
      workers: { multiAccept: true, maxOpenFiles: 65536 },
    });
    const lines = c.split("\n").map((l) => l.trim());
    for (const line of [
      "client_header_timeout 2s;",
      "client_body_timeout 3s;",
      "send_timeout 4s;",
      "keepalive_timeout 500ms;",
      "keepalive_requests 50;",
      "client_max_body_size 104857600;",
      "large_client_header_buffers 8 16k;",
      "limit_conn_zone $binary_remote_addr zone=cdn_conn:10m;",
      "limit_conn cdn_conn 20;",
      "multi_accept on;",
    ]) {
      expect(lines).toContain(line);
    }
    expect(c).toMatch(/^worker_rlimit_nofile 65536;$/m);
  });

  it("refuses bad values with codes naming the field", () => {
    const d = (client: object, extra: object = {}) => diagnostics({ ...policy("127.0.0.1:3000"), client, ...extra });
    expect(d({ headerTimeout: "0s" })).toContain("CDN2006 /client/headerTimeout");
    expect(d({ bodyTimeout: "10s", bodyDeadline: "5s" })).toContain("CDN2103 /client/bodyDeadline");
    expect(d({ maxBodySize: "100g" })).toContain("CDN2007 /client/maxBodySize");
    expect(d({ headerBuffers: { size: "100" } })).toContain("CDN2007 /client/headerBuffers/size");
    expect(d({ connectionsPerAddress: 10 }, { clientAddress: { trustedProxies: ["10.0.0.0/8"] } })).toContain("CDN2104 /client/connectionsPerAddress");
    expect(d({ keepaliveRequests: 0 }).some((x) => x.startsWith("CDN1"))).toBe(true);
    expect(diagnostics({ ...policy("127.0.0.1:3000"), rules: [{ name: "r", then: { maxBodySize: "x" } }] })).toContain("CDN1004 /rules/0/then/maxBodySize");
  });
});

/** Opens a connection; resolves once connected. */
function connect(edge: Edge): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ host: "127.0.0.1", port: edge.port }, () => resolve(s));
    s.on("error", reject);
  });
}

/**
 * Writes `head`, then one byte of `drip` every `everyMs` until the edge closes the connection; resolves with
 * the milliseconds until the close and what the edge sent.
 */
function drip(edge: Edge, head: string, dripText: string, everyMs: number, maxMs = 10_000): Promise<{ ms: number; reply: string }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const chunks: Buffer[] = [];
    const s = createConnection({ host: "127.0.0.1", port: edge.port }, () => s.write(head));
    let i = 0;
    const timer = setInterval(() => {
      if (i < dripText.length && !s.destroyed) s.write(dripText[i++]!);
    }, everyMs);
    const guard = setTimeout(() => {
      s.destroy();
      reject(new Error(`connection still open after ${maxMs} ms`));
    }, maxMs);
    s.on("data", (c) => chunks.push(c));
    s.on("error", () => undefined); // a reset after the close counts as a close
    s.on("close", () => {
      clearInterval(timer);
      clearTimeout(guard);
      resolve({ ms: Date.now() - started, reply: Buffer.concat(chunks).toString("latin1") });
    });
  });
}

describe("client limits in a real nginx", () => {
  let origin: MockOrigin;
  let edge: Edge;
  const BIG = 48 * 1024 * 1024;
  beforeAll(async () => {
    origin = await startMockOrigin();
    origin.route("/big", { headers: { "cache-control": "max-age=600", "content-type": "application/octet-stream" }, body: Buffer.alloc(BIG, 0x61) });
    origin.setDefault((req) => ({ headers: { "content-type": "text/plain" }, body: `got ${req.body.length}` }));
    edge = await bootEdge(
      policy(origin.address, {
        name: "limits",
        cache: { ttl: { "200": "1h" }, disk: { size: "512m" } },
        client: { headerTimeout: "1s", bodyTimeout: "1s", bodyDeadline: "2s", sendTimeout: "1s", keepaliveTimeout: "1s", keepaliveRequests: 2, maxBodySize: "1k", connectionsPerAddress: 3, headerBuffers: { count: 4, size: "2k" } },
        rules: [
          { name: "upload", when: { path: "/upload/*" }, then: { maxBodySize: "64k", cache: { bypass: true } } },
          { name: "tiny", when: { path: "/tiny" }, then: { maxBodySize: "10" } },
        ],
        headers: { cacheStatus: "X-Cache" },
        workers: { processes: 1 },
      }),
    );
  });
  afterEach(async () => {
    expect(luaErrors(await edge.errors())).toEqual([]);
  });
  afterAll(async () => {
    await edge?.stop();
    await origin?.close();
  });

  it("closes a slowloris client that never finishes its headers, after the header timeout", async () => {
    const r = await drip(edge, "GET / HTTP/1.1\r\nHost: edge\r\n", "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 200);
    expect(r.ms).toBeGreaterThanOrEqual(900);
    expect(r.ms).toBeLessThan(3000);
    expect(r.reply === "" || /^HTTP\/1\.1 408/.test(r.reply)).toBe(true);
  });

  it("ends a body that trickles in under the per-read timeout at the total deadline (408), and the origin never sees it", async () => {
    const before = origin.hits("/drip");
    // one byte every 300 ms: never a 1 s pause, but 100 bytes would take 30 s
    const r = await drip(edge, "POST /drip HTTP/1.1\r\nHost: edge\r\nContent-Length: 100\r\n\r\n", "x".repeat(100), 300);
    // the deadline ends the read of the body: logged as 408, and the connection is closed
    expect(r.reply === "" || /^HTTP\/1\.1 408/.test(r.reply)).toBe(true);
    expect(r.ms).toBeGreaterThanOrEqual(1900);
    expect(r.ms).toBeLessThan(5000);
    expect(origin.hits("/drip")).toBe(before);
  });

  it("passes a body that arrives in time, byte for byte", async () => {
    const body = "b".repeat(60 * 1024);
    origin.route("/upload/ok", (req) => ({ body: `len=${req.body.length} same=${req.body === body}` }));
    const r = await http(edge, "/upload/ok", { method: "POST", body });
    expect([r.status, r.body]).toEqual([200, "len=61440 same=true"]);
    const small = await http(edge, "/echo", { method: "POST", body: "hello" });
    expect([small.status, small.body]).toEqual([200, "got 5"]);
  });

  it("refuses bodies over the limit with 413: the policy's, a rule's (higher or lower), with or without Content-Length", async () => {
    const post = (path: string, size: number) => http(edge, path, { method: "POST", body: "z".repeat(size) });
    expect((await post("/form", 2000)).status).toBe(413); // policy 1k (below nginx's 64k: Lua)
    expect((await post("/upload/a", 2000)).status).toBe(200); // the rule raised it
    expect((await post("/upload/a", 70 * 1024)).status).toBe(413); // nginx's own limit
    expect((await post("/tiny", 20)).status).toBe(413); // the rule lowered it
    expect((await post("/tiny", 5)).status).toBe(200);
    const chunked = await rawRequest(edge, `POST /form HTTP/1.1\r\nHost: edge\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n7d0\r\n${"c".repeat(2000)}\r\n0\r\n\r\n`);
    expect(chunked.status).toBe(413);
    const chunkedOk = await rawRequest(edge, `POST /form HTTP/1.1\r\nHost: edge\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n`);
    expect([chunkedOk.status, chunkedOk.body]).toEqual([200, "got 5"]);
  });

  it("cuts off a client that stops reading a large cached response, after the send timeout", async () => {
    const warm = await http(edge, "/big");
    expect(warm.body.length).toBe(BIG);
    expect((await http(edge, "/big")).headers["x-cache"]).toBe("HIT");
    const s = await connect(edge);
    let got = 0;
    let closedAt = 0;
    const started = Date.now();
    s.on("data", (c: Buffer) => (got += c.length));
    const closed = new Promise<void>((resolve) => s.on("close", () => ((closedAt = Date.now()), resolve())));
    s.on("error", () => undefined);
    s.write("GET /big HTTP/1.1\r\nHost: edge\r\n\r\n");
    s.pause(); // read nothing: the kernel buffers fill, nginx waits
    await new Promise((r) => setTimeout(r, 3000));
    s.resume(); // drain what was buffered: nginx has given up by now
    await Promise.race([closed, new Promise((r) => setTimeout(r, 5000))]);
    expect(closedAt).toBeGreaterThan(0);
    expect(closedAt - started).toBeLessThan(8000);
    expect(got).toBeLessThan(BIG);
  }, 15_000);

  it("answers a request line or header over the buffer size itself (414, 400)", async () => {
    const longUri = await rawRequest(edge, `GET /${"u".repeat(3000)} HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n`);
    expect(longUri.status).toBe(414);
    const longHeader = await rawRequest(edge, `GET / HTTP/1.1\r\nHost: edge\r\nX-Long: ${"h".repeat(3000)}\r\nConnection: close\r\n\r\n`);
    expect(longHeader.status).toBe(400);
  });

  it("closes an idle keep-alive connection after the keep-alive timeout, and after keepaliveRequests requests", async () => {
    const s = await connect(edge);
    const started = Date.now();
    let text = "";
    s.on("data", (c: Buffer) => (text += c.toString("latin1")));
    const closed = new Promise<number>((resolve) => s.on("close", () => resolve(Date.now() - started)));
    s.on("error", () => undefined);
    s.write("GET /ka HTTP/1.1\r\nHost: edge\r\n\r\n");
    const ms = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), 5000))]);
    expect(text).toMatch(/^HTTP\/1\.1 200/);
    expect(ms).toBeGreaterThanOrEqual(900);
    expect(ms).toBeLessThan(3000);
    // two requests on one connection, then nginx closes it
    const two = await rawRequest(edge, "GET /ka1 HTTP/1.1\r\nHost: edge\r\n\r\nGET /ka2 HTTP/1.1\r\nHost: edge\r\n\r\nGET /ka3 HTTP/1.1\r\nHost: edge\r\n\r\n");
    expect((two.body.match(/HTTP\/1\.1 200/g) ?? []).length).toBe(1); // the second response, after the first one's body
    expect(two.headers["connection"] ?? "").not.toBe("close"); // the first response kept it open
    expect(origin.hits("/ka3")).toBe(0);
  });

  it("refuses a client address's connections beyond the limit with 429 while they are busy", async () => {
    origin.route("/slow", { delayMs: 1500, body: "slow" });
    const busy = [1, 2, 3].map(() => rawRequest(edge, "GET /slow HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n"));
    await new Promise((r) => setTimeout(r, 400));
    const extra = await rawRequest(edge, "GET /other HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n");
    expect(extra.status).toBe(429);
    expect((await Promise.all(busy)).map((r) => r.status)).toEqual([200, 200, 200]);
    expect((await http(edge, "/after")).status).toBe(200);
  });
});
