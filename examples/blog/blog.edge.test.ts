// The blog's two pools and its cache key: `npx cdn-build test examples/blog/edge.policy.yaml`.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootPolicy, expectCacheStatus, expectHeader, expectOriginHits, startMockOrigin, type MockOrigin, type TestEdge } from "cdn-build/testing";

let app: MockOrigin;
let media: MockOrigin;
let edge: TestEdge;

beforeAll(async () => {
  app = await startMockOrigin();
  media = await startMockOrigin();
  edge = await bootPolicy(new URL("./edge.policy.yaml", import.meta.url), { origins: { app, media } });
});
afterAll(async () => {
  await edge?.stop();
  await app?.close();
  await media?.close();
});

describe("blog edge", () => {
  it("sends pages to the app with its internal Host, and sets the security headers", async () => {
    const res = await edge.get("/2026/hello");
    expectHeader(res, "Strict-Transport-Security", "max-age=31536000");
    expect(app.requests.at(-1)?.headers.host).toBe("blog.internal");
    expectOriginHits(media, undefined, 0);
  });

  it("keys on page and lang only: tracking parameters share one cached copy", async () => {
    expectCacheStatus(await edge.get("/archive?page=2&utm_source=mail"), "MISS");
    expectCacheStatus(await edge.get("/archive?utm_source=feed&page=2"), "HIT");
    expectCacheStatus(await edge.get("/archive?page=3"), "MISS");
    expectOriginHits(app, "/archive", 2);
  });

  it("never caches a logged-in author's view", async () => {
    for (let i = 0; i < 2; i++) expectCacheStatus(await edge.get("/2026/draft", { cookie: "wordpress_logged_in=abc" }), "BYPASS");
    expectOriginHits(app, "/2026/draft", 2);
  });
});
