/**
 * Never serve what a failed refresh, a purge or the edge's own error retired; never break on what an origin
 * sends (issue: "never serve retired content", "never break on what an origin or a burst sends").
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootEdge, type Edge } from "../support/edge.js";
import { startMockOrigin, type MockOrigin, type MockResponse } from "../support/mock-origin.js";
import { http, luaErrors } from "../support/http.js";
import { sleep, waitFor } from "../support/wait.js";
import { sendPurge } from "../../src/purge/client.js";
import type { Policy } from "../../src/policy/types.js";

const TOKEN = "refresh-token-0123456789";
let origin: MockOrigin;
const edges: Edge[] = [];

beforeAll(async () => {
  origin = await startMockOrigin();
});
afterAll(async () => {
  for (const e of edges) {
    expect(luaErrors(await e.errors())).toEqual([]);
    await e.stop();
  }
  await origin?.close();
});

async function edgeWith(cache: Policy["cache"], extra: Partial<Policy> = {}): Promise<Edge> {
  const e = await bootEdge(
    {
      name: "integrity",
      origins: { app: { servers: [{ address: origin.address }], retries: 0, readTimeout: "1s" } },
      cache,
      headers: { cacheStatus: "X-Cache" },
      purge: { token: { env: "PURGE_TOKEN" } },
      ...extra,
    },
    { env: { PURGE_TOKEN: TOKEN } },
  );
  edges.push(e);
  return e;
}

describe("a refresh that fails mid-body changes nothing (both tiers)", () => {
  const cuts: [string, MockResponse["cut"]][] = [
    ["reset", { afterBytes: 3, how: "reset" }],
    ["short body", { afterBytes: 3, how: "close" }],
    ["stalled past the read timeout", { afterBytes: 3, how: "stall" }],
  ];
  const modes: [string, Policy["cache"]][] = [
    ["revalidation", { ttl: {} }],
    ["stale-if-error", { ttl: {}, staleIfError: "1h" }],
    ["stale-while-revalidate", { ttl: {}, staleWhileRevalidate: "1h" }],
    ["RAM tier", { ttl: {}, staleIfError: "1h", ram: { size: "4m", minHits: 1 } }],
  ];
  for (const [mode, cache] of modes) {
    it(`${mode}: the old body is never served as fresh after a truncated, reset or stalled refresh`, async () => {
      const e = await edgeWith(cache);
      for (const [name, cut] of cuts) {
        const path = `/cut/${mode.replace(/\W/g, "")}/${name.replace(/\W/g, "")}`;
        // 1: the old object (fresh 1 s, with a validator); 2: the refresh, cut short; then the new object
        origin.route(path, (_req, n) =>
          n === 1
            ? { headers: { "cache-control": "max-age=1", etag: '"old"' }, body: "old body" }
            : n === 2
              ? { headers: { "cache-control": "max-age=300", etag: '"new"' }, body: "new body, longer", cut }
              : { headers: { "cache-control": "max-age=300", etag: '"new"' }, body: "new body, longer" },
        );
        await http(e, path);
        await http(e, path);
        await sleep(1100); // the clock is what makes the object stale
        let freshOld = 0;
        let served = 0;
        const deadline = Date.now() + 3500;
        let sawNew = false;
        while (Date.now() < deadline) {
          const r = await http(e, path);
          served++;
          if (r.body === "new body, longer") sawNew = true;
          // the old body may only come back labelled stale (within the windows the policy allows)
          if (r.body === "old body" && !/STALE/.test(r.headers["x-cache"] ?? "")) freshOld++;
          await sleep(50);
        }
        console.log(`${mode} / ${name}: ${served} requests, old body as fresh: ${freshOld}, origin requests ${origin.hits(path)}`);
        expect(freshOld, `${mode} / ${name}`).toBe(0);
        expect(sawNew, `${mode} / ${name}: the new body is served once the origin sends it whole`).toBe(true);
      }
    }, 60_000);
  }
});

describe("a purge retires a fetch already in flight", () => {
  it("the answer of a fetch that started before the purge is not served after it (3 of 3)", async () => {
    const e = await edgeWith({ ttl: { "200": "1h" } });
    let old = 0;
    for (let i = 0; i < 3; i++) {
      const path = `/race/${i}`;
      origin.route(path, (_req, n) => ({ headers: { "cache-control": "max-age=3600" }, body: `v${n}`, delayMs: n === 1 ? 600 : 0 }));
      const slow = http(e, path); // the fetch is under way...
      await waitFor(async () => origin.hits(path) === 1, { what: "the fetch to reach the origin" });
      const [p] = await sendPurge([e.baseUrl], "/__purge", { urls: [`http://127.0.0.1${path}`] }, { token: TOKEN });
      expect(p!.ok).toBe(true); // ...when the purge answers
      expect((await slow).body).toBe("v1");
      const after = await http(e, path);
      if (after.body === "v1") old++;
    }
    expect(old).toBe(0);
  });
});

describe("errors made by the edge itself are never stored", () => {
  it("origin down then up: a cold URL and a no-store URL get the origin's answer, not a stored 502/504", async () => {
    const down = await startMockOrigin();
    const port = down.port;
    await down.close(); // connection refused
    const e = await bootEdge({
      name: "down",
      origins: { app: { servers: [{ address: `127.0.0.1:${port}` }], retries: 0, connectTimeout: "1s" } },
      cache: { ttl: { any: "1h" }, staleIfError: "1h" },
      headers: { cacheStatus: "X-Cache" },
    });
    edges.push(e);
    expect((await http(e, "/cold")).status).toBe(502);
    expect((await http(e, "/nostore")).status).toBe(502);
    const up = await startMockOrigin({ port });
    try {
      up.route("/cold", { headers: { "cache-control": "max-age=60" }, body: "cold ok" });
      up.route("/nostore", { headers: { "cache-control": "no-store" }, body: "fresh every time" });
      const c = await http(e, "/cold");
      expect([c.status, c.body]).toEqual([200, "cold ok"]);
      const n = await http(e, "/nostore");
      expect([n.status, n.body]).toEqual([200, "fresh every time"]);
      expect(up.hits("/cold")).toBe(1);
    } finally {
      await up.close();
    }
  });
});

describe("one client request, at most one origin request", () => {
  it("a revalidation answered with something unstorable is relayed, not fetched again", async () => {
    const e = await edgeWith({ ttl: {} });
    const numbers: number[] = [];
    origin.route("/unstorable", (_req, n) => {
      numbers.push(n);
      return n === 1
        ? { headers: { "cache-control": "max-age=1", etag: '"a"' }, body: "first" }
        : { headers: { "cache-control": "no-store", etag: '"b"' }, body: `answer ${n}` };
    });
    expect((await http(e, "/unstorable")).body).toBe("first");
    await sleep(1100);
    const r = await http(e, "/unstorable");
    expect(r.body).toBe("answer 2");
    const r3 = await http(e, "/unstorable");
    expect(r3.body).toBe("answer 3");
    expect(numbers).toEqual([1, 2, 3]);
  });
});

describe("duplicated and garbled caching headers never break a response (fuzz)", () => {
  // a small deterministic generator (no dependency on the run's randomness)
  let seed = 20261201;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const values: Record<string, string[]> = {
    date: ["Tue, 01 Dec 2026 05:00:00 GMT", "garbage", "", "Tue, 01 Dec 2026 05:00:00 UTC", "0"],
    expires: ["Tue, 01 Dec 2026 05:00:00 GMT", "0", "-1", "never", "Thu, 01 Jan 2099 00:00:00 GMT"],
    age: ["0", "7200", "7200.0", "-5", "abc", "7200, 0", "99999999999999999999"],
    etag: ['"x"', 'W/"y"', "unquoted", '""', '"a", "b"'],
    "last-modified": ["Tue, 01 Dec 2026 04:00:00 GMT", "yesterday", ""],
    "cache-control": ["max-age=60", "max-age=60, max-age=0", "max-age =3600", "s-maxage=x", "no-store", "private, max-age=60", "max-age=60, stale-while-revalidate=10", 'max-age="30"', ",,,", "no-cache"],
    "cdn-cache-control": ["max-age=60", "garbage!", "no-store"],
    vary: ["Accept-Encoding", "*", "accept-encoding, Accept", ""],
    "cache-tag": ["a,b", "  ", "x y z"],
  };
  it("200 responses with random duplicated / invalid Date, Expires, Age, ETag, Cache-Control, Vary: no Lua error, no empty reply, on both tiers", async () => {
    const e = await edgeWith({ ttl: { "200": "1m" }, staleIfError: "1h", ram: { size: "4m", minHits: 1 } });
    const paths: string[] = [];
    for (let i = 0; i < 120; i++) {
      const headers: Record<string, string | string[]> = {};
      for (const [name, vs] of Object.entries(values)) {
        const r = rnd();
        if (r < 0.35) continue;
        headers[name] = r < 0.7 ? pick(vs) : [pick(vs), pick(vs)]; // a repeated header line
      }
      const path = `/fuzz/${i}`;
      origin.route(path, { headers, body: `fuzz ${i}` });
      paths.push(path);
    }
    let empty = 0;
    for (let round = 0; round < 3; round++) {
      for (const p of paths) {
        const r = await http(e, p);
        if (r.status !== 200 || r.body === "") empty++;
      }
    }
    expect(empty).toBe(0);
    expect(luaErrors(await e.errors())).toEqual([]);
  }, 60_000);
});
