// The shop policy's own tests: `npx cdn-build test examples/shop/edge.policy.ts` runs them.
import { afterAll, beforeAll, beforeEach, describe, it } from "vitest";
import {
  bootPolicy,
  expectCacheStatus,
  expectHeader,
  expectNoErrors,
  expectNoHeader,
  expectOriginHits,
  expectStatus,
  startMockOrigin,
  type MockOrigin,
  type TestEdge,
} from "cdn-build/testing";

let origin: MockOrigin;
let edge: TestEdge;

beforeAll(async () => {
  origin = await startMockOrigin();
  edge = await bootPolicy(new URL("./edge.policy.ts", import.meta.url), { origin });
});
afterAll(async () => {
  await edge?.stop();
  await origin?.close();
});
beforeEach(() => origin.reset());

describe("shop edge", () => {
  it("answers its health check without asking the origin", async () => {
    const res = await edge.get("/health");
    expectStatus(res, 200);
    expectOriginHits(origin, undefined, 0);
  });

  it("caches a page: one origin request, then hits", async () => {
    origin.route("/products", { headers: { "cache-control": "max-age=300", server: "app/1.0", "x-powered-by": "php" }, body: "catalogue" });
    expectCacheStatus(await edge.get("/products"), "MISS");
    const hit = await edge.get("/products");
    expectCacheStatus(hit, ["HIT", "HIT-RAM"]);
    expectOriginHits(origin, "/products", 1);
    expectHeader(hit, "X-Served-By", "edge");
    expectNoHeader(hit, "X-Powered-By");
  });

  it("keys on every query parameter, in any order", async () => {
    origin.route("/search", (req) => ({ headers: { "cache-control": "max-age=300" }, body: req.url }));
    expectCacheStatus(await edge.get("/search?q=shoes&page=2"), "MISS");
    expectCacheStatus(await edge.get("/search?page=2&q=shoes"), ["HIT", "HIT-RAM"]);
    expectCacheStatus(await edge.get("/search?q=boots&page=2"), "MISS");
    expectOriginHits(origin, "/search", 2);
  });

  it("sends a signed-in shopper (session cookie) to the origin every time", async () => {
    origin.route("/cart", { headers: { "cache-control": "max-age=300" }, body: "your cart" });
    for (let i = 0; i < 2; i++) expectCacheStatus(await edge.get("/cart", { cookie: "session=abc" }), "BYPASS");
    expectOriginHits(origin, "/cart", 2);
  });

  it("keeps serving a stale copy while the origin fails", async () => {
    origin.route("/offers", (_req, n) => (n === 1 ? { headers: { "cache-control": "max-age=1" }, body: "offers v1" } : { status: 503, body: "down" }));
    expectCacheStatus(await edge.get("/offers"), "MISS");
    await new Promise((r) => setTimeout(r, 2100));
    const res = await edge.get("/offers");
    expectStatus(res, 200);
    expectCacheStatus(res, ["STALE", "STALE-RAM"]);
  });

  it("logs no error", async () => {
    await expectNoErrors(edge);
  });
});
