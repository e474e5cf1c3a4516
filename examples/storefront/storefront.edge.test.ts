// The storefront's rules, one mock origin per pool: `npx cdn-build test examples/storefront/edge.policy.ts`.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  bootPolicy,
  expectCacheStatus,
  expectHeader,
  expectNoErrors,
  expectOriginHits,
  expectStatus,
  startMockOrigin,
  type MockOrigin,
  type TestEdge,
} from "cdn-build/testing";

const pools = ["eu", "us", "api", "images", "prerender"] as const;
const origin = {} as Record<(typeof pools)[number], MockOrigin>;
let edge: TestEdge;

beforeAll(async () => {
  for (const p of pools) origin[p] = await startMockOrigin();
  edge = await bootPolicy(new URL("./edge.policy.ts", import.meta.url), { origins: origin });
});
afterAll(async () => {
  await edge?.stop();
  for (const o of Object.values(origin)) await o.close();
});

describe("storefront rules", () => {
  it("answers /ping itself and redirects the retired sale", async () => {
    const ping = await edge.get("/ping");
    expectStatus(ping, 200);
    expect(ping.body).toBe("pong");
    const sale = await edge.get("/sale-2023");
    expectStatus(sale, 301);
    expectHeader(sale, "Location", /\/sale$/);
  });

  it("closes /admin/ to addresses outside the office network", async () => {
    expectStatus(await edge.get("/admin/users"), 403);
    expectOriginHits(origin.eu, "/admin/users", 0);
  });

  it("sends /api/ to the API pool without the prefix, with its Host, never cached", async () => {
    origin.api.route("/orders", { headers: { "cache-control": "max-age=600" }, body: "[]" });
    for (let i = 0; i < 2; i++) expectCacheStatus(await edge.get("/api/orders"), "BYPASS");
    expectOriginHits(origin.api, "/orders", 2);
    expect(origin.api.requests.at(-1)?.headers.host).toBe("api.internal");
  });

  it("gives crawlers the pre-rendered page", async () => {
    origin.prerender.route("/product/1", { body: "<html>rendered</html>", headers: { "content-type": "text/html" } });
    const res = await edge.get("/product/1", { "user-agent": "Mozilla/5.0 (compatible; Googlebot/2.1)" });
    expect(res.body).toBe("<html>rendered</html>");
    expectOriginHits(origin.eu, "/product/1", 0);
  });

  it("caches assets for a year on the client and compresses text", async () => {
    origin.eu.route("/assets/app.css", { headers: { "content-type": "text/css" }, body: "body{margin:0}".repeat(200) });
    const first = await edge.get("/assets/app.css", { "accept-encoding": "gzip" });
    expectHeader(first, "Cache-Control", "public, max-age=31536000, immutable");
    expectHeader(first, "Content-Encoding", "gzip");
    expectCacheStatus(await edge.get("/assets/app.css", { "accept-encoding": "gzip" }), "HIT");
    expectOriginHits(origin.eu, "/assets/app.css", 1);
  });

  it("logs no error", async () => {
    await expectNoErrors(edge);
  });
});
