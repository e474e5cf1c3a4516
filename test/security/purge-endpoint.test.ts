/**
 * Security issue 11 §5: the purge endpoint.
 * - Near misses of its path (case, a trailing "/", ";params", an extension, whitespace, encodings, dot
 *   segments) never reach the origin, from any peer, on any host, with any method.
 * - The purge credentials never leave the edge: the token in `Authorization` and the signing headers are
 *   removed from every proxied request (other Authorization values pass untouched).
 * - A signed purge is accepted once per fleet (nodes sharing `redis`), and refused (503) when Redis cannot
 *   say whether another node accepted it; token purges do not depend on Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootEdge, type Edge } from "../support/edge.js";
import { startMockOrigin, type MockOrigin } from "../support/mock-origin.js";
import { http, luaErrors, rawRequest } from "../support/http.js";
import { policy } from "../support/policy.js";
import { startRedis, type RedisServer } from "../support/redis.js";
import { tally } from "../support/tally.js";
import { purgeBody, purgeHeaders, signPurge } from "../../src/purge/client.js";
import { nearMissRegex } from "../../src/features/purge.js";
import type { Policy } from "../../src/policy/types.js";

const TOKEN = "purge-token-7c1d9e0b";
const HMAC = "purge-hmac-3f2a8b61";
const ENV = { PE_TOKEN: TOKEN, PE_HMAC: HMAC };

let origin: MockOrigin;
beforeAll(async () => {
  origin = await startMockOrigin();
});
afterAll(async () => {
  await origin?.close();
});

const purgePolicy = (purge: Policy["purge"], extra: Partial<Policy> = {}) =>
  policy(origin, { name: "purge-sec", cache: {}, health: {}, purge: { token: { env: "PE_TOKEN" }, hmac: { secret: { env: "PE_HMAC" } }, ...purge }, ...extra });

/** Spellings of a path that are not the path but that an origin may read as it (or that carry a credential). */
function nearMisses(path: string): string[] {
  const upper = path.toUpperCase();
  const mixed = [...path].map((c, i) => (i % 2 ? c.toUpperCase() : c)).join("");
  const last = path.slice(-1);
  const cases = [path, upper, mixed];
  const out = new Set<string>();
  for (const p of cases) {
    for (const suffix of ["/", "/x", "//", ";", ";x", ";jsessionid=1", "%20", "%09", "%0b", ".json", ".", "..", "~", ",", "%2F", "%2e", "%3B", "!", "+", "%25", "@", ":"]) out.add(p + suffix);
  }
  for (const p of [upper, mixed]) out.add(p);
  // dot segments and doubled slashes nginx resolves first: they land on the endpoint or a near miss
  out.add(`/x/..${upper}`).add(`/.${upper}/`).add(`/${path}`).add(`${path.slice(0, -1)}%${last.charCodeAt(0).toString(16)}/`);
  return [...out];
}

describe("§5 near misses of the purge path never reach the origin", () => {
  let open: Edge;
  let outside: Edge;
  let custom: Edge;
  beforeAll(async () => {
    open = await bootEdge(purgePolicy({ allow: ["127.0.0.1/32"] }, { serverNames: ["shop.example.com"] }), { env: ENV });
    // the tests' address is outside this edge's allow-list
    outside = await bootEdge(purgePolicy({ allow: ["10.0.0.0/8"] }), { env: ENV });
    custom = await bootEdge(purgePolicy({ allow: ["127.0.0.1/32"], path: "/ops/purge-cache.v1" }), { env: ENV });
  });
  afterAll(async () => {
    await open?.stop();
    await outside?.stop();
    await custom?.stop();
  });

  it("answers every near miss at the edge (any method, any peer, any host), carrying the token or a signature", async () => {
    const t = tally("§5 purge near misses");
    const cases: [Edge, string, string][] = [];
    for (const e of [open, outside]) for (const p of nearMisses("/__purge")) cases.push([e, p, "shop.example.com"]);
    for (const p of nearMisses("/__purge")) cases.push([open, p, "127.0.0.1"]); // the catch-all server of unknown hosts
    for (const p of nearMisses("/ops/purge-cache.v1")) cases.push([custom, p, "localhost"]);
    for (const [e, path, host] of cases) {
      for (const method of ["POST", "GET"]) {
        origin.reset();
        const body = method === "POST" ? purgeBody({ all: true }) : "";
        const head = `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${TOKEN}\r\nX-Purge-Timestamp: 1\r\nX-Purge-Signature: ab\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`;
        const r = await rawRequest(e, head);
        t.refused(r.status !== 0 && r.status < 500 && origin.hits() === 0, `${e === outside ? "outside" : e === custom ? "custom" : "open"} ${host} ${method} ${path}: ${r.status}, origin ${origin.hits()}`);
      }
    }
    // the regex itself: the path as a whole word, any case; longer names are other paths
    const re = new RegExp(nearMissRegex("/__purge"), "i");
    for (const other of ["/__purgeable", "/__purge-x", "/__purge_x", "/__purge2", "/x/__purge"]) t.accepted(!re.test(other), `${other} caught`);
    for (const e of [open, outside, custom]) expect(luaErrors(await e.errors())).toEqual([]);
    t.done();
  });

  it("still serves other paths, and the endpoint itself still works from an allowed peer", async () => {
    origin.reset();
    expect((await http(open, "/__purgeable", { headers: { host: "shop.example.com" } })).status).toBe(200);
    const r = await http(open, "/__purge", { method: "POST", headers: { host: "shop.example.com", ...purgeHeaders({ token: TOKEN }, "/__purge", purgeBody({ all: true })) }, body: purgeBody({ all: true }) });
    expect(r.status).toBe(200);
    expect((await http(outside, "/__purge", { method: "POST", headers: { authorization: `Bearer ${TOKEN}` }, body: purgeBody({ all: true }) })).status).toBe(403);
  });
});

describe("§5 the purge credentials never leave the edge", () => {
  let edge: Edge;
  beforeAll(async () => {
    edge = await bootEdge(purgePolicy({ allow: ["10.0.0.0/8"] }, { rules: [{ name: "api", when: { path: { prefix: "/api/" } }, then: { cache: { bypass: true } } }] }), { env: ENV });
  });
  afterAll(async () => {
    await edge?.stop();
  });

  it("removes the token and the signing headers from every proxied request, and nothing else", async () => {
    const t = tally("§5 purge credential stripped");
    const carriers = [`Bearer ${TOKEN}`, `bearer ${TOKEN}`, `BEARER ${TOKEN}`, `Bearer  ${TOKEN}`, `Bearer ${TOKEN} `];
    const paths = ["/", "/page", "/api/x", "/__purge/", "/static/a.css?v=1", "/%5F%5Fpurge2"];
    for (const path of paths) {
      for (const method of ["GET", "POST", "HEAD"] as const) {
        for (const auth of carriers) {
          origin.reset();
          await http(edge, path, { method, headers: { authorization: auth, "x-purge-timestamp": "1700000000", "x-purge-signature": "0".repeat(64), "x-purge-nonce": "nonce-123" }, body: method === "POST" ? "x" : undefined });
          const leaked = origin.requests.some((q) => JSON.stringify(q.headers).includes(TOKEN) || Object.keys(q.headers).some((k) => k.startsWith("x-purge-")));
          t.refused(!leaked, `${method} ${path} ${JSON.stringify(auth)} reached the origin`);
        }
      }
    }
    // other credentials are the origin's business: they pass as sent
    for (const auth of ["Bearer another-token", `Bearer ${TOKEN}x`, `Basic ${Buffer.from("u:p").toString("base64")}`, TOKEN]) {
      origin.reset();
      await http(edge, "/api/x", { headers: { authorization: auth } });
      t.accepted(origin.requests[0]?.headers.authorization === auth.trim(), `${auth} did not pass: ${origin.requests[0]?.headers.authorization}`);
    }
    expect(luaErrors(await edge.errors())).toEqual([]);
    t.done();
  });
});

describe("§5 a signed purge is accepted once per fleet", () => {
  let redis: RedisServer;
  let a: Edge;
  let b: Edge;
  let lonely: Edge;
  beforeAll(async () => {
    redis = await startRedis();
    const fleet = (name: string) => purgePolicy({ allow: ["127.0.0.1/32"], channel: "cdn-build:purge:sec-fleet" }, { name, redis: { host: "127.0.0.1", port: redis.port, timeout: "200ms" } });
    a = await bootEdge(fleet("node-a"), { env: ENV });
    b = await bootEdge(fleet("node-b"), { env: ENV });
    lonely = await bootEdge(purgePolicy({ allow: ["127.0.0.1/32"] }, { name: "lonely" }), { env: ENV });
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await lonely?.stop();
    await redis?.stop();
  });

  const signed = (nonce: string, body = purgeBody({ urls: ["http://127.0.0.1/x"] }), ts = Math.floor(Date.now() / 1000)) => ({
    headers: { "x-purge-timestamp": String(ts), "x-purge-nonce": nonce, "x-purge-signature": signPurge(HMAC, "POST", "/__purge", ts, nonce, body) },
    body,
  });
  const send = (e: Edge, req: { headers: Record<string, string>; body: string }, extra: Record<string, string> = {}) => http(e, "/__purge", { method: "POST", headers: { ...req.headers, ...extra }, body: req.body });

  it("accepts a signed request on one node and refuses it on every other node and on the same one", async () => {
    const t = tally("§5 signed purge replay");
    for (let i = 0; i < 5; i++) {
      const req = signed(`replay-${i}-${Date.now()}`);
      const [first, second] = i % 2 ? [b, a] : [a, b];
      t.accepted((await send(first, req)).status === 200, `round ${i}: the first node refused`);
      for (const [e, extra] of [
        [second, {}],
        [first, {}],
        [second, { "x-purge-signature": req.headers["x-purge-signature"]!.toUpperCase() }],
        [second, { "x-forwarded-for": "10.9.9.9" }],
      ] as [Edge, Record<string, string>][]) {
        const r = await send(e, req, extra);
        t.refused(r.status === 403, `round ${i}: a replay to ${e === a ? "a" : "b"} ${JSON.stringify(extra)} got ${r.status}`);
      }
      // the same purge, signed again with another nonce (what `cdn-build purge` does per node), is a new request
      t.accepted((await send(second, signed(`fresh-${i}-${Date.now()}`))).status === 200, `round ${i}: a freshly signed request was refused`);
    }
    // a request without a nonce, or one the signature does not cover, is refused
    const req = signed(`nonce-${Date.now()}`);
    for (const extra of [{ "x-purge-nonce": "" }, { "x-purge-nonce": "short" }, { "x-purge-nonce": "another-nonce-1" }, { "x-purge-nonce": "bad nonce with spaces" }]) {
      t.refused((await send(a, req, extra)).status === 403, `nonce ${JSON.stringify(extra)}`);
    }
    t.done();
  });

  it("refuses signed purges with 503 while Redis is down (token purges go on), and accepts them once it is back", async () => {
    const t = tally("§5 signed purge without redis");
    await redis.stop();
    try {
      const req = signed(`down-${Date.now()}`);
      const r = await send(a, req);
      t.refused(r.status === 503 && r.headers["cache-control"] === "no-store", `Redis down: ${r.status} ${r.body}`);
      const tok = await http(a, "/__purge", { method: "POST", headers: { authorization: `Bearer ${TOKEN}` }, body: purgeBody({ urls: ["http://127.0.0.1/x"] }) });
      t.accepted(tok.status === 200, `token purge with Redis down: ${tok.status}`);
      await redis.start();
      // the refused request was not recorded anywhere: sent again now, it is accepted, once
      t.accepted((await send(a, req)).status === 200, "the same request once Redis is back");
      t.refused((await send(b, req)).status === 403, "its replay on the other node");
    } finally {
      await redis.start().catch(() => {});
    }
    t.done();
  });

  it("without redis a node remembers the signatures it accepted (one node is the whole fleet)", async () => {
    const req = signed(`lonely-${Date.now()}`);
    expect((await send(lonely, req)).status).toBe(200);
    expect((await send(lonely, req)).status).toBe(403);
    expect(luaErrors([...(await a.errors()), ...(await b.errors()), ...(await lonely.errors())])).toEqual([]);
  });
});
