/**
 * Soft purge: the object is marked stale (purge marker "m:<key>" with flag 2 in `cdn_purge`), not removed.
 * These tests need the cache tier that reads the markers (the RFC 9111 / RAM tier work on
 * lua-src/features/cache.ts): they fail on a branch without it.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { bootEdge, type Edge } from "../support/edge.js";
import { startMockOrigin, type MockOrigin } from "../support/mock-origin.js";
import { policy } from "../support/policy.js";
import { http, luaErrors } from "../support/http.js";
import { waitFor } from "../support/wait.js";
import type { Policy } from "../../src/policy/types.js";
import { sendPurge, type PurgeSpec } from "../../src/purge/client.js";

const TOKEN = "soft-token-0123456789";
let origin: MockOrigin;
let swr: Edge;
let plain: Edge;

const softPolicy = (name: string, cache: Policy["cache"]) =>
  policy(origin, { name, cache, headers: { cacheStatus: "X-Cache" }, purge: { token: { env: "PURGE_TOKEN" } } });

async function purgeOn(e: Edge, spec: PurgeSpec) {
  const [r] = await sendPurge([e.baseUrl], "/__purge", spec, { token: TOKEN });
  expect(r!.ok).toBe(true);
  return r!.answer!;
}

const u = (path: string) => `http://127.0.0.1${path}`;
const STALE = ["STALE", "UPDATING"];

describe("soft purge", () => {
  beforeAll(async () => {
    origin = await startMockOrigin();
    origin.setDefault((req, n) => ({ headers: { "cache-control": "max-age=3600", "cache-tag": "soft" }, body: `${req.path}#${n}`, delayMs: 100 }));
    const env = { env: { PURGE_TOKEN: TOKEN } };
    swr = await bootEdge(softPolicy("soft-swr", { ttl: { "200": "1h" }, staleWhileRevalidate: "60s", staleIfError: "1h" }), env);
    plain = await bootEdge(softPolicy("soft-plain", { ttl: { "200": "1h" } }), env);
  });
  afterEach(async () => {
    for (const e of [swr, plain]) expect(luaErrors(await e.errors())).toEqual([]);
  });
  afterAll(async () => {
    for (const e of [swr, plain]) await e?.stop();
    await origin?.close();
  });

  async function warm(e: Edge, path: string) {
    await http(e, path);
    expect((await http(e, path)).headers["x-cache"]).toBe("HIT");
  }

  /** Waits until the background refresh has stored the new copy: `path` is a HIT with `body`. */
  async function refreshed(e: Edge, path: string, body: string) {
    await waitFor(
      async () => {
        const r = await http(e, path);
        return r.headers["x-cache"] === "HIT" && r.body === body;
      },
      { timeout: 5000, what: `a HIT with the refreshed body ${body}` },
    );
  }

  it("keeps the object but serves it stale with exactly one background refresh (stale-while-revalidate)", async () => {
    await warm(swr, "/s1");
    const a = await purgeOn(swr, { urls: [u("/s1")], soft: true });
    expect(a).toMatchObject({ soft: true, count: 1, files: 0 });
    const replies = await Promise.all(Array.from({ length: 10 }, () => http(swr, "/s1")));
    for (const r of replies) {
      expect(STALE).toContain(r.headers["x-cache"]);
      expect(r.body).toBe("/s1#1");
    }
    await refreshed(swr, "/s1", "/s1#2");
    expect(origin.hits("/s1")).toBe(2);
    const fresh = await http(swr, "/s1");
    expect(fresh.headers["x-cache"]).toBe("HIT");
    expect(fresh.body).toBe("/s1#2");
  });

  it("refetches on the next request when there is no stale-while-revalidate window", async () => {
    await warm(plain, "/s2");
    await purgeOn(plain, { urls: [u("/s2")], soft: true });
    const r = await http(plain, "/s2");
    expect(["EXPIRED", "MISS", "REVALIDATED"]).toContain(r.headers["x-cache"]);
    expect(r.body).toBe("/s2#2");
    expect(origin.hits("/s2")).toBe(2);
    expect((await http(plain, "/s2")).headers["x-cache"]).toBe("HIT");
  });

  it("soft purge by tag and of everything mark every object stale", async () => {
    await warm(swr, "/s3");
    await warm(swr, "/s4");
    await purgeOn(swr, { tags: ["soft"], soft: true });
    expect(STALE).toContain((await http(swr, "/s3")).headers["x-cache"]);
    await refreshed(swr, "/s3", "/s3#2");
    expect(origin.hits("/s3")).toBe(2);
    await purgeOn(swr, { all: true, soft: true });
    expect(STALE).toContain((await http(swr, "/s4")).headers["x-cache"]);
    await refreshed(swr, "/s4", "/s4#2");
    expect(origin.hits("/s4")).toBe(2);
  });

  it("a soft-purged object still protects the origin with stale-if-error", async () => {
    origin.route("/s5", (_req, n) => (n === 1 ? { headers: { "cache-control": "max-age=3600" }, body: "good" } : { status: 500, body: "down" }));
    await warm(swr, "/s5");
    await purgeOn(swr, { urls: [u("/s5")], soft: true });
    const r = await http(swr, "/s5");
    expect(r.status).toBe(200);
    expect(r.body).toBe("good");
  });
});
