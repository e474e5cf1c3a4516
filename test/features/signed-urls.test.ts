import { createHmac } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootEdge, buildForTest, nginxBinary, type Edge } from "../support/edge.js";
import { freePort, startBundle } from "../../src/runtime/nginx.js";
import { startMockOrigin, type MockOrigin } from "../support/mock-origin.js";
import { policy } from "../support/policy.js";
import { http, luaErrors } from "../support/http.js";
import { signPath } from "../../src/sign.js";
import type { SignedUrls } from "../../src/policy/types.js";

interface Vector {
  name: string;
  policy: string;
  request: string;
  expect: 200 | 403 | 410;
  originSees?: string;
}
const fixtures = JSON.parse(await readFile(join(import.meta.dirname, "..", "fixtures", "signed-urls", "vectors.json"), "utf8")) as {
  secret: string;
  policies: Record<string, Omit<SignedUrls, "secret">>;
  vectors: Vector[];
};
const SECRET = fixtures.secret;
const future = () => Math.floor(Date.now() / 1000) + 600;

let origin: MockOrigin;
const edges: Record<string, Edge> = {};

const signedPolicy = (name: string, gate: Omit<SignedUrls, "secret">) =>
  policy(origin, { name, cache: {}, health: {}, purge: { allow: ["127.0.0.1"] }, signedUrls: { ...gate, secret: { env: "SIGNED_URL_KEY" } } });

describe("signed URLs gate", () => {
  beforeAll(async () => {
    origin = await startMockOrigin();
    origin.setDefault({ body: "file", headers: { "cache-control": "max-age=600" } });
    for (const [name, gate] of Object.entries(fixtures.policies)) {
      edges[name] = await bootEdge(signedPolicy(`signed-${name}`, gate), { env: { SIGNED_URL_KEY: SECRET } });
    }
  });
  afterAll(async () => {
    for (const e of Object.values(edges)) {
      expect(luaErrors(await e.errors())).toEqual([]);
      await e.stop();
    }
    await origin?.close();
  });

  describe("shared vectors (the same file src/sign.ts is tested against)", () => {
    for (const v of fixtures.vectors) {
      it(`${v.policy}: ${v.name} -> ${v.expect}`, async () => {
        origin.reset();
        origin.setDefault({ body: "file", headers: { "cache-control": "no-store" } });
        const r = await http(edges[v.policy]!, v.request);
        expect(r.status).toBe(v.expect);
        if (v.expect === 200) {
          expect(origin.requests.length).toBe(1);
          expect(origin.requests[0]!.url).toBe(v.originSees);
        } else {
          expect(origin.requests.length).toBe(0);
        }
      });
    }
  });

  it("removes the signature parameters before the cache key: differently signed URLs share one cache entry", async () => {
    origin.reset();
    origin.setDefault({ body: "file", headers: { "cache-control": "max-age=600" } });
    const edge = edges["hex"]!;
    const a = signPath({ path: "/downloads/shared.bin?v=1", expires: future(), key: SECRET });
    const b = signPath({ path: "/downloads/shared.bin?v=1", expires: future() + 60, key: SECRET });
    const c = signPath({ path: "/downloads/shared.bin?v=1", expires: future(), key: SECRET, ip: "127.0.0.1" });
    expect(new Set([a, b, c]).size).toBe(3);
    const replies = [await http(edge, a), await http(edge, b), await http(edge, c)];
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(replies.map((r) => r.headers["x-cache"])).toEqual(["MISS", "HIT", "HIT"]);
    expect(origin.hits("/downloads/shared.bin")).toBe(1);
    expect(origin.requests[0]!.url).toBe("/downloads/shared.bin?v=1");
  });

  it("answers 403 to an unsigned request for a cached object", async () => {
    expect((await http(edges["hex"]!, "/downloads/shared.bin?v=1")).status).toBe(403);
  });

  it("refuses a URL signed with another key", async () => {
    const u = signPath({ path: "/downloads/a", expires: future(), key: "another key" });
    expect((await http(edges["hex"]!, u)).status).toBe(403);
  });

  it("accepts a URL until its expiry second and refuses it after", async () => {
    const edge = edges["hex"]!;
    const now = Math.floor(Date.now() / 1000);
    expect((await http(edge, signPath({ path: "/downloads/edge", expires: now + 2, key: SECRET }))).status).toBe(200);
    expect((await http(edge, signPath({ path: "/downloads/edge", expires: now - 2, key: SECRET }))).status).toBe(410);
  });

  it("does not gate paths outside its scope, nor the health and purge endpoints", async () => {
    const edge = edges["hex"]!;
    expect((await http(edge, "/index.html")).status).toBe(200);
    expect((await http(edge, "/index.html?expires=1&signature=zz")).status).toBe(200);
    expect((await http(edge, "/health")).status).toBe(200);
    const p = await http(edge, "/__purge", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ url: "/x" }) });
    // the purge handler answers (it refuses: this policy gives purge no credentials), not the gate
    expect(p.status).toBe(403);
    expect(JSON.parse(p.body)).toEqual({ ok: false, error: "forbidden" });
  });

  it("binds to the client IP: the HMAC covers $remote_addr", async () => {
    const edge = edges["hex"]!;
    const exp = future();
    const mac = createHmac("sha256", SECRET).update(`/downloads/ip\n${exp}\n\n127.0.0.1`).digest("hex");
    expect((await http(edge, `/downloads/ip?expires=${exp}&signature=${mac}`)).status).toBe(200);
    const other = createHmac("sha256", SECRET).update(`/downloads/ip\n${exp}\n\n127.0.0.2`).digest("hex");
    expect((await http(edge, `/downloads/ip?expires=${exp}&signature=${other}`)).status).toBe(403);
  });
});

describe("signed URLs gate: IPv6 clients", () => {
  it("binds a URL to an IPv6 client address", async () => {
    const o = await startMockOrigin();
    const listenPort = await freePort();
    const { dir, remove } = await buildForTest({
      name: "signed-v6",
      listen: { http: listenPort, address: "[::1]" },
      origins: { app: { servers: [{ address: o.address }] } },
      signedUrls: { paths: ["/d/*"], secret: { env: "SIGNED_URL_KEY" }, requireIp: true },
    });
    const edge = await startBundle(dir, { port: listenPort, host: "::1", bin: await nginxBinary(), env: { SIGNED_URL_KEY: SECRET } });
    try {
      expect((await http(edge, signPath({ path: "/d/v6", expires: future(), key: SECRET, ip: "::1" }))).status).toBe(200);
      expect((await http(edge, signPath({ path: "/d/v6", expires: future(), key: SECRET, ip: "127.0.0.1" }))).status).toBe(403);
      expect((await http(edge, signPath({ path: "/d/v6", expires: future(), key: SECRET }))).status).toBe(403);
      expect(o.requests.map((r) => r.url)).toEqual(["/d/v6"]);
      const errs = (await edge.errorLog()).split("\n").filter((l) => /\[(error|crit|alert|emerg)\]/.test(l));
      expect(luaErrors(errs)).toEqual([]);
    } finally {
      await edge.stop();
      await remove();
      await o.close();
    }
  });
});

describe("signed URLs gate: misconfiguration at start", () => {
  it("answers 500 when the key variable is not set, and logs why", async () => {
    const o = await startMockOrigin();
    const e = await bootEdge({ name: "signed-nokey", origins: { app: { servers: [{ address: o.address }] } }, signedUrls: { paths: ["/d/*"], secret: { env: "SIGNED_UNSET_KEY" } } });
    try {
      expect((await http(e, "/d/x?expires=1&signature=00")).status).toBe(500);
      expect((await http(e, "/other")).status).toBe(200);
      expect(o.hits("/d/x")).toBe(0);
      expect((await e.errors()).join("\n")).toContain("SIGNED_UNSET_KEY");
    } finally {
      await e.stop();
      await o.close();
    }
  });
});

describe("signed URLs gate: validation", () => {
  const codes = async (signedUrls: unknown) => {
    const { compile } = await import("../../src/compile.js");
    const { diagnostics } = compile({ name: "v", listen: { http: 8080 }, origins: { app: { servers: [{ address: "127.0.0.1:3000" }] } }, signedUrls });
    return diagnostics.map((d) => `${d.code} ${d.path}`);
  };

  it("accepts a scoped gate", async () => {
    expect(await codes({ paths: ["/downloads/*"], secret: { env: "K" }, encoding: "base64url" })).toEqual([]);
  });

  it("CDN3080: the same parameter for expiry and signature", async () => {
    expect(await codes({ paths: ["/d/*"], secret: { env: "K" }, expiresParam: "s", signatureParam: "s" })).toEqual(["CDN3080 /signedUrls/signatureParam"]);
  });

  it("CDN3081 (warning): a gate on every path", async () => {
    expect(await codes({ secret: { env: "K" } })).toEqual(["CDN3081 /signedUrls"]);
  });

  it("refuses a missing secret, an unknown encoding and bad parameter names in the schema", async () => {
    expect((await codes({ paths: ["/d/*"] })).length).toBeGreaterThan(0);
    expect((await codes({ paths: ["/d/*"], secret: { env: "K" }, encoding: "base32" }))[0]).toMatch(/\/signedUrls\/encoding/);
    expect((await codes({ paths: ["/d/*"], secret: { env: "K" }, expiresParam: "a&b" }))[0]).toMatch(/\/signedUrls\/expiresParam/);
  });
});
