import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { bootEdge, waitLogged, type Edge } from "../support/edge.js";
import { startMockOrigin, type MockOrigin } from "../support/mock-origin.js";
import { policy } from "../support/policy.js";
import { http, luaErrors } from "../support/http.js";
import { sleep } from "../support/wait.js";
import type { Policy } from "../../src/policy/types.js";

let origin: MockOrigin;
let edge: Edge;

const cachePolicy = (extra: Partial<Policy["cache"]> = {}) =>
  policy(origin, {
    name: "cache-test",
    cache: { ttl: { "200": "1h", "404": "1s" }, bypass: { cookies: ["session"] }, ...extra },
    headers: { cacheStatus: "X-Cache" },
  });

describe("disk cache", () => {
  beforeAll(async () => {
    origin = await startMockOrigin();
    edge = await bootEdge(cachePolicy({ staleIfError: "1d", key: { query: "all" } }));
  });
  afterEach(async () => {
    expect(luaErrors(await edge.errors())).toEqual([]);
  });
  afterAll(async () => {
    await edge?.stop();
    await origin?.close();
  });

  it("answers MISS then HIT with a single origin request", async () => {
    const a = await http(edge, "/hit");
    const b = await http(edge, "/hit");
    expect(a.status).toBe(200);
    expect(a.headers["x-cache"]).toBe("MISS");
    expect(b.headers["x-cache"]).toBe("HIT");
    expect(b.body).toBe(a.body);
    expect(origin.hits("/hit")).toBe(1);
  });

  it("never serves no-store or private responses from the cache", async () => {
    origin.route("/nostore", { headers: { "cache-control": "no-store" }, body: "x" });
    origin.route("/private", { headers: { "cache-control": "private, max-age=600" }, body: "x" });
    for (let i = 0; i < 3; i++) {
      expect((await http(edge, "/nostore")).headers["x-cache"]).not.toBe("HIT");
      expect((await http(edge, "/private")).headers["x-cache"]).not.toBe("HIT");
    }
    expect(origin.hits("/nostore")).toBe(3);
    expect(origin.hits("/private")).toBe(3);
  });

  it("lets s-maxage win over max-age", async () => {
    origin.route("/smax", { headers: { "cache-control": "max-age=0, s-maxage=600" }, body: "s" });
    await http(edge, "/smax");
    expect((await http(edge, "/smax")).headers["x-cache"]).toBe("HIT");
    expect(origin.hits("/smax")).toBe(1);
  });

  it("bypasses the cache for a listed cookie and for Authorization", async () => {
    await http(edge, "/by");
    expect((await http(edge, "/by")).headers["x-cache"]).toBe("HIT");
    const c = await http(edge, "/by", { headers: { cookie: "theme=dark; session=abc" } });
    expect(c.headers["x-cache"]).toBe("BYPASS");
    const a = await http(edge, "/by", { headers: { authorization: "Bearer t" } });
    expect(a.headers["x-cache"]).toBe("BYPASS");
    const other = await http(edge, "/by", { headers: { cookie: "theme=dark" } });
    expect(other.headers["x-cache"]).toBe("HIT");
    expect(origin.hits("/by")).toBe(3);
    // a bypassed response is not stored either
    origin.route("/by2", (_r, n) => ({ body: `v${n}` }));
    await http(edge, "/by2", { headers: { authorization: "Bearer t" } });
    expect((await http(edge, "/by2")).body).toBe("v2");
  });

  it("applies the TTL per status: a 404 is cached briefly", async () => {
    origin.route("/gone", { status: 404, body: "no" });
    expect((await http(edge, "/gone")).status).toBe(404);
    expect((await http(edge, "/gone")).headers["x-cache"]).toBe("HIT");
    expect(origin.hits("/gone")).toBe(1);
    await sleep(2100);
    expect((await http(edge, "/gone")).headers["x-cache"]).toBe("EXPIRED");
    expect(origin.hits("/gone")).toBe(2);
  });

  it("keys on the sorted query string", async () => {
    await http(edge, "/q?b=2&a=1");
    expect((await http(edge, "/q?a=1&b=2")).headers["x-cache"]).toBe("HIT");
    expect((await http(edge, "/q?a=1&b=3")).headers["x-cache"]).toBe("MISS");
    expect(origin.hits("/q")).toBe(2);
    // the origin still gets the query as the client sent it
    expect(origin.requests.filter((r) => r.path === "/q")[0]!.url).toBe("/q?b=2&a=1");
  });

  it("coalesces 50 concurrent requests for one cold URL into one origin request", async () => {
    origin.route("/cold", { body: "cold", delayMs: 300 });
    const replies = await Promise.all(Array.from({ length: 50 }, () => http(edge, "/cold")));
    expect(replies.every((r) => r.status === 200 && r.body === "cold")).toBe(true);
    expect(origin.hits("/cold")).toBe(1);
  });

  it("revalidates an expired object with its ETag (304 from the origin)", async () => {
    origin.route("/etag", (req) =>
      req.headers["if-none-match"] === '"v1"'
        ? { status: 304, headers: { etag: '"v1"', "cache-control": "max-age=1" } }
        : { headers: { etag: '"v1"', "cache-control": "max-age=1" }, body: "tagged" },
    );
    await http(edge, "/etag");
    await sleep(2100);
    const r = await http(edge, "/etag");
    expect(r.headers["x-cache"]).toBe("REVALIDATED");
    expect(r.body).toBe("tagged");
    expect(origin.requests.filter((q) => q.path === "/etag")[1]!.headers["if-none-match"]).toBe('"v1"');
  });
});

describe("stale serving when the origin fails", () => {
  it("serves stale with staleIfError, and 502 without it", async () => {
    const o = await startMockOrigin();
    o.route("/s", { headers: { "cache-control": "max-age=1" }, body: "fresh-once" });
    const withStale = await bootEdge({ ...policyFor(o), cache: { staleIfError: "1d" } });
    const without = await bootEdge({ ...policyFor(o), cache: {} });
    try {
      await http(withStale, "/s");
      await http(without, "/s");
      await sleep(2100);
      await o.close();
      const a = await http(withStale, "/s");
      expect(a.status).toBe(200);
      expect(a.body).toBe("fresh-once");
      expect(a.headers["x-cache"]).toBe("STALE");
      const b = await http(without, "/s");
      expect([502, 504]).toContain(b.status);
    } finally {
      await withStale.stop();
      await without.stop();
    }
  });

  it("serves stale while one background request refreshes (staleWhileRevalidate)", async () => {
    const o = await startMockOrigin();
    o.route("/swr", (_r, n) => ({ headers: { "cache-control": "max-age=1" }, body: `v${n}`, delayMs: n > 1 ? 300 : 0 }));
    const e = await bootEdge({ ...policyFor(o), cache: { staleWhileRevalidate: "60s" } });
    try {
      await http(e, "/swr");
      await sleep(2100);
      const r = await http(e, "/swr");
      expect(r.headers["x-cache"]).toBe("STALE");
      expect(r.body).toBe("v1");
      await waitLogged(e, "/swr", 3); // the two client requests and the finished background refresh
      const fresh = await http(e, "/swr");
      expect(fresh.body).toBe("v2");
      expect(o.hits("/swr")).toBe(2);
    } finally {
      await e.stop();
      await o.close();
    }
  });
});

const policyFor = (o: MockOrigin) => policy(o, { name: "stale-test", cache: {} });
