/**
 * The TLS checks and what they lower to: one test per diagnostic (with the field it names), the nginx
 * directives of each option, and line:col for a YAML policy. The certificates are made by `openssl` in a
 * temp folder; the edges that use them run in tls-http.test.ts and tls-origin.test.ts.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { compile, compileFile } from "../../src/compile.js";
import type { Policy, Tls } from "../../src/policy/types.js";
import { makePki, type Issued, type Pki } from "../support/tls.js";
import { diagnostics, policy } from "../support/policy.js";
import { buildForTest } from "../support/edge.js";

let pki: Pki;
let a: Issued;
let b: Issued;

const tlsPolicy = (tls: Partial<Tls> & Pick<Tls, "certificates">, extra: Partial<Policy> = {}) =>
  ({ ...policy("127.0.0.1:3000"), listen: { http: 8080, https: { port: 8443 } }, serverNames: ["a.test", "www.a.test", "b.test"], tls, ...extra }) as Policy;

const both = () => [
  { certificate: a.cert, key: a.key },
  { certificate: b.cert, key: b.key },
];

const conf = (p: Policy) => {
  const r = compile(p, { target: "nginx-lua" });
  if (!r.bundle) throw new Error(JSON.stringify(r.diagnostics));
  return r.bundle.files.get("nginx.conf")!;
};

const messageOf = (p: Policy, code: string) => compile(p).diagnostics.find((d) => d.code === code)?.message;

describe("tls checks and lowering", () => {
  beforeAll(async () => {
    pki = await makePki();
    a = await pki.issue("a", ["a.test", "www.a.test"]);
    b = await pki.issue("b", ["b.test"]);
  });
  afterAll(async () => {
    await pki?.remove();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("compiles two certificates with no diagnostic", () => {
    expect(diagnostics(tlsPolicy({ certificates: both() }))).toEqual([]);
  });

  it("CDN6001/6002: listen.https and tls go together", () => {
    expect(diagnostics({ ...policy("127.0.0.1:3000"), listen: { https: { port: 8443 } } })).toEqual(["CDN6001 /listen/https"]);
    expect(diagnostics({ ...policy("127.0.0.1:3000"), tls: { certificates: [{ certificate: a.cert, key: a.key }] } })).toEqual(["CDN6002 /tls"]);
  });

  it("CDN6003: HTTPS and HTTP cannot share a port", () => {
    expect(diagnostics(tlsPolicy({ certificates: both() }, { listen: { http: 8443, https: { port: 8443 } } }))).toEqual(["CDN6003 /listen/https/port"]);
    expect(diagnostics(tlsPolicy({ certificates: both() }, { listen: { http: 443, https: {} } }))).toEqual(["CDN6003 /listen/https/port"]);
  });

  it("checks the HTTPS listen address", () => {
    expect(diagnostics(tlsPolicy({ certificates: both() }, { listen: { https: { address: "999.1.1.1" } } }))).toEqual(["CDN2064 /listen/https/address"]);
  });

  it("CDN6004: a missing file, or a directory, names the field", () => {
    const p = tlsPolicy({ certificates: [{ certificate: join(pki.dir, "nope.pem"), key: pki.dir }, { certificate: b.cert, key: b.key }] });
    expect(diagnostics(p)).toEqual(["CDN6004 /tls/certificates/0/certificate", "CDN6004 /tls/certificates/0/key"]);
    expect(messageOf(p, "CDN6004")).toContain("nope.pem does not exist");
  });

  it("CDN6005/6006: a key given as the certificate, a certificate given as the key", () => {
    expect(diagnostics(tlsPolicy({ certificates: [{ certificate: a.key, key: a.cert }, { certificate: b.cert, key: b.key }] }))).toEqual([
      "CDN6005 /tls/certificates/0/certificate",
      "CDN6006 /tls/certificates/0/key",
    ]);
  });

  it("CDN6007: a key that is not the certificate's", () => {
    const p = tlsPolicy({ certificates: [{ certificate: a.cert, key: b.key }, { certificate: b.cert, key: b.key }] });
    expect(diagnostics(p)).toEqual(["CDN6007 /tls/certificates/0/key"]);
  });

  it("CDN6008: an expired certificate (the clock moved 60 days on)", () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + 60 * 86_400_000);
    const p = tlsPolicy({ certificates: both() });
    expect(diagnostics(p)).toEqual(["CDN6008 /tls/certificates/0/certificate", "CDN6008 /tls/certificates/1/certificate"]);
    expect(messageOf(p, "CDN6008")).toMatch(/expired on/);
  });

  it("CDN6009: a certificate that expires within 14 days is a warning", () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + 20 * 86_400_000);
    expect(diagnostics(tlsPolicy({ certificates: both() }), "severity code path")).toEqual([
      "warning CDN6009 /tls/certificates/0/certificate",
      "warning CDN6009 /tls/certificates/1/certificate",
    ]);
  });

  it("CDN6010: a certificate covering none of the server names says which names it has and which are wanted", () => {
    const p = tlsPolicy({ certificates: [{ certificate: b.cert, key: b.key }] }, { serverNames: ["a.test"] });
    expect(diagnostics(p)).toEqual(["CDN6010 /tls/certificates/0/certificate", "CDN6011 /serverNames/0"]);
    expect(messageOf(p, "CDN6010")).toContain("is for b.test, none of serverNames (a.test)");
  });

  it("CDN6011: a server name no certificate covers goes to the first certificate, with a warning", () => {
    const p = tlsPolicy({ certificates: both() }, { serverNames: ["a.test", "b.test", "c.test"] });
    expect(diagnostics(p, "severity code path")).toEqual(["warning CDN6011 /serverNames/2"]);
    expect(conf(p)).toMatch(/server_name a\.test c\.test;\s+ssl_certificate "[^"]+\/a\.pem";/);
  });

  it("CDN6012/6013: a certificate's own names must be server names, each given once", () => {
    const p = tlsPolicy({
      certificates: [
        { certificate: a.cert, key: a.key, serverNames: ["a.test", "nope.test"] },
        { certificate: b.cert, key: b.key, serverNames: ["b.test", "a.test"] },
      ],
    });
    expect(diagnostics(p)).toEqual(["CDN6012 /tls/certificates/0/serverNames/1", "CDN6013 /tls/certificates/1/serverNames/1"]);
  });

  it("CDN6014: several certificates need server names", () => {
    expect(diagnostics(tlsPolicy({ certificates: both() }, { serverNames: undefined }))).toEqual(["CDN6014 /tls/certificates"]);
  });

  it("CDN6015/6016: env() paths are checked only when nginx starts, and need their names when there are several", () => {
    const p = tlsPolicy({ certificates: [{ certificate: a.cert, key: a.key }, { certificate: { env: "B_CERT" }, key: { env: "B_KEY" } }] });
    expect(diagnostics(p, "severity code path")).toEqual([
      "warning CDN6016 /tls/certificates/1/certificate",
      "warning CDN6016 /tls/certificates/1/key",
      "error CDN6015 /tls/certificates/1/serverNames",
    ]);
    expect(messageOf(p, "CDN6016")).toMatch(/checked only when nginx starts/);
  });

  it("CDN6017: a ticket key file must hold 80 (or 48) bytes", async () => {
    const good = join(pki.dir, "ticket.key");
    const bad = join(pki.dir, "ticket.bad");
    await writeFile(good, Buffer.alloc(80, 7));
    await writeFile(bad, "short");
    expect(diagnostics(tlsPolicy({ certificates: both(), sessions: { tickets: [good, bad] } }))).toEqual(["CDN6017 /tls/sessions/tickets/1"]);
    expect(conf(tlsPolicy({ certificates: both(), sessions: { tickets: [good] } }))).toContain(`ssl_session_ticket_key "${good}";`);
  });

  it("CDN6018: HSTS preload without its requirements", () => {
    expect(diagnostics(tlsPolicy({ certificates: both(), hsts: { preload: true } }))).toEqual(["CDN6018 /tls/hsts/preload"]);
    expect(diagnostics(tlsPolicy({ certificates: both(), hsts: { preload: true, includeSubDomains: true, maxAge: "730d" } }))).toEqual([]);
  });

  it("CDN6019/6020: OCSP stapling needs a responder in the certificate, and resolver addresses", () => {
    const p = tlsPolicy({ certificates: both(), ocspStapling: { resolvers: ["1.1.1.1", "999.1.1.1"] } });
    expect(diagnostics(p)).toEqual(["CDN6019 /tls/certificates/0/certificate", "CDN6019 /tls/certificates/1/certificate", "CDN6020 /tls/ocspStapling/resolvers/1"]);
    // a name is refused by the schema already
    expect(diagnostics(tlsPolicy({ certificates: both(), ocspStapling: { resolvers: ["dns.example"] } }))).toEqual(["CDN1004 /tls/ocspStapling/resolvers/0"]);
  });

  it("staples OCSP for a certificate that names a responder (and nginx -t takes it)", async () => {
    const o = await pki.issue("ocsp", ["a.test", "www.a.test"], { ocspUrl: "http://127.0.0.1:9/" });
    const p = tlsPolicy({ certificates: [{ certificate: o.cert, key: o.key }, { certificate: b.cert, key: b.key }], ocspStapling: { resolvers: ["127.0.0.1"], verifyWith: pki.caFile } });
    expect(diagnostics(p, "severity code path")).toEqual(["warning CDN6019 /tls/certificates/1/certificate"]);
    const built = await buildForTest({ ...p, listen: { http: 8080, address: "127.0.0.1", https: { port: 8443 } } });
    try {
      expect(built.conf).toMatch(/ssl_certificate "[^"]+\/ocsp\.pem";\s+ssl_certificate_key "[^"]+";\s+ssl_stapling on;\s+resolver 127\.0\.0\.1 valid=300s;\s+resolver_timeout 5s;\s+ssl_stapling_verify on;\s+ssl_trusted_certificate "[^"]+\/ca\.pem";/);
      expect(built.conf.match(/ssl_stapling on;/g)).toHaveLength(1);
    } finally {
      await built.remove();
    }
  });

  it("matches wildcard certificates and wildcard server names", async () => {
    const w = await pki.issue("wild", ["*.w.test"]);
    const p = tlsPolicy({ certificates: [{ certificate: a.cert, key: a.key }, { certificate: w.cert, key: w.key }] }, { serverNames: ["a.test", "*.w.test", "x.w.test", "w.test"] });
    expect(diagnostics(p, "severity code path")).toEqual(["warning CDN6011 /serverNames/3"]);
    expect(conf(p)).toMatch(/server_name \*\.w\.test x\.w\.test;\s+ssl_certificate "[^"]+\/wild\.pem";/);
  });

  it("CDN6025: a cipher list OpenSSL matches nothing in", () => {
    expect(diagnostics(tlsPolicy({ certificates: both(), ciphers: "NOT-A-CIPHER:!ALL" }))).toEqual(["CDN6025 /tls/ciphers"]);
    expect(diagnostics(tlsPolicy({ certificates: both(), ciphers: "ECDHE-ECDSA-AES256-GCM-SHA384" }))).toEqual([]);
  });

  it("CDN6024: a certificate whose names are all taken by an earlier one is never presented", async () => {
    const a2 = await pki.issue("a2", ["a.test"]);
    expect(diagnostics(tlsPolicy({ certificates: [...both(), { certificate: a2.cert, key: a2.key }] }), "severity code path")).toEqual(["warning CDN6024 /tls/certificates/2"]);
  });

  it("CDN6021-6023: origin TLS settings", () => {
    const origin = (tls: object, scheme: "http" | "https" = "https") => ({ ...policy("127.0.0.1:3000"), origins: { app: { servers: [{ address: "127.0.0.1:3000" }], scheme, tls } } });
    expect(diagnostics(origin({ trustedCa: pki.caFile }, "http"), "severity code path")).toEqual(["warning CDN6021 /origins/app/tls"]);
    expect(diagnostics(origin({ clientCertificate: a.cert }))).toEqual(["CDN6022 /origins/app/tls/clientCertificate"]);
    expect(diagnostics(origin({ clientKey: a.key }))).toEqual(["CDN6022 /origins/app/tls/clientKey"]);
    expect(diagnostics(origin({ clientCertificate: a.cert, clientKey: b.key }))).toEqual(["CDN6007 /origins/app/tls/clientKey"]);
    expect(diagnostics(origin({ trustedCa: a.key }))).toEqual(["CDN6005 /origins/app/tls/trustedCa"]);
    expect(diagnostics(origin({ trustedCa: join(pki.dir, "none.pem") }))).toEqual(["CDN6004 /origins/app/tls/trustedCa"]);
    expect(diagnostics(origin({ insecureSkipVerify: true }), "severity code path")).toEqual(["warning CDN6023 /origins/app/tls/insecureSkipVerify"]);
  });

  it("refuses relative paths and a hostile cipher string in the schema", () => {
    expect(diagnostics(tlsPolicy({ certificates: [{ certificate: "cert.pem", key: a.key }] }))[0]).toMatch(/^CDN1\d{3} \/tls\/certificates\/0\/certificate/);
    expect(diagnostics(tlsPolicy({ certificates: both(), ciphers: 'HIGH";\nlisten 1' }))[0]).toMatch(/^CDN1\d{3} \/tls\/ciphers/);
    expect(diagnostics(tlsPolicy({ certificates: [{ certificate: "/etc/$x.pem", key: a.key }] }))[0]).toMatch(/^CDN1\d{3} \/tls\/certificates\/0\/certificate/);
    expect(diagnostics({ ...policy("127.0.0.1:3000"), origins: { app: { servers: [{ address: "127.0.0.1:3000" }], scheme: "https", tls: { trustedCa: '/ca";\nx' } } } })[0]).toMatch(/^CDN1\d{3} \/origins\/app\/tls\/trustedCa/);
  });

  it("gives line:col for a YAML policy", async () => {
    const file = join(pki.dir, "edge.policy.yaml");
    await writeFile(
      file,
      ["name: edge", "listen:", "  https: { port: 8443 }", "serverNames: [a.test]", "origins:", "  app:", "    servers: [{ address: '127.0.0.1:3000' }]", "tls:", "  certificates:", `    - certificate: ${b.cert}`, `      key: ${a.key}`, ""].join("\n"),
    );
    const r = await compileFile(file);
    const d = r.diagnostics.filter((x) => x.severity === "error").map((x) => `${x.code} ${x.path} ${x.line}:${x.col}`);
    expect(d).toEqual(["CDN6007 /tls/certificates/0/key 11:7", "CDN6010 /tls/certificates/0/certificate 10:7"]);
  });

  it("defaults: TLS 1.2/1.3, modern ciphers, session cache, HTTP/2, 308 redirect, no HSTS, no stapling", () => {
    const c = conf(tlsPolicy({ certificates: both() }));
    expect(c).toContain("ssl_protocols TLSv1.2 TLSv1.3;");
    expect(c).toContain('ssl_ciphers "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";');
    expect(c).toContain("ssl_session_cache shared:cdn_tls:10m;");
    expect(c).toContain("ssl_session_timeout 1h;");
    expect(c).toContain("ssl_session_tickets on;");
    expect(c.match(/listen 8443 ssl http2;/g)).toHaveLength(2);
    expect(c).toContain("listen 8443 ssl http2 default_server;");
    expect(c).toContain('return 308 "https://$host:8443$request_uri";');
    expect(c).not.toContain("Strict-Transport-Security");
    expect(c).not.toContain("ssl_stapling");
  });

  it("options: TLS 1.3 only, no HTTP/2, no session cache or tickets, 301 on port 443, HSTS", () => {
    const p = tlsPolicy(
      { certificates: both(), protocols: ["TLSv1.3"], sessions: { cacheSize: "0", tickets: false }, redirectHttp: 301, hsts: { maxAge: "365d", includeSubDomains: true, preload: true } },
      { listen: { http: 80, https: { port: 443, http2: false } } },
    );
    const c = conf(p);
    expect(c).toContain("ssl_protocols TLSv1.3;");
    expect(c).toContain("ssl_session_cache off;");
    expect(c).toContain("ssl_session_tickets off;");
    expect(c).toContain("listen 443 ssl;");
    expect(c).not.toContain("http2");
    expect(c).toContain('return 301 "https://$host$request_uri";');
    expect(c).toContain('on "max-age=31536000; includeSubDomains; preload";');
    expect(c.match(/add_header Strict-Transport-Security \$cdn_hsts always;/g)).toHaveLength(2);
  });

  it("redirectHttp: false serves plain HTTP too, in the same servers", () => {
    const c = conf(tlsPolicy({ certificates: both(), redirectHttp: false }));
    expect(c).not.toContain("return 308");
    expect(c).toMatch(/listen 8080;\s+listen 8443 ssl http2;\s+server_name a\.test www\.a\.test;/);
  });

  it("without server names: one server with the one certificate, no catch-all", () => {
    const c = conf(tlsPolicy({ certificates: [{ certificate: a.cert, key: a.key }] }, { serverNames: undefined }));
    expect(c.match(/ssl_certificate /g)).toHaveLength(1);
    expect(c).not.toContain("ssl_reject_handshake");
  });

  it("origin TLS: verification on by default with the system CA bundle, SNI name from the servers' DNS name", () => {
    const c = conf({ ...policy("127.0.0.1:3000"), origins: { app: { servers: [{ address: "app.internal:443" }], scheme: "https" } } } as Policy);
    expect(c).toContain("proxy_ssl_verify on;");
    expect(c).toContain('proxy_ssl_trusted_certificate "/etc/ssl/certs/ca-certificates.crt";');
    expect(c).toContain("proxy_ssl_verify_depth 3;");
    expect(c).toContain('proxy_ssl_name "app.internal";');
    expect(c).toContain("proxy_ssl_server_name on;");
  });

  it("origin TLS through rules: the default pool's settings, a warning when a routed pool has others", () => {
    const routed = (tls?: object, scheme: "http" | "https" = "http") =>
      compile({
        name: "o",
        origins: { app: { servers: [{ address: "127.0.0.1:3000" }], scheme }, img: { servers: [{ address: "127.0.0.1:3001" }], scheme: "https", hostHeader: "img.test", ...(tls ? { tls } : {}) } },
        defaultOrigin: "app",
        rules: [{ name: "img", when: { path: { prefix: "/img/" } }, then: { origin: "img" } }],
      });
    const plain = routed();
    expect(plain.diagnostics).toEqual([]);
    const c = plain.bundle!.files.get("nginx.conf")!;
    expect(c).toContain("proxy_ssl_name $cdn_upstream_host;");
    expect(c).toContain("proxy_ssl_verify on;");
    const custom = routed({ trustedCa: pki.caFile });
    expect(custom.diagnostics.map((d) => `${d.severity} ${d.code} ${d.path}`)).toEqual(["warning CDN5014 /origins/img"]);
    expect(custom.diagnostics[0]!.message).toMatch(/its tls will not apply/);
  });

  it("origin TLS: keepalive timeout and requests, and the retry budget, are settable", () => {
    const c = conf({ ...policy("127.0.0.1:3000"), origins: { app: { servers: [{ address: "127.0.0.1:3000" }], keepaliveTimeout: "30s", keepaliveRequests: 500, retryTimeout: "3s" } } } as Policy);
    expect(c).toContain("keepalive_timeout 30s;");
    expect(c).toContain("keepalive_requests 500;");
    expect(c).toContain("proxy_next_upstream_timeout 3s;");
  });
});
