import { afterEach, describe, expect, it } from "vitest";
import { bootEdge, type Edge } from "../support/edge.js";
import { startMockOrigin, type MockOrigin } from "../support/mock-origin.js";
import { http, luaErrors } from "../support/http.js";

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!();
});
async function origin(): Promise<MockOrigin> {
  const o = await startMockOrigin();
  cleanup.push(() => o.close());
  return o;
}
async function edge(p: Parameters<typeof bootEdge>[0]): Promise<Edge> {
  const e = await bootEdge(p);
  cleanup.push(async () => {
    expect(luaErrors(await e.errors())).toEqual([]);
    await e.stop();
  });
  return e;
}

describe("origins", () => {
  it("fails over to the backup server when the primary is down", async () => {
    const primary = await origin();
    const backup = await origin();
    const e = await edge({
      name: "failover",
      origins: { app: { servers: [{ address: primary.address }, { address: backup.address, backup: true }] } },
    });
    expect((await http(e, "/a")).headers["x-origin-port"]).toBe(String(primary.port));
    expect(backup.hits()).toBe(0);
    await primary.close();
    const r = await http(e, "/b");
    expect(r.status).toBe(200);
    expect(r.headers["x-origin-port"]).toBe(String(backup.port));
  });

  it("retries the next server on a 502/503/504", async () => {
    const bad = await origin();
    const good = await origin();
    bad.setDefault({ status: 503, body: "busy" });
    const e = await edge({
      name: "retry",
      origins: { app: { servers: [{ address: bad.address }, { address: good.address }], retries: 1 } },
    });
    for (let i = 0; i < 6; i++) expect((await http(e, `/r${i}`)).status).toBe(200);
    expect(good.hits()).toBe(6);
  });

  it("spreads requests by weight (3:1 over 100 requests)", async () => {
    const heavy = await origin();
    const light = await origin();
    const e = await edge({
      name: "weights",
      origins: { app: { servers: [{ address: heavy.address, weight: 3 }, { address: light.address, weight: 1 }] } },
      workers: { processes: 1 },
    });
    for (let i = 0; i < 100; i++) await http(e, `/w${i}`);
    expect(heavy.hits() + light.hits()).toBe(100);
    expect(heavy.hits()).toBeGreaterThanOrEqual(70);
    expect(heavy.hits()).toBeLessThanOrEqual(80);
  });

  it("sends the Host header, X-Forwarded-For and X-Real-IP to the origin", async () => {
    const o = await origin();
    const plain = await edge({ name: "host", origins: { app: { servers: [{ address: o.address }] } } });
    await http(plain, "/h", { headers: { host: "shop.example" } });
    expect(o.requests[0]!.headers.host).toBe("shop.example");
    expect(o.requests[0]!.headers["x-real-ip"]).toBe("127.0.0.1");
    expect(o.requests[0]!.headers["x-forwarded-for"]).toBe("127.0.0.1");
    const fixed = await edge({ name: "host2", origins: { app: { servers: [{ address: o.address }], hostHeader: "app.internal" } } });
    await http(fixed, "/h2", { headers: { host: "shop.example", "x-forwarded-for": "10.1.1.1" } });
    const req = o.requests.find((r) => r.path === "/h2")!;
    expect(req.headers.host).toBe("app.internal");
    expect(req.headers["x-forwarded-for"]).toBe("10.1.1.1, 127.0.0.1");
  });

  it("answers 502 when every server is down", async () => {
    const o = await origin();
    const e = await edge({ name: "down", origins: { app: { servers: [{ address: o.address }], retries: 0 } } });
    await o.close();
    expect([502, 504]).toContain((await http(e, "/x")).status);
  });
});
