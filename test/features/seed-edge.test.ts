/**
 * The design seeds' edge server block, end to end in one bundle: a TLS 1.2/1.3 listener with HTTP/2,
 * gzip and brotli, a 5 s client header timeout, an HTTPS origin reached with SNI and a verified certificate,
 * `X-Request-Id` sent to the origin, and plain HTTP redirected to HTTPS. Each part has its own test file
 * (tls-http, tls-origin, compression, client, request-id); this one proves they hold together.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as https from "node:https";
import * as http2 from "node:http2";
import * as tls from "node:tls";
import { gunzipSync, brotliDecompressSync } from "node:zlib";
import { readFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import { http, luaErrors } from "../support/http.js";
import { bootTlsEdge, makePki, type Pki, type TlsEdge } from "../support/tls.js";
import type { Policy } from "../../src/policy/types.js";

const CSS = `body { color: #333; }\n`.repeat(200); // 4.4 KB of text: compressible, over the 1k minimum

interface SeenRequest {
  url: string;
  servername: string | false;
  requestId: string | undefined;
}

let pki: Pki;
let edge: TlsEdge;
let originServer: https.Server;
const seen: SeenRequest[] = [];

function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      { host: "127.0.0.1", port: edge.httpsPort, path, servername: "edge.test", headers: { host: "edge.test", ...headers }, ca: pki.caPem, agent: false, timeout: 5000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
  });
}

describe("the seeds' edge server block, end to end", () => {
  beforeAll(async () => {
    pki = await makePki();
    const site = await pki.issue("edge", ["edge.test"]);
    const originCert = await pki.issue("origin", ["origin.test"]);
    originServer = https.createServer({ cert: await readFile(originCert.cert), key: await readFile(originCert.key) }, (req, res) => {
      const id = req.headers["x-request-id"];
      seen.push({ url: req.url ?? "", servername: (req.socket as TLSSocket).servername ?? false, requestId: Array.isArray(id) ? id[0] : id });
      res.writeHead(200, { "content-type": "text/css", "cache-control": "max-age=600", "content-length": Buffer.byteLength(CSS) });
      res.end(CSS);
    });
    originServer.keepAliveTimeout = 2000;
    await new Promise<void>((r) => originServer.listen(0, "127.0.0.1", r));
    const originAddress = `127.0.0.1:${(originServer.address() as AddressInfo).port}`;
    const p: Omit<Policy, "listen"> = {
      name: "seed-edge",
      serverNames: ["edge.test"],
      origins: { app: { servers: [{ address: originAddress }], scheme: "https", retries: 0, tls: { serverName: "origin.test", trustedCa: pki.caFile } } },
      tls: { certificates: [{ certificate: site.cert, key: site.key }], hsts: { maxAge: "365d" } },
      cache: { ttl: { "200": "10m" } },
      compression: { gzip: { level: 5 }, brotli: { level: 4 } },
      client: { headerTimeout: "5s" },
      headers: { cacheStatus: "X-Cache" },
    };
    edge = await bootTlsEdge(p as Policy);
  });
  afterAll(async () => {
    const errors = edge ? await edge.errors() : [];
    await edge?.stop();
    await new Promise((r) => originServer?.close(r));
    await pki?.remove();
    expect(luaErrors(errors)).toEqual([]);
  });

  it("speaks TLS 1.3 with HTTP/2 by ALPN, and TLS 1.2 too; refuses TLS 1.1", async () => {
    const s = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const sock = tls.connect({ host: "127.0.0.1", port: edge.httpsPort, servername: "edge.test", ca: pki.caPem, ALPNProtocols: ["h2", "http/1.1"] }, () => resolve(sock));
      sock.on("error", reject);
    });
    expect([s.getProtocol(), s.alpnProtocol]).toEqual(["TLSv1.3", "h2"]);
    s.destroy();
    const s12 = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const sock = tls.connect({ host: "127.0.0.1", port: edge.httpsPort, servername: "edge.test", ca: pki.caPem, maxVersion: "TLSv1.2" }, () => resolve(sock));
      sock.on("error", reject);
    });
    expect(s12.getProtocol()).toBe("TLSv1.2");
    s12.destroy();
    const old = await new Promise<string>((resolve) => {
      const sock = tls.connect({ host: "127.0.0.1", port: edge.httpsPort, servername: "edge.test", ca: pki.caPem, minVersion: "TLSv1", maxVersion: "TLSv1.1", ciphers: "DEFAULT:@SECLEVEL=0" }, () => {
        sock.destroy();
        resolve("connected");
      });
      sock.on("error", (e) => resolve(e.message));
    });
    expect(old).not.toBe("connected");
  });

  it("fetches from the HTTPS origin with SNI and a verified certificate, sends X-Request-Id, then serves a HIT over HTTP/2", async () => {
    const first = await get("/site.css");
    expect(first.status).toBe(200);
    expect(first.body.toString()).toBe(CSS);
    expect(first.headers["strict-transport-security"]).toMatch(/max-age=31536000/);
    const atOrigin = seen.find((r) => r.url === "/site.css")!;
    expect(atOrigin.servername).toBe("origin.test");
    expect(atOrigin.requestId).toMatch(/^[0-9a-f]{32}$/);

    const session = http2.connect(`https://127.0.0.1:${edge.httpsPort}`, { ca: pki.caPem, servername: "edge.test" });
    try {
      const r = await new Promise<{ status: number; cache: string | undefined; body: string }>((resolve, reject) => {
        const req = session.request({ ":path": "/site.css", ":authority": "edge.test" });
        let status = 0;
        let cache: string | undefined;
        const chunks: Buffer[] = [];
        req.on("response", (h) => {
          status = Number(h[":status"]);
          cache = h["x-cache"] as string | undefined;
        });
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => resolve({ status, cache, body: Buffer.concat(chunks).toString() }));
        req.on("error", reject);
        req.setTimeout(5000, () => req.close(http2.constants.NGHTTP2_CANCEL));
      });
      expect(r).toEqual({ status: 200, cache: "HIT", body: CSS });
    } finally {
      session.close();
    }
    expect(seen.filter((x) => x.url === "/site.css").length).toBe(1);
  });

  it("compresses with brotli or gzip as the client asks, and never sends an encoding it did not ask for", async () => {
    const br = await get("/site.css", { "accept-encoding": "gzip, br" });
    expect([br.headers["content-encoding"], br.headers["vary"]]).toEqual(["br", "Accept-Encoding"]);
    expect(brotliDecompressSync(br.body).toString()).toBe(CSS);
    const gz = await get("/site.css", { "accept-encoding": "gzip" });
    expect(gz.headers["content-encoding"]).toBe("gzip");
    expect(gunzipSync(gz.body).toString()).toBe(CSS);
    const plain = await get("/site.css");
    expect(plain.headers["content-encoding"]).toBeUndefined();
    expect(plain.body.toString()).toBe(CSS);
    expect(seen.filter((x) => x.url === "/site.css").length).toBe(1); // all from the cache
  });

  it("redirects plain HTTP to HTTPS keeping path and query", async () => {
    const r = await http(edge, "/a/b?x=1&y=2", { headers: { host: "edge.test" } });
    expect(r.status).toBe(308);
    // the HTTPS port is not 443 here, so the redirect names it
    expect(r.headers["location"]).toBe(`https://edge.test:${edge.httpsPort}/a/b?x=1&y=2`);
  });

  it("closes a TLS connection whose request headers do not arrive within the 5 s header timeout", async () => {
    const started = Date.now();
    const outcome = await new Promise<string>((resolve) => {
      const sock = tls.connect({ host: "127.0.0.1", port: edge.httpsPort, servername: "edge.test", ca: pki.caPem, ALPNProtocols: ["http/1.1"] }, () => {
        sock.write("GET /site.css HTTP/1.1\r\nHost: edge.test\r\n"); // and never the blank line
      });
      let data = "";
      sock.on("data", (c: Buffer) => (data += c.toString()));
      sock.on("close", () => resolve(data === "" ? "closed" : data.split("\r\n")[0]!));
      sock.on("error", () => undefined);
      setTimeout(() => {
        sock.destroy();
        resolve("still open after 9 s");
      }, 9000);
    });
    const waited = Date.now() - started;
    expect(outcome === "closed" || /^HTTP\/1\.1 408/.test(outcome)).toBe(true);
    expect(waited).toBeGreaterThan(4000);
    expect(waited).toBeLessThan(8500);
  }, 15_000);
});
