/** The RAM hot tier: admission, freshness, Age, conditional requests, HEAD, Vary, stale-while-revalidate, LRU. */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { accessLog, bootEdge, type Edge } from "../support/edge.js";
import { startMockOrigin, type MockOrigin } from "../support/mock-origin.js";
import { http, luaErrors } from "../support/http.js";
import { sleep, waitFor } from "../support/wait.js";

let origin: MockOrigin;
let edge: Edge;

describe("RAM hot tier", () => {
  beforeAll(async () => {
    origin = await startMockOrigin();
    edge = await bootEdge({
      name: "ram",
      origins: { app: { servers: [{ address: origin.address }], retries: 0 } },
      cache: { ttl: { "200": "1h" }, bypass: { headers: ["x-preview"] }, ram: { size: "1m", maxObjectSize: "200k", minHits: 2 } },
      headers: { cacheStatus: "X-Cache", response: { set: { "X-Served-By": "edge" } } },
      accessLog: { format: "json" },
    });
  });
  afterEach(async () => {
    expect(luaErrors(await edge.errors())).toEqual([]);
  });
  afterAll(async () => {
    await edge?.stop();
    await origin?.close();
  });

  const seq = async (path: string, n: number, headers?: Record<string, string>) => {
    const out = [];
    for (let i = 0; i < n; i++) out.push(await http(edge, path, { headers }));
    return out;
  };

  it("admits an object on its minHits-th request and then serves it as HIT-RAM, with the same headers", async () => {
    origin.route("/hot", { headers: { "cache-control": "max-age=600", "content-type": "text/css", etag: '"h1"' }, body: "x".repeat(1024) });
    const r = await seq("/hot", 4);
    expect(r.map((x) => x.headers["x-cache"])).toEqual(["MISS", "HIT", "HIT-RAM", "HIT-RAM"]);
    expect(origin.hits("/hot")).toBe(1);
    const ram = r[3]!;
    expect(ram.body).toBe("x".repeat(1024));
    expect(ram.headers["content-type"]).toBe("text/css");
    expect(ram.headers["content-length"]).toBe("1024");
    expect(ram.headers["etag"]).toBe('"h1"');
    expect(ram.headers["x-served-by"]).toBe("edge");
    expect(ram.headers["date"]).toBe(r[0]!.headers["date"]); // the origin's Date
    expect(ram.headers["age"]).toMatch(/^\d+$/);
  });

  it("reports RAM hits in the access log's cache field", async () => {
    const hot = async () => (await accessLog(edge)).filter((l) => l.uri === "/hot").map((l) => l.cache);
    await waitFor(async () => (await hot()).length >= 4, { what: "the four /hot lines in access.log" });
    // each worker buffers its own lines: compared without their order
    expect((await hot()).sort()).toEqual(["HIT", "HIT-RAM", "HIT-RAM", "MISS"]);
  });

  it("counts Age up while the object sits in RAM, and expires it with its freshness", async () => {
    origin.route("/short", (_r, n) => ({ headers: { "cache-control": "max-age=2", age: "0" }, body: `s${n}` }));
    await seq("/short", 2);
    // until Age counts up (each poll is a RAM hit: nothing changes)
    const r = await waitFor(
      async () => {
        const x = await http(edge, "/short");
        return (x.headers["x-cache"] !== "HIT-RAM" || Number(x.headers["age"]) >= 1) && x;
      },
      { what: "Age >= 1 on /short" },
    );
    expect(r.headers["x-cache"]).toBe("HIT-RAM");
    expect(Number(r.headers["age"])).toBeGreaterThanOrEqual(1);
    // until it is no RAM hit any more: that first reply is the refetch
    const after = await waitFor(
      async () => {
        const x = await http(edge, "/short");
        return x.headers["x-cache"] !== "HIT-RAM" && x;
      },
      { what: "/short to expire from RAM" },
    );
    expect(after.headers["x-cache"]).not.toBe("HIT-RAM");
    expect(after.body).toBe("s2");
  });

  it("answers conditional requests with 304 from RAM (If-None-Match, If-Modified-Since)", async () => {
    const lm = "Tue, 01 Jun 2021 10:00:00 GMT";
    origin.route("/cond", { headers: { "cache-control": "max-age=600", etag: 'W/"c1"', "last-modified": lm }, body: "cond" });
    await seq("/cond", 2);
    const inm = await http(edge, "/cond", { headers: { "if-none-match": '"zz", "c1"' } });
    expect([inm.status, inm.headers["x-cache"], inm.body, inm.headers["etag"]]).toEqual([304, "HIT-RAM", "", 'W/"c1"']);
    const other = await http(edge, "/cond", { headers: { "if-none-match": '"nope"' } });
    expect([other.status, other.body]).toEqual([200, "cond"]);
    const ims = await http(edge, "/cond", { headers: { "if-modified-since": "Wed, 02 Jun 2021 10:00:00 GMT" } });
    expect([ims.status, ims.headers["x-cache"]]).toEqual([304, "HIT-RAM"]);
    const older = await http(edge, "/cond", { headers: { "if-modified-since": "Mon, 31 May 2021 10:00:00 GMT" } });
    expect([older.status, older.body]).toEqual([200, "cond"]);
    expect(origin.hits("/cond")).toBe(1);
  });

  it("answers HEAD from RAM without a body", async () => {
    origin.route("/head", { headers: { "cache-control": "max-age=600" }, body: "head-body" });
    await seq("/head", 2);
    const h = await http(edge, "/head", { method: "HEAD" });
    expect([h.status, h.headers["x-cache"], h.body, h.headers["content-length"]]).toEqual([200, "HIT-RAM", "", "9"]);
  });

  it("keeps Vary variants apart, all reachable through the base key", async () => {
    origin.route("/v", (r) => ({ headers: { "cache-control": "max-age=600", vary: "Accept-Encoding" }, body: `enc=${r.headers["accept-encoding"] ?? "none"}` }));
    const gz = { "accept-encoding": "gzip" };
    const br = { "accept-encoding": "br" };
    await seq("/v", 2, gz);
    await seq("/v", 2, br);
    const a = await http(edge, "/v", { headers: gz });
    const b = await http(edge, "/v", { headers: br });
    expect([a.headers["x-cache"], a.body, b.headers["x-cache"], b.body]).toEqual(["HIT-RAM", "enc=gzip", "HIT-RAM", "enc=br"]);
    expect(origin.hits("/v")).toBe(2);
  });

  it("never answers from RAM a request the policy bypasses", async () => {
    origin.route("/byp", { headers: { "cache-control": "max-age=600" }, body: "b" });
    await seq("/byp", 3);
    expect((await http(edge, "/byp")).headers["x-cache"]).toBe("HIT-RAM");
    expect((await http(edge, "/byp", { headers: { "x-preview": "1" } })).headers["x-cache"]).toBe("BYPASS");
    expect((await http(edge, "/byp", { headers: { authorization: "Bearer t" } })).headers["x-cache"]).toBe("BYPASS");
  });

  it("leaves large objects on disk", async () => {
    origin.route("/big", { headers: { "cache-control": "max-age=600" }, body: "b".repeat(250 * 1024) });
    const r = await seq("/big", 4);
    expect(r.map((x) => x.headers["x-cache"])).toEqual(["MISS", "HIT", "HIT", "HIT"]);
    expect(r[3]!.body.length).toBe(250 * 1024);
  });

  it("serves STALE-RAM within stale-while-revalidate, with exactly one background refresh under concurrency", async () => {
    origin.route("/swr", (_r, n) => ({ headers: { "cache-control": `max-age=${n > 1 ? 60 : 1}, stale-while-revalidate=30` }, body: `w${n}`, delayMs: n > 1 ? 300 : 0 }));
    await seq("/swr", 3);
    expect((await http(edge, "/swr")).headers["x-cache"]).toBe("HIT-RAM");
    await sleep(1300);
    const burst = await Promise.all(Array.from({ length: 30 }, () => http(edge, "/swr")));
    expect(burst.every((r) => r.body === "w1" && r.headers["x-cache"] === "STALE-RAM")).toBe(true);
    // until the background refresh stored w2 (polls meanwhile are served stale, no new fetch)
    const fresh = await waitFor(
      async () => {
        const x = await http(edge, "/swr");
        return x.body === "w2" && x;
      },
      { what: "the refreshed w2" },
    );
    expect([fresh.body, fresh.headers["x-cache"]]).toEqual(["w2", "HIT-RAM"]);
    expect(origin.hits("/swr")).toBe(2);
  });

  it("revalidates a stale RAM object with its ETag; the 304's headers reach the RAM copy", async () => {
    origin.route("/r304", (req) =>
      req.headers["if-none-match"] === '"r1"'
        ? { status: 304, headers: { etag: '"r1"', "cache-control": "max-age=60, stale-while-revalidate=30" } }
        : { headers: { etag: '"r1"', "cache-control": "max-age=1, stale-while-revalidate=30" }, body: "r304" },
    );
    await seq("/r304", 3);
    await sleep(1300);
    expect((await http(edge, "/r304")).headers["x-cache"]).toBe("STALE-RAM");
    // until the background revalidation's 304 reached the RAM copy
    await waitFor(async () => (await http(edge, "/r304")).headers["cache-control"] === "max-age=60, stale-while-revalidate=30", {
      what: "the 304's Cache-Control on the RAM copy",
    });
    const after = await seq("/r304", 3);
    expect(after.map((r) => r.body)).toEqual(["r304", "r304", "r304"]);
    expect(after[2]!.headers["x-cache"]).toBe("HIT-RAM");
    expect(after[2]!.headers["cache-control"]).toBe("max-age=60, stale-while-revalidate=30");
    expect(origin.hits("/r304")).toBe(2);
    expect(origin.requests.filter((q) => q.path === "/r304")[1]!.headers["if-none-match"]).toBe('"r1"');
  });

  it("drops the RAM copy when a successful POST invalidates the URL", async () => {
    origin.route("/post", (r, n) => (r.method === "POST" ? { body: "ok" } : { headers: { "cache-control": "max-age=600" }, body: `p${n}` }));
    await seq("/post", 3);
    expect((await http(edge, "/post")).headers["x-cache"]).toBe("HIT-RAM");
    await http(edge, "/post", { method: "POST", body: "x" });
    const after = await http(edge, "/post");
    expect(after.body).toBe("p3"); // origin requests: GET 1, POST 2, GET 3
    expect(after.headers["x-cache"]).not.toBe("HIT-RAM");
  });

  it("evicts least recently used objects when the dict is full", async () => {
    origin.setDefault((r) => ({ headers: { "cache-control": "max-age=600" }, body: r.path.padEnd(150 * 1024, ".") }));
    for (let i = 0; i < 12; i++) await seq(`/lru${i}`, 2);
    expect((await http(edge, "/lru11")).headers["x-cache"]).toBe("HIT-RAM");
    const first = await http(edge, "/lru0");
    expect(first.headers["x-cache"]).toBe("HIT"); // evicted from RAM, still on disk
    expect(first.body.startsWith("/lru0.")).toBe(true);
    expect(origin.hits("/lru0")).toBe(1);
  });
});
