/**
 * One client address for every feature (policy `clientAddress`, lua-src/core/client-address.ts): behind a
 * trusted proxy the gates, the rules engine, A/B splits by IP, the access log and the X-Real-IP sent to the
 * origin all see the client the proxy reports, however the proxy writes the hop.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { accessLog, bootEdge, type Edge } from "../support/edge.js";
import { waitFor } from "../support/wait.js";
import { startMockOrigin, type MockOrigin } from "../support/mock-origin.js";
import { http, luaErrors } from "../support/http.js";
import { compile } from "../../src/compile.js";
import type { Policy } from "../../src/policy/types.js";

let origin: MockOrigin;
let edge: Edge;

beforeAll(async () => {
  origin = await startMockOrigin();
  origin.setDefault((req) => ({ body: `real-ip ${req.headers["x-real-ip"]} variant ${req.headers["x-hero"] ?? "-"}` }));
  edge = await bootEdge({
    name: "client",
    origins: { app: { servers: [{ address: origin.address }], retries: 0 } },
    // the test client connects from 127.0.0.1: it plays the CDN in front of the edge
    clientAddress: { trustedProxies: ["127.0.0.1/32", "10.0.0.0/8"] },
    ipRules: { deny: ["203.0.113.0/24", "2001:db8:bad::/48"] },
    accessLog: { format: "json" },
    rules: [
      { name: "no-partners", when: { clientIp: ["198.51.100.0/24"] }, then: { deny: 451 } },
      { name: "hero", when: { path: { prefix: "/hero" } }, then: { experiment: { name: "hero", by: "ip", variants: [{ name: "x", weight: 50 }, { name: "y", weight: 50 }], header: "X-Hero" } } },
    ],
  });
});

afterAll(async () => {
  await edge?.stop();
  await origin?.close();
});

const from = (xff: string, path = "/p") => http(edge, path, { headers: { "x-forwarded-for": xff } });

describe("client address behind trusted proxies", () => {
  it("reads hops written with a port or in brackets as their address (a proxy that writes ports cannot defeat a deny list)", async () => {
    for (const hop of ["203.0.113.5:4711", "[203.0.113.5]", "[2001:db8:bad::1]", "[2001:db8:bad::1]:443", " 203.0.113.5 ", "203.0.113.5:80, 10.1.1.1:8080"]) {
      expect((await from(hop)).status, hop).toBe(403);
    }
    for (const hop of ["203.0.114.5:4711", "[2001:db8:bae::1]:443"]) expect((await from(hop)).status, hop).toBe(200);
  });

  it("matches IPv4 inside IPv6 (mapped, compatible, NAT64) against IPv4 lists", async () => {
    for (const hop of ["::ffff:203.0.113.5", "::203.0.113.5", "64:ff9b::203.0.113.5", "64:ff9b::cb00:7105"]) {
      expect((await from(hop)).status, hop).toBe(403);
    }
    expect((await from("::1")).status).toBe(200);
  });

  it("gives the rules engine's clientIp condition the client, not the proxy", async () => {
    const r = await from("198.51.100.7");
    expect(r.status).toBe(451);
    expect((await from("198.51.101.7")).status).toBe(200);
  });

  it("splits A/B experiments by the client address: stable per client, spread across clients", async () => {
    const seen = new Map<string, string>();
    for (let i = 1; i <= 40; i++) {
      const ip = `192.0.2.${i}`;
      const r = await from(ip, "/hero");
      const v = /variant (\w)/.exec(r.body)![1]!;
      seen.set(ip, v);
      expect((await from(ip, "/hero")).body).toContain(`variant ${v}`);
    }
    const counts = [...seen.values()].reduce((m, v) => m.set(v, (m.get(v) ?? 0) + 1), new Map<string, number>());
    expect(counts.get("x") ?? 0).toBeGreaterThan(5);
    expect(counts.get("y") ?? 0).toBeGreaterThan(5);
  });

  it("sends the client as X-Real-IP and logs it", async () => {
    const r = await from("192.0.2.77, 10.2.3.4");
    expect(r.body).toContain("real-ip 192.0.2.77");
    // the log is buffered (written within a second)
    await waitFor(async () => (await accessLog(edge)).some((l) => l.client === "192.0.2.77"), { what: "the line of 192.0.2.77 in access.log" });
  });

  it("ignores the header from a peer that is not trusted", async () => {
    const untrusted = await bootEdge({
      name: "untrusted",
      origins: { app: { servers: [{ address: origin.address }], retries: 0 } },
      clientAddress: { trustedProxies: ["10.0.0.0/8"] },
      ipRules: { deny: ["203.0.113.0/24"] },
    });
    try {
      const r = await http(untrusted, "/p", { headers: { "x-forwarded-for": "192.0.2.1" } });
      expect(r.status).toBe(200);
      expect(r.body).toContain("real-ip 127.0.0.1");
      // a forged header naming a denied address does not get the peer refused either
      expect((await http(untrusted, "/p", { headers: { "x-forwarded-for": "203.0.113.9" } })).status).toBe(200);
    } finally {
      await untrusted.stop();
    }
  });

  it("writes no Lua error", async () => {
    expect(luaErrors(await edge.errors())).toEqual([]);
  });
});

describe("client address: policy checks", () => {
  const base = { name: "c", listen: { http: 8080 }, origins: { app: { servers: [{ address: "127.0.0.1:3000" }] } } };
  const codes = (p: object) => compile({ ...base, ...p } as Policy).diagnostics.map((d) => `${d.code} ${d.path}`);
  it("refuses a bad proxy block, warns on an empty list, refuses trusted proxies given twice", () => {
    expect(codes({ clientAddress: { trustedProxies: ["10.0.0.0/33"] } })).toEqual(["CDN3090 /clientAddress/trustedProxies/0"]);
    expect(codes({ clientAddress: { trustedProxies: [] } })).toEqual(["CDN3091 /clientAddress/trustedProxies"]);
    expect(codes({ clientAddress: { trustedProxies: ["10.0.0.0/8"] }, ipRules: { deny: ["192.0.2.1"], trustedProxies: ["10.0.0.0/8"] } })).toEqual(["CDN3092 /ipRules/trustedProxies"]);
  });
});
