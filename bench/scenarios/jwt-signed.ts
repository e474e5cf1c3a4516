import { createHmac, createSign, generateKeyPairSync } from "node:crypto";
import type { NginxBinary } from "../../src/runtime/nginx.js";
import type { Policy } from "../../src/policy/types.js";
import { startMockOrigin } from "../../test/support/mock-origin.js";
import { signPath } from "../../src/sign.js";
import { bootPolicy, Cleanup, CONNECTIONS, report, SECONDS, wrk } from "../lib.js";

const b64u = (x: string | Buffer) => Buffer.from(x).toString("base64url");

/**
 * Disk-cache HIT of a 1 KiB object with the JWT gate (HS256 and RS256, token in a cookie so the request is
 * cacheable) and with the signed-URL gate, against the same bundle without gates, one worker each.
 */
export async function jwtSignedScenario(bin: NginxBinary): Promise<void> {
  const cleanup = new Cleanup();
  try {
    const origin = await startMockOrigin();
    cleanup.add(() => origin.close());
    origin.setDefault({ headers: { "content-type": "text/plain", "cache-control": "max-age=3600" }, body: "x".repeat(1024) });
    const secret = "bench-secret-0123456789";
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const base: Omit<Policy, "listen"> = {
      name: "bench-gates",
      workers: { processes: 1 },
      origins: { app: { servers: [{ address: origin.address }] } },
      cache: { ttl: { "200": "1h" } },
      accessLog: { format: "off" },
    };
    const env = { BENCH_JWT_SECRET: secret, BENCH_SIGN_KEY: secret };
    const none = await bootPolicy(bin, base, cleanup);
    const hs = await bootPolicy(bin, { ...base, jwt: { algorithms: ["HS256"], secret: { env: "BENCH_JWT_SECRET" }, cookie: "tok", forwardClaims: { sub: "X-User" } } }, cleanup, env);
    const rs = await bootPolicy(bin, { ...base, jwt: { algorithms: ["RS256"], publicKey: { pem: rsa.publicKey.export({ type: "spki", format: "pem" }).toString() }, cookie: "tok" } }, cleanup);
    const su = await bootPolicy(bin, { ...base, signedUrls: { paths: ["/obj*"], secret: { env: "BENCH_SIGN_KEY" } } }, cleanup, env);
    const claims = b64u(JSON.stringify({ sub: "bench", exp: Math.floor(Date.now() / 1000) + 3600 }));
    const hsIn = `${b64u(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${claims}`;
    const hsTok = `${hsIn}.${b64u(createHmac("sha256", secret).update(hsIn).digest())}`;
    const rsIn = `${b64u(JSON.stringify({ alg: "RS256", typ: "JWT" }))}.${claims}`;
    const rsTok = `${rsIn}.${b64u(createSign("RSA-SHA256").update(rsIn).sign(rsa.privateKey))}`;
    const signed = signPath({ path: "/obj", expires: Math.floor(Date.now() / 1000) + 3600, key: secret });
    const results = [
      await wrk("no gates (baseline)", `${none.baseUrl}/obj`),
      await wrk("JWT HS256 (cookie)", `${hs.baseUrl}/obj`, { headers: { cookie: `tok=${hsTok}` } }),
      await wrk("JWT RS256 (cookie)", `${rs.baseUrl}/obj`, { headers: { cookie: `tok=${rsTok}` } }),
      await wrk("signed URL (hex)", `${su.baseUrl}${signed}`),
      await wrk("no gates (baseline, again: noise check)", `${none.baseUrl}/obj`),
    ];
    report(`JWT and signed-URL gates on a disk HIT, 1 KiB, 1 worker each, wrk -c${CONNECTIONS} -d${SECONDS}s (${bin.version}, ${bin.kind})`, results);
    console.log(`  origin requests: ${origin.requests.length} (4 bundles; the caches served the rest)`);
  } finally {
    await cleanup.run();
  }
}
