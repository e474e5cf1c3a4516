// The gates of this policy, in front of a mock origin: `npx cdn-build test examples/gated/edge.policy.ts`.
// The secrets the policy reads with env() are given to nginx by the test.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootPolicy, expectNoErrors, expectOriginHits, expectStatus, startMockOrigin, type MockOrigin, type TestEdge } from "cdn-build/testing";

let origin: MockOrigin;
let edge: TestEdge;

beforeAll(async () => {
  origin = await startMockOrigin();
  edge = await bootPolicy(new URL("./edge.policy.ts", import.meta.url), {
    origin,
    env: { EDGE_SECRET: "s3cret-current", EDGE_SECRET_NEXT: "s3cret-next", JWT_SECRET: "jwt-secret-for-tests", DOWNLOAD_KEY: "download-key" },
  });
});
afterAll(async () => {
  await edge?.stop();
  await origin?.close();
});

/** A request as the CDN relays it: the client's address in X-Forwarded-For, and the shared secret. */
const relayed = (client: string, secret = "s3cret-current") => ({ "x-forwarded-for": client, "x-origin-secret": secret });

describe("gated edge", () => {
  it("passes traffic relayed by the CDN with either secret of a rotation, and refuses it without", async () => {
    expectStatus(await edge.get("/products", relayed("192.0.2.10")), 200);
    expectStatus(await edge.get("/products", relayed("192.0.2.10", "s3cret-next")), 200);
    expectStatus(await edge.get("/products", relayed("192.0.2.10", "guess")), 403);
    expectStatus(await edge.get("/products", { "x-forwarded-for": "192.0.2.10" }), 403);
  });

  it("refuses a denied client address, as the CDN reports it", async () => {
    expectStatus(await edge.get("/products?x=1", relayed("203.0.113.9")), 403);
    expectOriginHits(origin, "/products?x=1", 0);
  });

  it("blocks SQL injection and WordPress probes in the WAF", async () => {
    expectStatus(await edge.get("/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--", relayed("192.0.2.10")), 403);
    expectStatus(await edge.get("/wp-login.php", relayed("192.0.2.10")), 403);
    expectOriginHits(origin, "/wp-login.php", 0);
  });

  it("asks for a token on the account area and a signature on downloads", async () => {
    expectStatus(await edge.get("/account/orders", relayed("192.0.2.10")), 401);
    expectStatus(await edge.get("/downloads/report.pdf", relayed("192.0.2.10")), 403);
    expect(origin.hits("/account/orders") + origin.hits("/downloads/report.pdf")).toBe(0);
  });

  it("logs no error", async () => {
    await expectNoErrors(edge);
  });
});
