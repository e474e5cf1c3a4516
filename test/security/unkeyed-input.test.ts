/**
 * Security issue 11 §3: unkeyed input must not poison the cache. Against an origin that reflects everything
 * it receives (method, every header, the body's length) into a cacheable response:
 * - every forwarding / override header, in every spelling a client can use, is removed before the origin
 *   (and one the policy lets through joins the key, every value of it, or bypasses the cache);
 * - a GET or HEAD with a body is never stored;
 * - a HEAD stores the full GET response and shares its key;
 * - a request for a host the edge does not serve (Host header, absolute request line, no Host) is refused
 *   with 421, never proxied or cached; the cache key keeps the host whenever several hosts are served.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootEdge, type Edge } from "../support/edge.js";
import { startMockOrigin, type MockOrigin, type RecordedRequest } from "../support/mock-origin.js";
import { http, luaErrors, rawRequest } from "../support/http.js";
import { codes, policy } from "../support/policy.js";
import { tally } from "../support/tally.js";
import { OVERRIDE_HEADERS } from "../../src/features/shared/override-headers.js";
import type { Policy } from "../../src/policy/types.js";

const SHOP = "shop.example.com";
const WWW = "www.example.com";
const EVIL = "evil.example";

let origin: MockOrigin;
/** What the origin reflects: it would put any of this into links, redirects or routing. */
const reflect = (req: RecordedRequest) => ({
  status: 200,
  headers: { "cache-control": "max-age=300", "content-type": "application/json" },
  body: JSON.stringify({ method: req.method, headers: req.headers, body: req.body.length }),
});

beforeAll(async () => {
  origin = await startMockOrigin();
  fresh();
});
/** Forgets the origin's requests; it keeps reflecting. */
function fresh(): void {
  origin.reset();
  origin.setDefault(reflect);
}
afterAll(async () => {
  await origin?.close();
});

const edgePolicy = (extra: Partial<Policy> = {}) =>
  policy(origin, { name: "unkeyed", serverNames: [SHOP, WWW], cache: {}, health: { path: "/health" }, purge: { allow: ["127.0.0.1/32"] }, ...extra });

/** The spellings a client can give a header: as listed, lower and upper case. */
const spellings = (h: string) => [...new Set([h, h.toLowerCase(), h.toUpperCase()])];
const seen = (q: RecordedRequest | undefined, header: string) => q !== undefined && Object.keys(q.headers).some((k) => k.toLowerCase() === header.toLowerCase());

describe("§3 forwarding and override headers", () => {
  let edge: Edge;
  let allowing: Edge;
  beforeAll(async () => {
    edge = await bootEdge(edgePolicy());
    allowing = await bootEdge(
      edgePolicy({ headers: { allowOverrides: [{ header: "X-Forwarded-Prefix" }, { header: "X-Forwarded-Host", cache: "bypass" }], request: { set: { "X-Forwarded-Proto-Version": "1" } } } }),
    );
  });
  afterAll(async () => {
    await edge?.stop();
    await allowing?.stop();
  });

  it("removes every one of them, in every spelling, before the origin: the cached object never carries a client's value", async () => {
    const t = tally("§3 override headers removed");
    const values = ["evil.example", "https", "/admin/../secret", "DELETE"];
    let n = 0;
    for (const header of OVERRIDE_HEADERS) {
      for (const name of spellings(header)) {
        const value = values[n % values.length]!;
        const path = `/o/${n++}`;
        fresh();
        const first = await http(edge, path, { headers: { host: SHOP, [name]: value } });
        const clean = await http(edge, path, { headers: { host: SHOP } });
        const ok = first.status === 200 && !seen(origin.requests[0], header) && clean.headers["x-cache"] === "HIT" && !clean.body.includes(value) && origin.hits() === 1;
        t.refused(ok, `${name}: ${value}: first ${first.status} ${first.body.slice(0, 120)}, then ${clean.headers["x-cache"]}`);
      }
    }
    t.done();
  });

  it("the same headers pass on a request the policy lets through: a key part per value (every value sent), or a bypass", async () => {
    const t = tally("§3 override headers let through");
    // cache: "key": each value its own object, the plain request its own too
    for (const [i, value] of ["/a", "/b", "/evil"].entries()) {
      fresh();
      const r = await http(allowing, `/k/${i}`, { headers: { host: SHOP, "x-forwarded-prefix": value } });
      const again = await http(allowing, `/k/${i}`, { headers: { host: SHOP, "x-forwarded-prefix": value } });
      const plain = await http(allowing, `/k/${i}`, { headers: { host: SHOP } });
      t.accepted(r.status === 200 && seen(origin.requests[0], "X-Forwarded-Prefix") && again.headers["x-cache"] === "HIT", `key ${value}: ${r.status} ${again.headers["x-cache"]}`);
      t.refused(plain.headers["x-cache"] === "MISS" && !plain.body.includes(value), `key ${value}: the plain request got ${plain.headers["x-cache"]} ${plain.body.slice(0, 100)}`);
    }
    // the header sent twice: nginx passes both on, so both are in the key (a request with the first value only
    // never gets the object built from the second)
    fresh();
    const twice = await rawRequest(allowing, `GET /k/twice HTTP/1.1\r\nHost: ${SHOP}\r\nX-Forwarded-Prefix: /a\r\nX-Forwarded-Prefix: /evil\r\nConnection: close\r\n\r\n`);
    const first = await http(allowing, "/k/twice", { headers: { host: SHOP, "x-forwarded-prefix": "/a" } });
    t.refused(twice.status === 200 && first.headers["x-cache"] === "MISS" && !first.body.includes("/evil"), `sent twice: then ${first.headers["x-cache"]} ${first.body.slice(0, 100)}`);
    // cache: "bypass": passes, never served from or stored in the cache
    fresh();
    const b = await http(allowing, "/byp", { headers: { host: SHOP, "x-forwarded-host": EVIL } });
    const after = await http(allowing, "/byp", { headers: { host: SHOP } });
    t.refused(b.headers["x-cache"] === "BYPASS" && seen(origin.requests[0], "X-Forwarded-Host") && after.headers["x-cache"] === "MISS" && !after.body.includes(EVIL), `bypass: ${b.headers["x-cache"]} then ${after.headers["x-cache"]}`);
    // the others are still removed
    fresh();
    await http(allowing, "/still", { headers: { host: SHOP, "x-original-url": "/admin" } });
    t.refused(!seen(origin.requests[0], "X-Original-URL"), "X-Original-URL passed");
    expect(luaErrors(await allowing.errors())).toEqual([]);
    t.done();
  });

  it("checks the allow-list: only removed headers, each once, and rules cannot set one that is removed", () => {
    const edgePolicy = (extra: Partial<Policy>) => policy(origin, { name: "unkeyed", serverNames: [SHOP], cache: {}, ...extra });
    expect(codes(edgePolicy({ headers: { allowOverrides: [{ header: "X-Custom" }] } }))).toContain("CDN2061");
    expect(codes(edgePolicy({ headers: { allowOverrides: [{ header: "X-Host" }, { header: "x-host" }] } }))).toContain("CDN2010");
    expect(codes(edgePolicy({ rules: [{ name: "r", then: { requestHeaders: { set: { "X-Forwarded-Host": SHOP } } } }] }))).toContain("CDN2062");
    expect(codes(edgePolicy({ headers: { allowOverrides: [{ header: "X-Forwarded-Host" }] }, rules: [{ name: "r", then: { requestHeaders: { set: { "X-Forwarded-Host": SHOP } } } }] }))).toEqual([]);
    expect(codes(edgePolicy({ headers: { request: { set: { "X-Forwarded-Host": SHOP } } } }))).toEqual([]);
  });

  it("a header the policy sets itself reaches the origin with the policy's value, never the client's", async () => {
    const e = await bootEdge(edgePolicy({ headers: { request: { set: { "X-Forwarded-Host": SHOP } } } }));
    try {
      fresh();
      const r = await http(e, "/set", { headers: { host: SHOP, "x-forwarded-host": EVIL } });
      expect(r.status).toBe(200);
      expect(origin.requests[0]!.headers["x-forwarded-host"]).toBe(SHOP);
    } finally {
      await e.stop();
    }
  });
});

describe("§3 bodies on GET and HEAD, and HEAD filling the cache", () => {
  let edge: Edge;
  let ram: Edge;
  beforeAll(async () => {
    edge = await bootEdge(edgePolicy());
    ram = await bootEdge(edgePolicy({ cache: { ram: { size: "8m", minHits: 1 } } }));
  });
  afterAll(async () => {
    await edge?.stop();
    await ram?.stop();
  });

  it("a GET or HEAD with a body (any length, Content-Length or chunked) is never stored; Content-Length: 0 is an ordinary request", async () => {
    const t = tally("§3 bodies on GET/HEAD");
    let n = 0;
    for (const method of ["GET", "HEAD"]) {
      for (const body of ["x", "evil=1", "a".repeat(5000)]) {
        for (const framing of ["length", "chunked"] as const) {
          const path = `/b/${n++}`;
          fresh();
          const head = framing === "length" ? `Content-Length: ${body.length}` : "Transfer-Encoding: chunked";
          const payload = framing === "length" ? body : `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
          const r = await rawRequest(edge, `${method} ${path} HTTP/1.1\r\nHost: ${SHOP}\r\n${head}\r\nConnection: close\r\n\r\n${payload}`);
          const clean = await http(edge, path, { headers: { host: SHOP } });
          const ok = r.status === 200 && r.headers["x-cache"] === "BYPASS" && clean.headers["x-cache"] === "MISS" && JSON.parse(clean.body).body === 0;
          t.refused(ok, `${method} ${framing} ${body.length}: ${r.status} ${r.headers["x-cache"]}, then ${clean.headers["x-cache"]}`);
        }
      }
    }
    fresh();
    const zero = await rawRequest(edge, `GET /b/zero HTTP/1.1\r\nHost: ${SHOP}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    const again = await http(edge, "/b/zero", { headers: { host: SHOP } });
    t.accepted(zero.headers["x-cache"] === "MISS" && again.headers["x-cache"] === "HIT", `Content-Length: 0: ${zero.headers["x-cache"]} then ${again.headers["x-cache"]}`);
    t.done();
  });

  it("a HEAD fetches with GET and stores the full response under the GET's key, on both tiers", async () => {
    const t = tally("§3 HEAD then GET");
    for (const e of [edge, ram]) {
      for (let i = 0; i < 3; i++) {
        const path = `/h/${i}`;
        fresh();
        const head = await http(e, path, { method: "HEAD", headers: { host: SHOP } });
        const get = await http(e, path, { headers: { host: SHOP } });
        const get2 = await http(e, path, { headers: { host: SHOP } });
        const full = JSON.stringify({ method: "GET", headers: origin.requests[0]?.headers, body: 0 });
        const ok =
          head.status === 200 &&
          head.body === "" &&
          origin.requests.length === 1 &&
          origin.requests[0]!.method === "GET" &&
          get.headers["x-cache"]!.startsWith("HIT") &&
          get.body === full &&
          Number(get.headers["content-length"]) === full.length &&
          get2.body === full;
        t.refused(ok, `${e === ram ? "ram" : "disk"} ${path}: HEAD ${head.status} origin ${origin.requests.map((q) => q.method).join(",")}, GET ${get.headers["x-cache"]} ${get.body.length}/${full.length}`);
      }
      // a HEAD on a stored object is a hit without a body; the next GET still has the body
      const h = await http(e, "/h/0", { method: "HEAD", headers: { host: SHOP } });
      const g = await http(e, "/h/0", { headers: { host: SHOP } });
      t.refused(h.headers["x-cache"]!.startsWith("HIT") && h.body === "" && g.body.length > 0, `HEAD hit ${h.headers["x-cache"]}, GET ${g.body.length}`);
    }
    expect(luaErrors([...(await edge.errors()), ...(await ram.errors())])).toEqual([]);
    t.done();
  });
});

describe("§3 hosts: only the server names are served; the key keeps the host when several are", () => {
  let edge: Edge;
  let single: Edge;
  beforeAll(async () => {
    edge = await bootEdge(edgePolicy());
    // host left out of the key: allowed with exactly one name, which is then the only host served
    single = await bootEdge(edgePolicy({ serverNames: [SHOP], cache: { key: { host: false } } }));
  });
  afterAll(async () => {
    await edge?.stop();
    await single?.stop();
  });

  const unknown = [EVIL, `${SHOP}.${EVIL}`, `x${SHOP}`, "example.com", "127.0.0.1", "localhost", `${EVIL}:80`, "[::1]", "SHOP.example.COM.evil.example"];

  it("refuses every other host with 421 (Host header, absolute request line, no Host, HTTP/1.0): never proxied or stored", async () => {
    const t = tally("§3 unknown hosts");
    for (const e of [edge, single]) {
      for (const h of unknown) {
        fresh();
        const r = await http(e, "/home", { headers: { host: h } });
        t.refused(r.status === 421 && origin.hits() === 0 && r.headers["cache-control"] === "no-store", `Host ${h}: ${r.status}, origin ${origin.hits()}`);
        const abs = await rawRequest(e, `GET http://${h}/home HTTP/1.1\r\nHost: ${SHOP}\r\nConnection: close\r\n\r\n`);
        t.refused(abs.status === 421 && origin.hits() === 0, `absolute http://${h}/: ${abs.status}, origin ${origin.hits()}`);
      }
      for (const text of [`GET /home HTTP/1.0\r\n\r\n`, `GET /home HTTP/1.0\r\nHost: ${EVIL}\r\n\r\n`]) {
        fresh();
        const r = await rawRequest(e, text);
        t.refused(r.status === 421 && origin.hits() === 0, `${JSON.stringify(text)}: ${r.status}`);
      }
      // after all that, the real host's object is the origin's, for the real host
      fresh();
      const good = await http(e, "/home", { headers: { host: SHOP } });
      t.accepted(good.status === 200 && JSON.parse(good.body).headers.host === SHOP, `Host ${SHOP}: ${good.status} ${good.body.slice(0, 80)}`);
    }
    t.done();
  });

  it("serves the names in any case, with a port or a trailing dot, and an absolute line naming one; health and purge answer on any host", async () => {
    const t = tally("§3 known hosts");
    for (const h of [SHOP, SHOP.toUpperCase(), `${SHOP}:80`, `${SHOP}.`, WWW]) {
      const r = await http(edge, "/known", { headers: { host: h } });
      t.accepted(r.status === 200, `Host ${h}: ${r.status}`);
    }
    const abs = await rawRequest(edge, `GET http://${SHOP}/known HTTP/1.1\r\nHost: ${EVIL}\r\nConnection: close\r\n\r\n`);
    t.accepted(abs.status === 200 && JSON.parse(abs.body).headers.host === SHOP, `absolute http://${SHOP}/ with Host ${EVIL}: ${abs.status}`);
    for (const h of ["127.0.0.1", EVIL, SHOP]) {
      t.accepted((await http(edge, "/health", { headers: { host: h } })).status === 200, `health on ${h}`);
      // the purge endpoint itself answers (405 for GET, 403 without credentials), whatever the host
      const p = await http(edge, "/__purge", { headers: { host: h } });
      t.accepted(p.status === 405, `purge on ${h}: ${p.status}`);
    }
    t.done();
  });

  it("keeps the host in the key whenever several hosts are served (CDN2060), and the objects of two names apart", async () => {
    const t = tally("§3 host in the key");
    const multi: (string[] | undefined)[] = [undefined, [], [SHOP, WWW], ["*.example.com"], [SHOP, "*.example.com"]];
    for (const names of multi) {
      const c = codes(policy(origin, { name: "k", ...(names ? { serverNames: names } : {}), cache: { key: { host: false } } }));
      t.refused(c.includes("CDN2060"), `serverNames ${JSON.stringify(names)}: ${c.join(",")}`);
    }
    t.accepted(!codes(policy(origin, { name: "k", serverNames: [SHOP], cache: { key: { host: false } } })).includes("CDN2060"), "one name");
    fresh();
    const a = await http(edge, "/two", { headers: { host: SHOP } });
    const b = await http(edge, "/two", { headers: { host: WWW } });
    t.refused(a.headers["x-cache"] === "MISS" && b.headers["x-cache"] === "MISS" && JSON.parse(b.body).headers.host === WWW, `two names: ${a.headers["x-cache"]} ${b.headers["x-cache"]}`);
    expect(luaErrors([...(await edge.errors()), ...(await single.errors())])).toEqual([]);
    t.done();
  });
});
