/**
 * RFC 9111 behaviour of the shared cache, one test per rule, over HTTP against a booted bundle and a
 * scripted origin. Where stock nginx proxy_cache behaves differently, the test name says so.
 */
import * as net from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { bootEdge, waitLogged, type Edge } from "../support/edge.js";
import { startMockOrigin, type MockOrigin } from "../support/mock-origin.js";
import { policy } from "../support/policy.js";
import { http, luaErrors } from "../support/http.js";
import { sleep } from "../support/wait.js";
import type { Policy } from "../../src/policy/types.js";

let origin: MockOrigin;
let edge: Edge;

const httpDate = (ms: number) => new Date(ms).toUTCString();

const rfcPolicy = (o: MockOrigin, cache: Policy["cache"] = {}) =>
  policy(o, { name: "rfc", cache: { ttl: { "200": "1h", "404": "1h" }, ...cache }, headers: { cacheStatus: "X-Cache" } });

describe("RFC 9111 on the disk tier", () => {
  beforeAll(async () => {
    origin = await startMockOrigin();
    edge = await bootEdge(rfcPolicy(origin));
  });
  afterEach(async () => {
    expect(luaErrors(await edge.errors())).toEqual([]);
  });
  afterAll(async () => {
    await edge?.stop();
    await origin?.close();
  });

  it("counts the origin's Age in freshness (stock nginx ignores it)", async () => {
    origin.route("/age", (_r, n) => ({ headers: { "cache-control": "max-age=10", age: "9" }, body: `v${n}` }));
    expect((await http(edge, "/age")).body).toBe("v1");
    const hit = await http(edge, "/age");
    expect(hit.headers["x-cache"]).toBe("HIT");
    expect(Number(hit.headers["age"])).toBeGreaterThanOrEqual(9);
    await sleep(1300);
    const after = await http(edge, "/age");
    expect(after.body).toBe("v2");
    expect(origin.hits("/age")).toBe(2);
  });

  it("sends Age on hits, growing with time in the cache (stock nginx sends none)", async () => {
    origin.route("/agehdr", { headers: { "cache-control": "max-age=100" }, body: "a" });
    const miss = await http(edge, "/agehdr");
    expect(miss.headers["age"]).toBeUndefined();
    await sleep(1100);
    const hit = await http(edge, "/agehdr");
    expect(hit.headers["x-cache"]).toBe("HIT");
    expect(Number(hit.headers["age"])).toBeGreaterThanOrEqual(1);
  });

  it("computes Expires relative to the origin's Date, not its own clock", async () => {
    // the origin's clock is an hour ahead: Expires - Date = 1s (stock nginx: Expires - now = 1h)
    origin.route("/expires", (_r, n) => {
      const date = Date.now() + 3600_000;
      return { headers: { date: httpDate(date), expires: httpDate(date + 1000) }, body: `e${n}` };
    });
    await http(edge, "/expires");
    expect((await http(edge, "/expires")).headers["x-cache"]).toBe("HIT");
    await sleep(1300);
    expect((await http(edge, "/expires")).body).toBe("e2");
  });

  it("keeps the origin's Date (stock nginx replaces it)", async () => {
    const date = httpDate(Math.floor(Date.now() / 1000) * 1000 - 5000);
    origin.route("/date", { headers: { date, "cache-control": "max-age=600" }, body: "d" });
    expect((await http(edge, "/date")).headers["date"]).toBe(date);
    const hit = await http(edge, "/date");
    expect(hit.headers["x-cache"]).toBe("HIT");
    expect(hit.headers["date"]).toBe(date);
    expect(Number(hit.headers["age"])).toBeGreaterThanOrEqual(5);
  });

  it("never stores Vary: * even inside a list (stock nginx stores it)", async () => {
    origin.route("/varystar", { headers: { "cache-control": "max-age=600", vary: "Accept, *" }, body: "v" });
    await http(edge, "/varystar");
    expect((await http(edge, "/varystar")).headers["x-cache"]).not.toBe("HIT");
    expect(origin.hits("/varystar")).toBe(2);
  });

  it("keeps Vary variants apart", async () => {
    origin.route("/vary", (r) => ({ headers: { "cache-control": "max-age=600", vary: "Accept-Language" }, body: `lang=${r.headers["accept-language"]}` }));
    await http(edge, "/vary", { headers: { "accept-language": "de" } });
    await http(edge, "/vary", { headers: { "accept-language": "fr" } });
    const de = await http(edge, "/vary", { headers: { "accept-language": "de" } });
    const fr = await http(edge, "/vary", { headers: { "accept-language": "fr" } });
    expect([de.body, de.headers["x-cache"], fr.body, fr.headers["x-cache"]]).toEqual(["lang=de", "HIT", "lang=fr", "HIT"]);
    expect(origin.hits("/vary")).toBe(2);
    // a successful POST invalidates every variant
    await http(edge, "/vary", { method: "POST", body: "x" });
    const de2 = await http(edge, "/vary", { headers: { "accept-language": "de" } });
    const fr2 = await http(edge, "/vary", { headers: { "accept-language": "fr" } });
    // invalidated objects no longer exist: each variant is a MISS again
    expect([de2.headers["x-cache"], fr2.headers["x-cache"]]).toEqual(["MISS", "MISS"]);
    expect([de2.body, fr2.body]).toEqual(["lang=de", "lang=fr"]);
    expect((await http(edge, "/vary", { headers: { "accept-language": "de" } })).headers["x-cache"]).toBe("HIT");
  });

  it("never serves an older variant after repeated invalidations (variants have their own disk keys)", async () => {
    origin.route("/vary2", (r, n) => (r.method === "POST" ? { body: "ok" } : { headers: { "cache-control": "max-age=600", vary: "Accept-Language" }, body: `${r.headers["accept-language"]}:${n}` }));
    const get = (lang: string) => http(edge, "/vary2", { headers: { "accept-language": lang } });
    for (let round = 0; round < 3; round++) {
      const de = await get("de");
      const fr = await get("fr");
      const de2 = await get("de");
      const fr2 = await get("fr");
      expect([de2.body, fr2.body]).toEqual([de.body, fr.body]);
      expect([de2.headers["x-cache"], fr2.headers["x-cache"]]).toEqual(["HIT", "HIT"]);
      await http(edge, "/vary2", { method: "POST", body: "x" });
      const after = await get("de");
      expect(after.body).not.toBe(de.body);
      expect((await get("fr")).body).not.toBe(fr.body);
    }
  });

  it("drops the headers the origin names in Connection, on a miss and on a hit (stock nginx keeps them)", async () => {
    origin.route("/conn", { headers: { "cache-control": "max-age=600", connection: "x-hop, keep-alive", "x-hop": "secret", "x-end": "kept" }, body: "c" });
    const a = await http(edge, "/conn");
    const b = await http(edge, "/conn");
    expect(b.headers["x-cache"]).toBe("HIT");
    for (const r of [a, b]) {
      expect(r.headers["x-hop"]).toBeUndefined();
      expect(r.headers["x-end"]).toBe("kept");
    }
  });

  it("updates the stored headers and freshness from a 304 (stock nginx keeps the old ones)", async () => {
    origin.route("/upd", (req) =>
      req.headers["if-none-match"] === '"u1"'
        ? { status: 304, headers: { etag: '"u1"', "cache-control": "max-age=600", "x-note": "from-304" } }
        : { headers: { etag: '"u1"', "cache-control": "max-age=1", "x-note": "from-200" }, body: "body-u1" },
    );
    await http(edge, "/upd");
    await sleep(1300);
    const r = await http(edge, "/upd");
    expect(r.headers["x-cache"]).toBe("REVALIDATED");
    expect(r.body).toBe("body-u1");
    await sleep(1300);
    const hit = await http(edge, "/upd");
    expect(hit.headers["x-cache"]).toBe("HIT"); // fresh for 600 s now
    expect(hit.headers["cache-control"]).toBe("max-age=600");
    expect(origin.hits("/upd")).toBe(2);
  });

  it("invalidates the target URI, Location and Content-Location after a successful POST/PUT/DELETE/PATCH", async () => {
    origin.route("/inv", (_r, n) => ({ headers: { "cache-control": "max-age=600" }, body: `inv${n}` }));
    origin.route("/inv-loc", (_r, n) => ({ headers: { "cache-control": "max-age=600" }, body: `loc${n}` }));
    origin.route("/inv-cl", (_r, n) => ({ headers: { "cache-control": "max-age=600" }, body: `cl${n}` }));
    origin.route("/inv-fail", (r, n) => (r.method === "POST" ? { status: 500, body: "no" } : { headers: { "cache-control": "max-age=600" }, body: `f${n}` }));
    origin.route("/inv-action", { status: 201, headers: { location: "/inv-loc", "content-location": `http://localhost:${edge.port}/inv-cl` }, body: "" });
    for (const p of ["/inv", "/inv-loc", "/inv-cl", "/inv-fail"]) {
      await http(edge, p);
      expect((await http(edge, p)).headers["x-cache"]).toBe("HIT");
    }
    let i = 0;
    for (const method of ["POST", "PUT", "DELETE", "PATCH"] as const) {
      await http(edge, "/inv", { method, body: "x" });
      // the handler counts every request to the path: GET 1, unsafe 2, GET 3, unsafe 4, ...
      expect((await http(edge, "/inv")).body).toBe(`inv${2 * i + 3}`);
      i++;
    }
    // each unsafe request went to the origin, and each following GET too
    expect(origin.requests.filter((r) => r.path === "/inv" && r.method === "GET").length).toBe(5);
    await http(edge, "/inv-action", { method: "POST", headers: { host: `localhost:${edge.port}` }, body: "x" });
    expect((await http(edge, "/inv-loc", { headers: { host: `localhost:${edge.port}` } })).headers["x-cache"]).not.toBe("HIT");
    expect((await http(edge, "/inv-cl", { headers: { host: `localhost:${edge.port}` } })).headers["x-cache"]).not.toBe("HIT");
    // a failed unsafe request invalidates nothing
    await http(edge, "/inv-fail", { method: "POST", body: "x" });
    expect((await http(edge, "/inv-fail")).headers["x-cache"]).toBe("HIT");
  });

  it("does not store a response to a request with Authorization unless the response allows it", async () => {
    origin.route("/auth-private", (_r, n) => ({ headers: { "cache-control": "max-age=600" }, body: `p${n}` }));
    origin.route("/auth-public", (_r, n) => ({ headers: { "cache-control": "public, max-age=600" }, body: `q${n}` }));
    origin.route("/auth-smax", (_r, n) => ({ headers: { "cache-control": "s-maxage=600" }, body: `s${n}` }));
    for (const p of ["/auth-private", "/auth-public", "/auth-smax"]) await http(edge, p, { headers: { authorization: "Bearer t" } });
    expect((await http(edge, "/auth-private")).body).toBe("p2");
    const pub = await http(edge, "/auth-public");
    expect([pub.body, pub.headers["x-cache"]]).toEqual(["q1", "HIT"]);
    expect((await http(edge, "/auth-smax")).body).toBe("s1");
  });

  it("honours CDN-Cache-Control over Cache-Control (stock nginx ignores it)", async () => {
    origin.route("/cdncc-store", (_r, n) => ({ headers: { "cache-control": "no-store", "cdn-cache-control": "max-age=600" }, body: `a${n}` }));
    origin.route("/cdncc-nostore", (_r, n) => ({ headers: { "cache-control": "max-age=600", "cdn-cache-control": "no-store" }, body: `b${n}` }));
    await http(edge, "/cdncc-store");
    const a = await http(edge, "/cdncc-store");
    expect([a.body, a.headers["x-cache"]]).toEqual(["a1", "HIT"]);
    expect(a.headers["cache-control"]).toBe("no-store"); // what browsers see is untouched
    await http(edge, "/cdncc-nostore");
    expect((await http(edge, "/cdncc-nostore")).body).toBe("b2");
  });

  it("a variant fetched right after an invalidation counts as newer than it: the next request is a hit (40 rounds)", async () => {
    // records keep the store time to the microsecond: rounded to 0.1 ms, a refetch in the same millisecond as
    // the invalidation looked older than it, and was retired and fetched again
    origin.setDefault((req) => (req.method === "POST" ? { body: "ok" } : { headers: { "cache-control": "max-age=600", vary: "Accept-Language" }, body: `lang=${req.headers["accept-language"]}` }));
    try {
      const missed: string[] = [];
      for (let i = 0; i < 40; i++) {
        const p = `/vary-inval-${i}`;
        for (const l of ["de", "fr"]) await http(edge, p, { headers: { "accept-language": l } });
        await http(edge, p, { method: "POST", body: "x" });
        for (const l of ["de", "fr"]) await http(edge, p, { headers: { "accept-language": l } });
        const again = await http(edge, p, { headers: { "accept-language": "de" } });
        if (again.headers["x-cache"] !== "HIT") missed.push(`${p} ${again.headers["x-cache"]}`);
      }
      expect(missed).toEqual([]);
    } finally {
      origin.setDefault(undefined);
    }
  });

  it("stores no-cache responses with a validator and revalidates them on every use", async () => {
    origin.route("/nocache", (req) =>
      req.headers["if-none-match"] === '"n1"' ? { status: 304, headers: { etag: '"n1"', "cache-control": "no-cache" } } : { headers: { etag: '"n1"', "cache-control": "no-cache" }, body: "nc" },
    );
    await http(edge, "/nocache");
    const r = await http(edge, "/nocache");
    expect([r.body, r.headers["x-cache"]]).toEqual(["nc", "REVALIDATED"]);
    expect(origin.requests.filter((q) => q.path === "/nocache")[1]!.headers["if-none-match"]).toBe('"n1"');
  });

  it("does not store Set-Cookie responses, nor uncacheable statuses without explicit freshness", async () => {
    origin.route("/cookie", { headers: { "cache-control": "max-age=600", "set-cookie": "a=1" }, body: "c" });
    origin.route("/err500", { status: 500, body: "e" });
    origin.route("/err500-explicit", { status: 500, headers: { "cache-control": "max-age=600" }, body: "e" });
    for (const p of ["/cookie", "/err500", "/err500-explicit"]) {
      await http(edge, p);
      await http(edge, p);
    }
    expect(origin.hits("/cookie")).toBe(2);
    expect(origin.hits("/err500")).toBe(2);
    expect(origin.hits("/err500-explicit")).toBe(1); // explicit freshness makes any final status storable
  });

  it("uses the TTL table only when the origin gives no freshness", async () => {
    origin.route("/heur", { status: 404, body: "nf" });
    origin.route("/explicit0", { headers: { "cache-control": "max-age=0" }, body: "z" });
    await http(edge, "/heur");
    expect((await http(edge, "/heur")).headers["x-cache"]).toBe("HIT");
    await http(edge, "/explicit0");
    await http(edge, "/explicit0");
    expect(origin.hits("/explicit0")).toBe(2);
  });

  it("ignores a client's refresh marker and never forwards it to the origin", async () => {
    origin.route("/marker", { headers: { "cache-control": "max-age=600" }, body: "m" });
    await http(edge, "/marker");
    const r = await http(edge, "/marker", { headers: { "x-cdn-refresh": "guess" } });
    expect(r.headers["x-cache"]).toBe("HIT");
    expect(origin.hits("/marker")).toBe(1);
    expect(origin.requests.some((q) => "x-cdn-refresh" in q.headers)).toBe(false);
  });

  it("coalesces 100 concurrent requests for a cold key into exactly one origin fetch", async () => {
    origin.route("/cold100", { headers: { "cache-control": "max-age=600" }, body: "cold", delayMs: 400 });
    const replies = await Promise.all(Array.from({ length: 100 }, () => http(edge, "/cold100")));
    expect(replies.every((r) => r.status === 200 && r.body === "cold")).toBe(true);
    expect(origin.hits("/cold100")).toBe(1);
  });

  it("coalesces the revalidation of a stale object: 30 concurrent requests, one conditional origin request", async () => {
    origin.route("/stale30", (req) =>
      req.headers["if-none-match"] === '"s"'
        ? { status: 304, headers: { etag: '"s"', "cache-control": "max-age=1" }, delayMs: 300 }
        : { headers: { etag: '"s"', "cache-control": "max-age=1" }, body: "s30" },
    );
    await http(edge, "/stale30");
    await sleep(1300);
    const replies = await Promise.all(Array.from({ length: 30 }, () => http(edge, "/stale30")));
    expect(replies.every((r) => r.status === 200 && r.body === "s30")).toBe(true);
    expect(origin.hits("/stale30")).toBe(2);
  });
});

describe("stale serving only within the windows the origin allowed", () => {
  let o: MockOrigin;
  let e: Edge;
  let strict: Edge;
  beforeAll(async () => {
    o = await startMockOrigin();
    e = await bootEdge(rfcPolicy(o, { staleIfError: "1d" }));
    strict = await bootEdge(rfcPolicy(o));
  });
  afterAll(async () => {
    await e?.stop();
    await strict?.stop();
    await o?.close();
  });
  afterEach(async () => {
    expect(luaErrors(await e.errors())).toEqual([]);
    expect(luaErrors(await strict.errors())).toEqual([]);
  });

  const failing = (cc: string) => (_r: unknown, n: number) => (n === 1 ? { headers: { "cache-control": cc }, body: "old" } : { status: 500, body: "origin down" });

  it("serves stale on error within stale-if-error (policy default)", async () => {
    o.route("/sie", failing("max-age=1"));
    await http(e, "/sie");
    await sleep(1300);
    const r = await http(e, "/sie");
    expect([r.status, r.body, r.headers["x-cache"]]).toEqual([200, "old", "STALE"]);
  });

  for (const cc of ["max-age=1, must-revalidate", "max-age=1, proxy-revalidate", "s-maxage=1"]) {
    it(`never serves stale on error with "${cc}" (stock nginx does)`, async () => {
      const p = "/mr-" + cc.replace(/[^a-z]/g, "");
      o.route(p, failing(cc));
      await http(e, p);
      await sleep(1300);
      const r = await http(e, p);
      expect(r.status).toBe(500);
      expect(r.body).toBe("origin down");
    });
  }

  it("honours the origin's stale-if-error window, and not beyond it", async () => {
    o.route("/sie-window", failing("max-age=1, stale-if-error=1"));
    await http(strict, "/sie-window");
    await sleep(1300);
    expect((await http(strict, "/sie-window")).headers["x-cache"]).toBe("STALE");
    await sleep(1200);
    expect((await http(strict, "/sie-window")).status).toBe(500);
  });

  it("serves stale while revalidating only when allowed (origin directive), with exactly one background refresh", async () => {
    o.route("/swr", (_r, n) => ({ headers: { "cache-control": `max-age=${n > 1 ? 60 : 1}, stale-while-revalidate=30` }, body: `w${n}`, delayMs: n > 1 ? 300 : 0 }));
    o.route("/noswr", (_r, n) => ({ headers: { "cache-control": "max-age=1" }, body: `x${n}`, delayMs: n > 1 ? 300 : 0 }));
    o.route("/swr-mr", (_r, n) => ({ headers: { "cache-control": "max-age=1, stale-while-revalidate=30, must-revalidate" }, body: `m${n}` }));
    for (const p of ["/swr", "/noswr", "/swr-mr"]) await http(strict, p);
    await sleep(1300);
    const burst = await Promise.all(Array.from({ length: 20 }, () => http(strict, "/swr")));
    expect(burst.every((r) => r.body === "w1" && r.headers["x-cache"] === "STALE")).toBe(true);
    const no = await http(strict, "/noswr");
    expect([no.body, no.headers["x-cache"]]).toEqual(["x2", "EXPIRED"]);
    expect((await http(strict, "/swr-mr")).body).toBe("m2");
    await waitLogged(strict, "/swr", 22); // the first request, the burst of 20 and the finished background refresh
    const fresh = await http(strict, "/swr");
    expect([fresh.body, fresh.headers["x-cache"]]).toEqual(["w2", "HIT"]);
    expect(o.hits("/swr")).toBe(2);
  });
});

describe("rule TTL overrides the origin's freshness", () => {
  it("keeps an object for the rule's TTL despite a short max-age", async () => {
    const o = await startMockOrigin();
    const e = await bootEdge({
      ...rfcPolicy(o, { staleIfError: "1h" }),
      rules: [
        { name: "long", when: { path: { prefix: "/rt/" } }, then: { cache: { ttl: "1h" } } },
        { name: "short", when: { path: { prefix: "/rt-short/" } }, then: { cache: { ttl: "1s" } } },
      ],
    });
    try {
      o.route("/rt/a", (_r, n) => ({ headers: { "cache-control": "max-age=1" }, body: `r${n}` }));
      o.route("/other", (_r, n) => ({ headers: { "cache-control": "max-age=1" }, body: `o${n}` }));
      o.route("/rt-short/a", (_r, n) => (n === 1 ? { headers: { "cache-control": "max-age=600" }, body: "short1" } : { status: 500, body: "down" }));
      await http(e, "/rt/a");
      await http(e, "/other");
      await http(e, "/rt-short/a");
      await sleep(1300);
      expect((await http(e, "/rt/a")).headers["x-cache"]).toBe("HIT");
      expect((await http(e, "/other")).body).toBe("o2");
      // a 1 s rule TTL overrides max-age=600; once stale, stale-if-error still protects the origin
      const st = await http(e, "/rt-short/a");
      expect([st.status, st.body, st.headers["x-cache"]]).toEqual([200, "short1", "STALE"]);
      expect(luaErrors(await e.errors())).toEqual([]);
    } finally {
      await e.stop();
      await o.close();
    }
  });
});

describe("an upstream 103 Early Hints", () => {
  it("is never stored as the response (nginx 1.22 still relays it as final: documented limit)", async () => {
    let hits = 0;
    const srv = net.createServer((sock) => {
      sock.once("data", () => {
        hits++;
        sock.write("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n");
        setTimeout(() => sock.end("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nCache-Control: max-age=60\r\nConnection: close\r\n\r\nok"), 20);
      });
    });
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
    const port = (srv.address() as net.AddressInfo).port;
    const e = await bootEdge({ name: "early", origins: { app: { servers: [{ address: `127.0.0.1:${port}` }], retries: 0 } }, cache: {} });
    try {
      for (let i = 0; i < 2; i++) expect((await http(e, "/hints")).body).toBe("ok");
      expect(hits).toBe(2);
      expect(luaErrors(await e.errors())).toEqual([]);
    } finally {
      await e.stop();
      srv.close();
    }
  });
});
