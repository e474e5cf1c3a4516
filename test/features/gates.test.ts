import { createHmac } from "node:crypto";
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Policy } from "../../src/policy/types.js";
import { env } from "../../src/policy/env.js";
import { signPath } from "../../src/sign.js";
import { bootEdge, waitLogged, type Edge } from "../support/edge.js";
import { http, luaErrors } from "../support/http.js";
import { sleep } from "../support/wait.js";
import { startMockOrigin, type MockOrigin } from "../support/mock-origin.js";

/** End-to-end tests that span several access gates (and the cache) on one booted bundle. */

const EDGE_SECRET = "gates-edge-secret-0123456789";
const JWT_SECRET = "gates-jwt-secret-0123456789abcdef";
const SIGN_KEY = "gates-sign-key-0123456789abcdef";
const ENV = { GATES_EDGE_SECRET: EDGE_SECRET, GATES_JWT_SECRET: JWT_SECRET, GATES_SIGN_KEY: SIGN_KEY };

const b64u = (x: string | Buffer) => Buffer.from(x).toString("base64url");
function token(sub: string, extra: object = {}): string {
  const input = `${b64u(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${b64u(JSON.stringify({ sub, exp: Math.floor(Date.now() / 1000) + 600, ...extra }))}`;
  return `${input}.${b64u(createHmac("sha256", JWT_SECRET).update(input).digest())}`;
}
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

let origin: MockOrigin;
const edges: Edge[] = [];
async function boot(policy: Omit<Policy, "listen" | "origins" | "name">): Promise<Edge> {
  const e = await bootEdge({ name: "gates", origins: { app: { servers: [{ address: origin.address }] } }, ...policy }, { env: ENV });
  edges.push(e);
  return e;
}

beforeAll(async () => {
  origin = await startMockOrigin();
  origin.setDefault((req) => ({ headers: { "content-type": "text/plain" }, body: `ok ${req.headers["x-user"] ?? "-"}` }));
});
afterAll(async () => {
  for (const e of edges) {
    expect(luaErrors(await e.errors())).toEqual([]);
    await e.stop();
  }
  await origin.close();
});

/** A GET sent from a chosen loopback source address (the whole 127/8 is local). */
function getFrom(e: Edge, path: string, localAddress: string): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(e.baseUrl + path, { localAddress, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** Statuses of n sequential requests. */
async function statuses(e: Edge, path: string, headers: Record<string, string>, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await http(e, path, { headers })).status);
  return out;
}

describe("rate limit keyed by a JWT claim, with the JWT gate", () => {
  let e: Edge;
  beforeAll(async () => {
    e = await boot({
      jwt: { algorithms: ["HS256"], secret: env("GATES_JWT_SECRET"), paths: ["/private/*"], forwardClaims: { sub: "X-User" } },
      // 3 requests per bucket (burst 2 + 1), then 429 for a minute
      rateLimit: [{ name: "per-user", rate: "1r/m", burst: 2, key: { claim: "sub" } }],
    });
  });

  it("gives two tokens with different subjects separate buckets", async () => {
    expect(await statuses(e, "/private/a", bearer(token("alice")), 4)).toEqual([200, 200, 200, 429]);
    expect(await statuses(e, "/private/a", bearer(token("bob")), 4)).toEqual([200, 200, 200, 429]);
    // another token of the same subject shares the subject's (empty) bucket
    const again = await http(e, "/private/b", { headers: bearer(token("alice", { session: 2 })) });
    expect(again.status).toBe(429);
    expect(again.headers["retry-after"]).toBeDefined();
  });

  it("falls back to the client address for anonymous requests where no token is required", async () => {
    // alice's and bob's buckets are empty, the client address' is not
    expect(await statuses(e, "/public/x", {}, 4)).toEqual([200, 200, 200, 429]);
    // still refused by the JWT gate (401) before the claim-keyed limit on the private path
    expect((await http(e, "/private/a")).status).toBe(401);
  });
});

describe("rate limit keyed by ip, behind a trusted proxy", () => {
  it("counts the forwarded client address: two forwarded addresses, two buckets; the proxy's own, a third", async () => {
    const e = await boot({
      ipRules: { trustedProxies: ["127.0.0.1"], deny: ["203.0.113.0/24"] },
      rateLimit: [{ name: "per-ip", rate: "1r/m", burst: 1 }],
    });
    const from = (ip: string) => ({ "x-forwarded-for": `${ip}, 127.0.0.1` });
    expect(await statuses(e, "/x", from("198.51.100.1"), 3)).toEqual([200, 200, 429]);
    expect(await statuses(e, "/x", from("198.51.100.2"), 3)).toEqual([200, 200, 429]);
    expect(await statuses(e, "/x", {}, 3)).toEqual([200, 200, 429]);
    // a denied forwarded address is refused by the IP gate, not counted
    expect((await http(e, "/x", { headers: from("203.0.113.9") })).status).toBe(403);
    // a client cannot pass for the cache's own refresh (which takes no token) with a made-up marker
    expect(await statuses(e, "/x", { ...from("198.51.100.3"), "x-cdn-refresh": "0123456789abcdef0123456789abcdef" }, 3)).toEqual([200, 200, 429]);
  });

  it("binds IP-bound signed URLs to the forwarded client address", async () => {
    const e = await boot({
      ipRules: { trustedProxies: ["127.0.0.1"] },
      signedUrls: { secret: env("GATES_SIGN_KEY"), requireIp: true },
    });
    const url = signPath({ path: "/f.zip", expires: Math.floor(Date.now() / 1000) + 600, key: SIGN_KEY, ip: "198.51.100.1" });
    expect((await http(e, url, { headers: { "x-forwarded-for": "198.51.100.1" } })).status).toBe(200);
    const other = await http(e, url, { headers: { "x-forwarded-for": "198.51.100.2" } });
    expect([other.status, other.body.trim()]).toEqual([403, "forbidden by signed-urls"]);
    expect((await http(e, url)).status).toBe(403);
  });
});

describe("every gate on one bundle, in order", () => {
  let e: Edge;
  const secret = { "x-origin-secret": EDGE_SECRET };
  const from = (ip: string) => ({ ...secret, "x-forwarded-for": ip });
  const attack = "/x?q=1'%20UNION%20SELECT%20password%20FROM%20users--";
  beforeAll(async () => {
    e = await boot({
      originSecret: { secret: env("GATES_EDGE_SECRET") },
      ipRules: { trustedProxies: ["127.0.0.1"], deny: ["198.51.100.66"] },
      rateLimit: [{ name: "per-ip", rate: "1r/m", burst: 2 }],
      waf: {},
      jwt: { algorithms: ["HS256"], secret: env("GATES_JWT_SECRET"), paths: ["/private/*"] },
      signedUrls: { secret: env("GATES_SIGN_KEY"), paths: ["/downloads/*"] },
    });
  });

  it("secret first: without it even a denied address with an attack gets the secret gate's 403", async () => {
    const r = await http(e, attack, { headers: { "x-forwarded-for": "198.51.100.66" } });
    expect([r.status, r.body.trim()]).toEqual([403, "forbidden by origin-secret"]);
  });

  it("then IP rules: a denied address with an attack gets the IP gate's 403", async () => {
    const r = await http(e, attack, { headers: from("198.51.100.66") });
    expect([r.status, r.body.trim()]).toEqual([403, "forbidden by ip-rules"]);
  });

  it("then the rate limit: over the limit, an attack and a missing token are 429", async () => {
    expect(await statuses(e, "/x", from("192.0.2.10"), 3)).toEqual([200, 200, 200]);
    const r = await http(e, attack, { headers: from("192.0.2.10") });
    expect(r.status).toBe(429);
    expect(r.headers["retry-after"]).toBeDefined();
    expect((await http(e, "/private/a", { headers: from("192.0.2.10") })).status).toBe(429);
  });

  it("then the WAF: an attack on the JWT path without a token gets the WAF's 403", async () => {
    const r = await http(e, "/private" + attack, { headers: from("192.0.2.11") });
    expect([r.status, r.body.trim()]).toEqual([403, "forbidden by waf"]);
  });

  it("then JWT: a missing token on the JWT path is 401 with a challenge; a valid one passes", async () => {
    const r = await http(e, "/private/a", { headers: from("192.0.2.12") });
    expect(r.status).toBe(401);
    expect(r.headers["www-authenticate"]).toMatch(/^Bearer/);
    expect((await http(e, "/private/a", { headers: { ...from("192.0.2.12"), ...bearer(token("carol")) } })).status).toBe(200);
  });

  it("then signed URLs: a bad signature is 403 from the signed-URL gate; a valid one passes", async () => {
    const expires = Math.floor(Date.now() / 1000) + 600;
    const good = signPath({ path: "/downloads/f.zip", expires, key: SIGN_KEY });
    const bad = good.replace(/signature=([0-9a-f])/, (_m, c: string) => `signature=${c === "0" ? "1" : "0"}`);
    const r = await http(e, bad, { headers: from("192.0.2.13") });
    expect(r.status).toBe(403);
    expect(r.body.trim()).toBe("forbidden by signed-urls");
    expect((await http(e, good, { headers: from("192.0.2.13") })).status).toBe(200);
  });
});

describe("the cache's background refresh behind the gates", () => {
  it("passes the origin secret and JWT gates, reaches the origin once, and takes no rate-limit token", async () => {
    origin.route("/private/swr", (req, n) => ({
      headers: { "content-type": "text/plain", "cache-control": `max-age=${n > 1 ? 60 : 1}, stale-while-revalidate=30` },
      body: `v${n} ${req.headers["x-user"] ?? "-"}`,
    }));
    const e = await boot({
      cache: { ttl: { "200": "1m" } },
      headers: { cacheStatus: "X-Cache" },
      originSecret: { secret: env("GATES_EDGE_SECRET") },
      // the token comes in a cookie: a request with Authorization is not served from the cache
      jwt: { algorithms: ["HS256"], secret: env("GATES_JWT_SECRET"), paths: ["/private/*"], cookie: "tok", forwardClaims: { sub: "X-User" } },
      // 3 tokens: exactly the three client requests below
      rateLimit: [{ name: "per-ip", rate: "1r/m", burst: 2, headers: true }],
    });
    const headers = { "x-origin-secret": EDGE_SECRET, cookie: `tok=${token("dave")}` };
    const first = await http(e, "/private/swr", { headers });
    expect([first.status, first.body, first.headers["x-cache"]]).toEqual([200, "v1 dave", "MISS"]);
    await sleep(1300);
    const stale = await http(e, "/private/swr", { headers });
    expect([stale.status, stale.body, stale.headers["x-cache"]]).toEqual([200, "v1 dave", "STALE"]);
    await waitLogged(e, "/private/swr", 3); // the two client requests and the finished refresh
    // the refresh went through the secret and JWT gates (the origin saw the forwarded claim) exactly once
    expect(origin.hits("/private/swr")).toBe(2);
    const refresh = origin.requests.filter((r) => r.path === "/private/swr")[1]!;
    expect(refresh.headers["x-user"]).toBe("dave");
    expect(refresh.headers["x-origin-secret"]).toBeUndefined();
    // the third client request still has its token: the refresh did not take one
    const fresh = await http(e, "/private/swr", { headers });
    expect([fresh.status, fresh.body, fresh.headers["x-cache"]]).toEqual([200, "v2 dave", "HIT"]);
    expect(fresh.headers["ratelimit-remaining"]).toBe("0");
    expect((await http(e, "/private/swr", { headers })).status).toBe(429);
  });

  it("is not refused by IP rules that do not list the edge's own address (the refresh comes from it)", async () => {
    origin.route("/swr-ip", (_req, n) => ({
      headers: { "content-type": "text/plain", "cache-control": `max-age=${n > 1 ? 60 : 1}, stale-while-revalidate=30` },
      body: `v${n}`,
    }));
    // clients come from 127.0.0.2; the edge listens on 127.0.0.1, so its refreshes come from 127.0.0.1
    const e = await boot({ cache: { ttl: { "200": "1m" } }, headers: { cacheStatus: "X-Cache" }, ipRules: { allow: ["127.0.0.2"] } });
    expect((await getFrom(e, "/swr-ip", "127.0.0.1")).status).toBe(403);
    expect((await getFrom(e, "/swr-ip", "127.0.0.2")).body).toBe("v1");
    await sleep(1300);
    const stale = await getFrom(e, "/swr-ip", "127.0.0.2");
    expect([stale.body, stale.headers["x-cache"]]).toEqual(["v1", "STALE"]);
    await waitLogged(e, "/swr-ip", 4); // the three client requests and the finished refresh
    expect(origin.hits("/swr-ip")).toBe(2);
    const fresh = await getFrom(e, "/swr-ip", "127.0.0.2");
    expect([fresh.body, fresh.headers["x-cache"]]).toEqual(["v2", "HIT"]);
    // a client cannot pass for a refresh with a made-up marker
    expect((await http(e, "/swr-ip", { headers: { "x-cdn-refresh": "0123456789abcdef0123456789abcdef" } })).status).toBe(403);
  });

  it("refreshes an object fetched with an IP-bound signed URL (the refresh comes from the edge's address)", async () => {
    origin.route("/dl/swr", (req, n) => ({
      headers: { "content-type": "text/plain", "cache-control": `max-age=${n > 1 ? 60 : 1}, stale-while-revalidate=30` },
      body: `v${n} ${req.url}`,
    }));
    const e = await boot({
      cache: { ttl: { "200": "1m" } },
      headers: { cacheStatus: "X-Cache" },
      signedUrls: { secret: env("GATES_SIGN_KEY"), paths: ["/dl/*"], requireIp: true },
    });
    const url = signPath({ path: "/dl/swr", expires: Math.floor(Date.now() / 1000) + 600, key: SIGN_KEY, ip: "127.0.0.2" });
    expect((await getFrom(e, url, "127.0.0.1")).status).toBe(403);
    expect((await getFrom(e, url, "127.0.0.2")).body).toBe("v1 /dl/swr");
    await sleep(1300);
    expect((await getFrom(e, url, "127.0.0.2")).headers["x-cache"]).toBe("STALE");
    await waitLogged(e, "/dl/swr", 4); // the three client requests and the finished refresh
    expect(origin.hits("/dl/swr")).toBe(2);
    // the refresh reached the origin without the signature parameters and landed on the same cache key
    const fresh = await getFrom(e, url, "127.0.0.2");
    expect([fresh.body, fresh.headers["x-cache"]]).toEqual(["v2 /dl/swr", "HIT"]);
  });
});
