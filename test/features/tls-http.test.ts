/**
 * TLS from clients to the edge, in a real nginx: HTTP/2 by ALPN, TLS 1.2/1.3 only, the certificate chosen by
 * SNI among two, the HTTP -> HTTPS redirect, HSTS, session resumption, and cache hits over TLS.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import * as tls from "node:tls";
import * as https from "node:https";
import * as http2 from "node:http2";
import { Agent, request } from "undici";
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { startMockOrigin, type MockOrigin } from "../support/mock-origin.js";
import { policy } from "../support/policy.js";
import { http, luaErrors } from "../support/http.js";
import { bootTlsEdge, makePki, type Pki, type TlsEdge } from "../support/tls.js";

let pki: Pki;
let origin: MockOrigin;
let edge: TlsEdge;

/** A TLS handshake with the edge; resolves to the connected socket (the caller ends it). */
function handshake(opts: tls.ConnectionOptions): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: "127.0.0.1", port: edge.httpsPort, ca: pki.caPem, ...opts }, () => resolve(s));
    s.setTimeout(5000, () => s.destroy(new Error("handshake timed out")));
    s.once("error", reject);
  });
}

/** One GET over HTTPS/1.1 with node:https, trusting the test CA. */
function httpsGet(path: string, host: string, agent?: https.Agent): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string; protocol: string | null }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: "127.0.0.1", port: edge.httpsPort, path, servername: host, headers: { host }, ca: pki.caPem, agent: agent ?? false, timeout: 5000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body, protocol: (res.socket as tls.TLSSocket).getProtocol?.() ?? null }));
    });
    req.on("timeout", () => req.destroy(new Error("request timed out")));
    req.on("error", reject);
  });
}

/** One GET over HTTP/2 with node:http2. */
function h2Get(session: http2.ClientHttp2Session, path: string, authority: string): Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ":path": path, ":authority": authority });
    let body = "";
    let headers: http2.IncomingHttpHeaders = {};
    req.setEncoding("utf8");
    req.on("response", (h) => (headers = h));
    req.on("data", (c: string) => (body += c));
    req.on("end", () => resolve({ status: Number(headers[":status"]), headers, body }));
    req.on("error", reject);
    req.setTimeout(5000, () => req.close(http2.constants.NGHTTP2_CANCEL));
  });
}

function h2Connect(servername: string): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const s = http2.connect(`https://127.0.0.1:${edge.httpsPort}`, { ca: pki.caPem, servername });
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}

describe("TLS to the edge", () => {
  beforeAll(async () => {
    pki = await makePki();
    const a = await pki.issue("a", ["a.test", "www.a.test"]);
    const b = await pki.issue("b", ["b.test"]);
    origin = await startMockOrigin();
    origin.setDefault((req) => ({ headers: { "cache-control": "max-age=600" }, body: `origin ${req.url}` }));
    edge = await bootTlsEdge(
      policy(origin, {
        serverNames: ["a.test", "www.a.test", "b.test"],
        cache: { ttl: { "200": "1h" } },
        headers: { cacheStatus: "X-Cache" },
        health: { path: "/healthz" },
        tls: {
          certificates: [
            { certificate: a.cert, key: a.key },
            { certificate: b.cert, key: b.key },
          ],
          hsts: { maxAge: "1h", includeSubDomains: true },
        },
      }),
    );
  });
  afterEach(async () => {
    expect(luaErrors(await edge.errors())).toEqual([]);
  });
  afterAll(async () => {
    await edge?.stop();
    await origin?.close();
    await pki?.remove();
  });

  it("negotiates HTTP/2 by ALPN and TLS 1.3 by default", async () => {
    const s = await handshake({ servername: "a.test", ALPNProtocols: ["h2", "http/1.1"] });
    expect(s.alpnProtocol).toBe("h2");
    expect(s.getProtocol()).toBe("TLSv1.3");
    expect(s.authorized).toBe(true);
    s.end();
    const h1 = await handshake({ servername: "a.test", ALPNProtocols: ["http/1.1"] });
    expect(h1.alpnProtocol).toBe("http/1.1");
    h1.end();
  });

  it("accepts TLS 1.2 with a forward-secret AEAD suite", async () => {
    const s = await handshake({ servername: "a.test", maxVersion: "TLSv1.2" });
    expect(s.getProtocol()).toBe("TLSv1.2");
    expect(s.getCipher().name).toMatch(/^ECDHE-(ECDSA|RSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/);
    s.end();
  });

  it("refuses TLS 1.0 and 1.1 (the server says so, not the client)", async () => {
    for (const v of ["TLSv1", "TLSv1.1"] as const) {
      // SECLEVEL=0: this client can offer the old versions, so a failure is the edge's refusal
      const err = await handshake({ servername: "a.test", minVersion: v, maxVersion: v, ciphers: "DEFAULT:@SECLEVEL=0" }).then(
        (s) => {
          s.end();
          return undefined;
        },
        (e: Error) => e,
      );
      expect(err, v).toBeInstanceOf(Error);
      // an alert from the edge ("protocol version", alert 70), not a client-side refusal
      expect(String(err)).toMatch(/alert protocol version/i);
    }
  });

  it("presents the certificate of the name the client asks for (SNI)", async () => {
    for (const [name, expected] of [["a.test", "DNS:a.test, DNS:www.a.test"], ["www.a.test", "DNS:a.test, DNS:www.a.test"], ["b.test", "DNS:b.test"]] as const) {
      const s = await handshake({ servername: name });
      expect(s.authorized, name).toBe(true);
      expect(s.getPeerCertificate().subjectaltname, name).toBe(expected);
      s.end();
    }
  });

  it("refuses the handshake for a name it does not serve", async () => {
    await expect(handshake({ servername: "other.test", rejectUnauthorized: false })).rejects.toThrow(/alert|unrecognized name|handshake|socket/i);
  });

  it("serves over HTTPS/1.1 with HSTS, and a cache HIT over TLS", async () => {
    const a = await httpsGet("/hit?x=1", "a.test");
    const b = await httpsGet("/hit?x=1", "a.test");
    expect(a.status).toBe(200);
    expect(a.body).toBe("origin /hit?x=1");
    expect(a.headers["x-cache"]).toBe("MISS");
    expect(b.headers["x-cache"]).toBe("HIT");
    expect(b.body).toBe(a.body);
    expect(origin.hits("/hit")).toBe(1);
    expect(a.headers["strict-transport-security"]).toBe("max-age=3600; includeSubDomains");
    const req = origin.requests.find((r) => r.path === "/hit")!;
    expect(req.headers["x-forwarded-proto"]).toBe("https");
  });

  it("serves over HTTP/2, from the cache too", async () => {
    const session = await h2Connect("b.test");
    try {
      const a = await h2Get(session, "/h2", "b.test");
      const b = await h2Get(session, "/h2", "b.test");
      expect(a.status).toBe(200);
      expect(a.body).toBe("origin /h2");
      expect(b.headers["x-cache"]).toBe("HIT");
      expect(b.headers["strict-transport-security"]).toBe("max-age=3600; includeSubDomains");
      expect(origin.hits("/h2")).toBe(1);
    } finally {
      session.close();
    }
  });

  it("works with undici trusting the test CA", async () => {
    const agent = new Agent({ connect: { ca: pki.caPem, servername: "www.a.test" } });
    try {
      const res = await request(`https://127.0.0.1:${edge.httpsPort}/undici`, { headers: { host: "www.a.test" }, dispatcher: agent });
      expect(res.statusCode).toBe(200);
      expect(await res.body.text()).toBe("origin /undici");
    } finally {
      await agent.close();
    }
  });

  it("answers 421 over TLS for a Host it does not serve", async () => {
    const r = await new Promise<number>((resolve, reject) => {
      https
        .get({ host: "127.0.0.1", port: edge.httpsPort, path: "/x", servername: "a.test", headers: { host: "evil.test" }, ca: pki.caPem, agent: false, timeout: 5000 }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        })
        .on("error", reject);
    });
    expect(r).toBe(421);
  });

  it("redirects plain HTTP to HTTPS keeping host, path and query (308)", async () => {
    const r = await http(edge, "/some/path?q=1&b=%20x", { headers: { host: "www.a.test" } });
    expect(r.status).toBe(308);
    expect(r.headers.location).toBe(`https://www.a.test:${edge.httpsPort}/some/path?q=1&b=%20x`);
    expect(r.headers["strict-transport-security"]).toBeUndefined();
    expect(origin.hits("/some/path")).toBe(0);
    // the health endpoint still answers over HTTP
    expect((await http(edge, "/healthz", { headers: { host: "a.test" } })).status).toBe(200);
    // an unknown host still gets 421 over HTTP
    expect((await http(edge, "/x", { headers: { host: "evil.test" } })).status).toBe(421);
  });

  it("sends HSTS on nginx's own error pages too (502 from a failing origin)", async () => {
    origin.route("/broken", { reset: true });
    const r = await httpsGet("/broken", "a.test");
    expect(r.status).toBe(502);
    expect(r.headers["strict-transport-security"]).toBe("max-age=3600; includeSubDomains");
  });

  it("resumes sessions (session cache or tickets)", async () => {
    const first = await handshake({ servername: "a.test", maxVersion: "TLSv1.2" });
    const session = first.getSession();
    first.end();
    expect(session).toBeDefined();
    const second = await handshake({ servername: "a.test", maxVersion: "TLSv1.2", session });
    expect(second.isSessionReused()).toBe(true);
    second.end();
  });
});

describe("certificates from env() paths", () => {
  let envEdge: TlsEdge | undefined;
  let a: { cert: string; key: string };
  let b: { cert: string; key: string };
  const envPolicy = () =>
    policy(origin, {
      serverNames: ["a.test", "b.test"],
      tls: {
        certificates: [
          { certificate: a.cert, key: a.key },
          { certificate: { env: "EDGE_B_CERT" }, key: { env: "EDGE_B_KEY" }, serverNames: ["b.test"] },
        ],
      },
    });
  const connect = (servername: string, port: number) =>
    new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ host: "127.0.0.1", port, ca: pki.caPem, servername }, () => resolve(s));
      s.setTimeout(5000, () => s.destroy(new Error("handshake timed out")));
      s.once("error", reject);
    });

  beforeAll(async () => {
    pki = await makePki();
    a = await pki.issue("a", ["a.test"]);
    b = await pki.issue("b", ["b.test"]);
    origin = await startMockOrigin();
  });
  afterEach(async () => {
    await envEdge?.stop();
    envEdge = undefined;
  });
  afterAll(async () => {
    await origin?.close();
    await pki?.remove();
  });

  it("reads the paths from the master's environment at start and presents the certificate by SNI", async () => {
    envEdge = await bootTlsEdge(envPolicy(), { env: { EDGE_B_CERT: b.cert, EDGE_B_KEY: b.key } });
    expect(envEdge.conf).toContain("ssl_certificate_by_lua_block { cdn.certificate(0) }");
    for (const [name, san] of [["a.test", "DNS:a.test"], ["b.test", "DNS:b.test"]] as const) {
      const s = await connect(name, envEdge.httpsPort);
      expect(s.authorized, name).toBe(true);
      expect(s.getPeerCertificate().subjectaltname).toBe(san);
      s.end();
    }
    const r = await new Promise<number>((resolve, reject) => {
      https
        .get({ host: "127.0.0.1", port: envEdge!.httpsPort, path: "/env", servername: "b.test", headers: { host: "b.test" }, ca: pki.caPem, agent: false, timeout: 5000 }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        })
        .on("error", reject);
    });
    expect(r).toBe(200);
    expect(await envEdge.errors()).toEqual([]);
  });

  it("fails closed when the variable is not set: that name's handshakes are refused, the log says why, the others work", async () => {
    envEdge = await bootTlsEdge(envPolicy());
    await expect(connect("b.test", envEdge.httpsPort)).rejects.toThrow();
    const s = await connect("a.test", envEdge.httpsPort);
    expect(s.authorized).toBe(true);
    s.end();
    const errors = await envEdge.errors();
    expect(errors.join("\n")).toContain("the environment variable EDGE_B_CERT (path of the certificate) is not set");
    expect(luaErrors(errors).filter((l) => !/tls: certificate 0/.test(l))).toEqual([]);
  });

  it("refuses a key that is not the certificate's at the handshake", async () => {
    envEdge = await bootTlsEdge(envPolicy(), { env: { EDGE_B_CERT: b.cert, EDGE_B_KEY: a.key } });
    await expect(connect("b.test", envEdge.httpsPort)).rejects.toThrow();
    expect((await envEdge.errors()).join("\n")).toMatch(/tls: cannot set the private key of certificate 0/);
  });
});

describe("session tickets shared by ticket key files", () => {
  const edges: TlsEdge[] = [];
  let keyFile: string;
  let cert: { cert: string; key: string };

  beforeAll(async () => {
    pki = await makePki();
    cert = await pki.issue("a", ["a.test"]);
    keyFile = `${pki.dir}/ticket.key`;
    await writeFile(keyFile, randomBytes(80));
    origin = await startMockOrigin();
  });
  afterAll(async () => {
    for (const e of edges) await e.stop();
    await origin?.close();
    await pki?.remove();
  });

  const boot = async (tickets: true | string[]) => {
    const e = await bootTlsEdge(policy(origin, { serverNames: ["a.test"], tls: { certificates: [{ certificate: cert.cert, key: cert.key }], sessions: { tickets, cacheSize: "0" } } }));
    edges.push(e);
    return e;
  };
  const connect = (port: number, session?: Buffer) =>
    new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ host: "127.0.0.1", port, ca: pki.caPem, servername: "a.test", maxVersion: "TLSv1.2", session }, () => resolve(s));
      s.setTimeout(5000, () => s.destroy(new Error("handshake timed out")));
      s.once("error", reject);
    });

  it("a ticket from one node resumes on another node with the same key file, not on one with its own key", async () => {
    const [one, two, own] = [await boot([keyFile]), await boot([keyFile]), await boot(true)];
    const first = await connect(one.httpsPort);
    const ticket = first.getSession()!;
    first.end();
    const other = await connect(two.httpsPort, ticket);
    expect(other.isSessionReused()).toBe(true);
    other.end();
    const stranger = await connect(own.httpsPort, ticket);
    expect(stranger.isSessionReused()).toBe(false);
    stranger.end();
    for (const e of edges) expect(await e.errors()).toEqual([]);
  });
});
