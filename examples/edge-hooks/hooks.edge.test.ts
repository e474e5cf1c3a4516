// The hooks of this policy, booted in nginx (the Lua compiled from hooks/*.ts) and tested over HTTP:
// `npx cdn-build test examples/edge-hooks/edge.policy.ts`. (hooks/*.ts can also be unit-tested in memory
// with cdn-build/edge/testing; see docs/hooks.md.)
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootPolicy, expectHeader, expectNoErrors, expectNoHeader, expectStatus, startMockOrigin, type MockOrigin, type TestEdge } from "cdn-build/testing";

let origin: MockOrigin;
let edge: TestEdge;

beforeAll(async () => {
  origin = await startMockOrigin();
  origin.setDefault((req) => ({
    headers: { "content-type": "text/html", "x-backend": "php-8.3", "x-powered-by": "PHP/8.3", "cache-control": "no-store" },
    body: `<html><body><h1>${req.path}</h1></body></html>`,
  }));
  edge = await bootPolicy(new URL("./edge.policy.ts", import.meta.url), { origin });
});
afterAll(async () => {
  await edge?.stop();
  await origin?.close();
});

describe("edge hooks", () => {
  it("refuses a blocked country with 451 before the origin sees the request", async () => {
    const before = origin.hits();
    const res = await edge.get("/", { "x-geoip-country-code": "XX" });
    expectStatus(res, 451);
    expect(origin.hits()).toBe(before);
  });

  it("tells the origin the client's country and relabels its backend header", async () => {
    const res = await edge.get("/home", { "x-geoip-country-code": "FR" });
    expectStatus(res, 200);
    expect(origin.requests.at(-1)?.headers["x-edge-country"]).toBe("FR");
    expectHeader(res, "X-Backend", "current");
    expectNoHeader(res, "X-Powered-By");
  });

  it("sends /beta/ without the beta cookie home, and adds the notice to beta pages with it", async () => {
    const away = await edge.get("/beta/page");
    expectStatus(away, 302);
    expectHeader(away, "Location", /\/$/);
    const beta = await edge.get("/beta/page", { cookie: "beta=1" });
    expectStatus(beta, 200);
    expect(beta.body).toContain('<p class="beta">You are seeing the beta.</p></body>');
  });

  it("logs the country the access hook decided on", async () => {
    await edge.get("/logged", { "x-geoip-country-code": "DE" });
    await expect.poll(async () => (await edge.accessLog()).find((l) => l.uri === "/logged")?.hook, { timeout: 5000 }).toContain("country=DE");
    await expectNoErrors(edge);
  });
});
