import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootEdge, type Edge } from "../support/edge.js";
import { startMockOrigin, type MockOrigin } from "../support/mock-origin.js";
import { http, luaErrors } from "../support/http.js";

let origin: MockOrigin;
let down: MockOrigin;
let edge: Edge;
let edgeDown: Edge;

const headers = {
  response: { set: { "X-Served-By": "edge", "X-Frame-Options": "DENY" }, remove: ["Server", "X-Powered-By"] },
  request: { set: { "X-Edge": "1" }, remove: ["X-Debug"] },
  cacheStatus: "X-Cache",
};

describe("headers", () => {
  beforeAll(async () => {
    origin = await startMockOrigin();
    origin.setDefault({ headers: { "x-powered-by": "php", server: "apache" }, body: "ok" });
    origin.route("/missing", { status: 404, headers: { "x-powered-by": "php" }, body: "nope" });
    edge = await bootEdge({ name: "hdr", origins: { app: { servers: [{ address: origin.address }] } }, cache: {}, headers, health: {} });
    down = await startMockOrigin();
    const addr = down.address;
    await down.close();
    edgeDown = await bootEdge({ name: "hdr-down", origins: { app: { servers: [{ address: addr }], retries: 0 } }, headers });
  });
  afterAll(async () => {
    for (const e of [edge, edgeDown]) {
      if (!e) continue;
      expect(luaErrors(await e.errors())).toEqual([]);
      await e.stop();
    }
    await origin?.close();
  });

  function expectHeaderPolicy(h: Record<string, string>) {
    expect(h["x-served-by"]).toBe("edge");
    expect(h["x-frame-options"]).toBe("DENY");
    expect(h["server"]).toBeUndefined();
    expect(h["x-powered-by"]).toBeUndefined();
  }

  it("sets and removes response headers on a 200", async () => {
    const r = await http(edge, "/ok");
    expect(r.status).toBe(200);
    expectHeaderPolicy(r.headers);
    expect(r.headers["x-cache"]).toBe("MISS");
  });

  it("sets and removes response headers on an origin 404", async () => {
    const r = await http(edge, "/missing");
    expect(r.status).toBe(404);
    expectHeaderPolicy(r.headers);
  });

  it("sets and removes response headers on nginx's own 502", async () => {
    const r = await http(edgeDown, "/any");
    expect([502, 504]).toContain(r.status);
    expectHeaderPolicy(r.headers);
  });

  it("sets and removes response headers on the health endpoint", async () => {
    const r = await http(edge, "/health");
    expect(r.status).toBe(200);
    expect(r.body).toBe("ok\n");
    expectHeaderPolicy(r.headers);
    expect(r.headers["x-cache"]).toBeUndefined();
    expect(origin.hits("/health")).toBe(0);
  });

  it("changes request headers sent to the origin", async () => {
    await http(edge, "/req", { headers: { "x-debug": "1" } });
    const req = origin.requests.find((r) => r.path === "/req")!;
    expect(req.headers["x-edge"]).toBe("1");
    expect(req.headers["x-debug"]).toBeUndefined();
  });

  it("keeps the purge endpoint off the proxy path, restricted and uncacheable", async () => {
    const r = await http(edge, "/__purge", { method: "POST" });
    // no credentials in this policy: every purge request is refused
    expect(r.status).toBe(403);
    expect(r.headers["cache-control"]).toBe("no-store");
    expect(origin.hits("/__purge")).toBe(0);
    expectHeaderPolicy(r.headers);
  });
});
