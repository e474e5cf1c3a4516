/**
 * TLS from the edge to an HTTPS origin, in a real nginx: the origin's certificate is verified by default
 * (refused with 502 when its CA is not trusted, or when it is for another name), served once the CA file is
 * given, accepted blindly only with the loudly named opt-out; mutual TLS with a client certificate.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootEdge, type Edge } from "../support/edge.js";
import { policy } from "../support/policy.js";
import { http, luaErrors } from "../support/http.js";
import { makePki, startHttpsOrigin, type HttpsOrigin, type Issued, type Pki } from "../support/tls.js";
import { compile } from "../../src/compile.js";
import type { OriginTls, Policy } from "../../src/policy/types.js";

let pki: Pki;
let originCert: Issued;
let clientCert: Issued;
let origin: HttpsOrigin;
let mtlsOrigin: HttpsOrigin;

const httpsPolicy = (address: string, tls: OriginTls | undefined, extra: Partial<Policy["origins"][string]> = {}) =>
  policy(address, { origins: { app: { servers: [{ address }], retries: 0, scheme: "https", ...(tls ? { tls } : {}), ...extra } } });

/** Boots an edge for `p`, runs `fn`, checks the error log has no Lua error, stops it. */
async function withEdge(p: ReturnType<typeof httpsPolicy>, fn: (edge: Edge) => Promise<void>): Promise<string[]> {
  const edge = await bootEdge(p);
  try {
    await fn(edge);
    const errors = await edge.errors();
    expect(luaErrors(errors)).toEqual([]);
    return errors;
  } finally {
    await edge.stop();
  }
}

describe("TLS to the origin", () => {
  beforeAll(async () => {
    pki = await makePki();
    originCert = await pki.issue("origin", ["origin.test"]);
    clientCert = await pki.issue("edge-client", ["edge-client.test"]);
    origin = await startHttpsOrigin({ cert: originCert.cert, key: originCert.key });
    mtlsOrigin = await startHttpsOrigin({ cert: originCert.cert, key: originCert.key, clientCa: pki.caFile });
  });
  afterAll(async () => {
    await origin?.close();
    await mtlsOrigin?.close();
    await pki?.remove();
  });

  it("refuses (502) an origin whose CA is not trusted: verification is on by default", async () => {
    const errors = await withEdge(httpsPolicy(origin.address, { serverName: "origin.test" }), async (edge) => {
      expect((await http(edge, "/untrusted")).status).toBe(502);
    });
    expect(errors.join("\n")).toMatch(/upstream SSL certificate verify error/);
    expect(origin.requests.some((r) => r.url === "/untrusted")).toBe(false);
  });

  it("serves once the CA file is given, sending the SNI name", async () => {
    await withEdge(httpsPolicy(origin.address, { serverName: "origin.test", trustedCa: pki.caFile }), async (edge) => {
      const r = await http(edge, "/trusted");
      expect(r.status).toBe(200);
      expect(r.body).toBe("origin /trusted");
    });
    expect(origin.requests.find((r) => r.url === "/trusted")?.servername).toBe("origin.test");
  });

  it("uses hostHeader as the verified name by default, and refuses a certificate for another name", async () => {
    await withEdge(httpsPolicy(origin.address, { trustedCa: pki.caFile }, { hostHeader: "origin.test" }), async (edge) => {
      expect((await http(edge, "/by-host-header")).status).toBe(200);
    });
    const errors = await withEdge(httpsPolicy(origin.address, { trustedCa: pki.caFile, serverName: "other.test" }), async (edge) => {
      expect((await http(edge, "/wrong-name")).status).toBe(502);
    });
    expect(errors.join("\n")).toMatch(/upstream SSL certificate does not match "other\.test"/);
  });

  it("accepts any certificate only with insecureSkipVerify, with a warning", async () => {
    const p = httpsPolicy(origin.address, { insecureSkipVerify: true });
    expect(compile(p).diagnostics.map((d) => `${d.severity} ${d.code} ${d.path}`)).toEqual(["warning CDN6023 /origins/app/tls/insecureSkipVerify"]);
    await withEdge(p, async (edge) => {
      expect((await http(edge, "/insecure")).status).toBe(200);
    });
  });

  it("presents a client certificate to an origin that requires one (mutual TLS)", async () => {
    const errors = await withEdge(httpsPolicy(mtlsOrigin.address, { serverName: "origin.test", trustedCa: pki.caFile }), async (edge) => {
      expect((await http(edge, "/no-client-cert")).status).toBe(502);
    });
    expect(errors.length).toBeGreaterThan(0);
    await withEdge(
      httpsPolicy(mtlsOrigin.address, { serverName: "origin.test", trustedCa: pki.caFile, clientCertificate: clientCert.cert, clientKey: clientCert.key }),
      async (edge) => {
        const r = await http(edge, "/mtls");
        expect(r.status).toBe(200);
        expect(r.body).toBe("origin /mtls");
      },
    );
    expect(mtlsOrigin.requests.find((r) => r.url === "/mtls")?.clientCn).toBe("edge-client.test");
    expect(mtlsOrigin.requests.some((r) => r.url === "/no-client-cert")).toBe(false);
  });
});
