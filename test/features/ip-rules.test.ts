import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootEdge, buildForTest, nginxBinary, type Edge } from "../support/edge.js";
import { startMockOrigin, type MockOrigin } from "../support/mock-origin.js";
import { codes, policy } from "../support/policy.js";
import { http, luaErrors } from "../support/http.js";
import { compile } from "../../src/compile.js";
import { freePort, startBundle } from "../../src/runtime/nginx.js";
import type { IpRules, Policy } from "../../src/policy/types.js";
import { compileRanges, rangesContain } from "../../src/util/ip-ranges.js";

let origin: MockOrigin;
beforeAll(async () => {
  origin = await startMockOrigin();
});
afterAll(async () => {
  await origin?.close();
});

const ipPolicy = (gate: IpRules, extra: Partial<Policy> = {}) => policy(origin, { name: "ip", health: { path: "/health" }, ipRules: gate, ...extra });

const from = (edge: Edge, xff: string, path = "/p") => http(edge, path, { headers: { "x-forwarded-for": xff } });

describe("ip rules: compiled ranges", () => {
  it("sorts and merges blocks, folds IPv4-mapped IPv6 into IPv4", () => {
    const set = compileRanges(["10.0.1.0/24", "10.0.0.0/24", "10.0.2.0/23", "192.168.0.1", "::ffff:172.16.0.0/112", "2001:db8::/33", "2001:db8:8000::/33"]);
    expect(set.v4.s).toEqual([0x0a000000, 0xac100000, 0xc0a80001]);
    expect(set.v4.e).toEqual([0x0a0003ff, 0xac10ffff, 0xc0a80001]);
    expect(set.v6.s).toEqual(["20010db8000000000000000000000000"]);
    expect(set.v6.e).toEqual(["20010db8ffffffffffffffffffffffff"]);
    expect(rangesContain(set, "10.0.3.255")).toBe(true);
    expect(rangesContain(set, "10.0.4.0")).toBe(false);
    expect(rangesContain(set, "::ffff:10.0.0.9")).toBe(true);
    expect(rangesContain(set, "172.16.9.9")).toBe(true);
  });
});

describe("ip rules: deny and allow through a trusted proxy", () => {
  let edge: Edge;
  beforeAll(async () => {
    edge = await bootEdge(
      ipPolicy({
        deny: ["203.0.113.0/24", "2001:db8:bad::/48", "198.51.100.66"],
        trustedProxies: ["127.0.0.1", "10.0.0.0/8"],
      }),
    );
  });
  afterAll(async () => {
    await edge?.stop();
  });

  it("refuses denied IPv4, IPv6 and IPv4-mapped clients with 403 naming the gate", async () => {
    for (const ip of ["203.0.113.5", "203.0.113.0", "203.0.113.255", "2001:db8:bad::1", "2001:DB8:BAD:ffff::7", "::ffff:203.0.113.9", "198.51.100.66"]) {
      const r = await from(edge, ip);
      expect(r.status, ip).toBe(403);
      expect(r.body, ip).toContain("ip-rules");
    }
  });

  it("passes clients outside the deny list", async () => {
    origin.reset();
    for (const ip of ["203.0.112.255", "203.0.114.0", "2001:db8:bae::1", "2001:db8::1", "198.51.100.65", "198.51.100.67", "::ffff:198.51.100.1", "fe80::1"]) {
      expect((await from(edge, ip)).status, ip).toBe(200);
    }
    expect(origin.hits("/p")).toBe(8);
  });

  it("takes the rightmost hop that is not a trusted proxy from X-Forwarded-For", async () => {
    expect((await from(edge, "203.0.113.5, 10.1.2.3")).status).toBe(403); // 10.x is a trusted proxy: skip it
    expect((await from(edge, "203.0.113.5,10.1.2.3 , 10.9.9.9")).status).toBe(403);
    expect((await from(edge, "203.0.113.5, 198.51.100.7")).status).toBe(200); // the client forged the left entry
    expect((await from(edge, "198.51.100.7, 203.0.113.5")).status).toBe(403);
    expect((await from(edge, "garbage, 203.0.113.5")).status).toBe(403);
    expect((await from(edge, "203.0.113.5, garbage")).status).toBe(200); // unparseable hop: the trusted peer is the client
    expect((await from(edge, "")).status).toBe(200);
  });

  it("never gates the health endpoint", async () => {
    expect((await from(edge, "203.0.113.5", "/health")).status).toBe(200);
    expect(luaErrors(await edge.errors())).toEqual([]);
  });
});

describe("ip rules: allow lists, spoofing, X-Real-IP", () => {
  it("with an allow list only listed clients pass, and deny wins over allow", async () => {
    const edge = await bootEdge(ipPolicy({ allow: ["198.51.100.0/24", "2001:db8::/32"], deny: ["198.51.100.13"], trustedProxies: ["127.0.0.1"] }));
    try {
      expect((await from(edge, "198.51.100.1")).status).toBe(200);
      expect((await from(edge, "2001:db8:1::1")).status).toBe(200);
      expect((await from(edge, "198.51.100.13")).status).toBe(403);
      expect((await from(edge, "192.0.2.1")).status).toBe(403);
      expect((await from(edge, "2001:db9::1")).status).toBe(403);
      expect((await http(edge, "/p")).status).toBe(403); // no header: the peer 127.0.0.1 is not allowed
    } finally {
      await edge.stop();
    }
  });

  it("ignores X-Forwarded-For from a peer that is not a trusted proxy (spoofing)", async () => {
    const edge = await bootEdge(ipPolicy({ allow: ["198.51.100.0/24"], trustedProxies: ["10.0.0.0/8"] }));
    try {
      expect((await from(edge, "198.51.100.1")).status).toBe(403); // 127.0.0.1 is the client
    } finally {
      await edge.stop();
    }
    const edge2 = await bootEdge(ipPolicy({ deny: ["127.0.0.0/8"] }));
    try {
      expect((await from(edge2, "198.51.100.1")).status).toBe(403); // no trusted proxies: header never read
      expect((await http(edge2, "/p", { headers: { "x-real-ip": "198.51.100.1" } })).status).toBe(403);
    } finally {
      await edge2.stop();
    }
  });

  it("reads a single-address header like X-Real-IP when configured", async () => {
    const edge = await bootEdge(ipPolicy({ deny: ["203.0.113.0/24"], trustedProxies: ["127.0.0.1"], realIpHeader: "X-Real-IP" }));
    try {
      const real = (ip: string) => http(edge, "/p", { headers: { "x-real-ip": ip } });
      expect((await real("203.0.113.1")).status).toBe(403);
      expect((await real("198.51.100.1")).status).toBe(200);
      expect((await real("not-an-ip")).status).toBe(200); // falls back to the peer
      expect((await from(edge, "203.0.113.1")).status).toBe(200); // X-Forwarded-For is not the configured header
    } finally {
      await edge.stop();
    }
  });

  it("applies only to its paths", async () => {
    const edge = await bootEdge(ipPolicy({ deny: ["127.0.0.1"], paths: ["/admin/*"] }));
    try {
      expect((await http(edge, "/public")).status).toBe(200);
      expect((await http(edge, "/admin/x")).status).toBe(403);
    } finally {
      await edge.stop();
    }
  });
});

describe("ip rules: IPv6 peers", () => {
  async function bootV6(gate: IpRules) {
    const port = await freePort();
    const { dir, remove } = await buildForTest({ ...ipPolicy(gate), listen: { http: port, address: "[::1]" } } as Policy);
    const edge = await startBundle(dir, { port, host: "::1", bin: await nginxBinary() });
    return { edge, done: async () => { await edge.stop(); await remove(); } };
  }

  it("allows and denies ::1 by IPv6 blocks", async () => {
    const a = await bootV6({ allow: ["::1/128"] });
    try {
      expect((await http(a.edge, "/v6")).status).toBe(200);
    } finally {
      await a.done();
    }
    const d = await bootV6({ deny: ["::/64"] });
    try {
      const r = await http(d.edge, "/v6");
      expect(r.status).toBe(403);
      expect(r.body).toContain("ip-rules");
    } finally {
      await d.done();
    }
    const t = await bootV6({ deny: ["203.0.113.0/24"], trustedProxies: ["::1"] });
    try {
      expect((await http(t.edge, "/v6", { headers: { "x-forwarded-for": "203.0.113.4" } })).status).toBe(403);
      expect((await http(t.edge, "/v6", { headers: { "x-forwarded-for": "198.51.100.4" } })).status).toBe(200);
    } finally {
      await t.done();
    }
  });
});

describe("ip rules: thousands of blocks", () => {
  it("5,000 generated blocks: hits and misses at both ends of both families", async () => {
    // deterministic pseudo-random /24s and /48s, never touching 127/8 or the probes below
    let x = 12345;
    const rnd = () => (x = (x * 1103515245 + 12345) % 2 ** 31);
    const deny: string[] = ["1.0.0.0/24", "223.255.255.0/24", "2001:db8::/48", "2c0f:ffff:ffff::/48"];
    while (deny.length < 4000) {
      const a = 2 + (rnd() % 220);
      if (a === 127 || a === 10) continue;
      deny.push(`${a}.${rnd() % 256}.${rnd() % 256}.0/24`);
    }
    while (deny.length < 5000) deny.push(`2${(rnd() % 0xfff).toString(16).padStart(3, "0")}:${(rnd() % 0xffff).toString(16)}:${(rnd() % 0xffff).toString(16)}::/48`);
    const t0 = performance.now();
    const { diagnostics } = compile({ ...ipPolicy({ deny, trustedProxies: ["127.0.0.1"] }), listen: { http: 8080 } } as Policy, { target: "openresty" });
    const compileMs = performance.now() - t0;
    expect(diagnostics).toEqual([]);
    console.log(`[ip-rules] 5,000 CIDRs compiled (validate + lower + emit) in ${compileMs.toFixed(0)} ms`);
    const edge = await bootEdge(ipPolicy({ deny, trustedProxies: ["127.0.0.1"] }));
    try {
      const set = compileRanges(deny);
      for (const [ip, denied] of [
        ["1.0.0.0", true], ["1.0.0.255", true], ["0.255.255.255", false], ["1.0.1.0", false],
        ["223.255.255.255", true], ["223.255.255.0", true], ["223.255.254.255", rangesContain(set, "223.255.254.255")], ["224.0.0.0", false],
        ["2001:db8::1", true], ["2001:db8:0:ffff::", true], ["2001:db8:1::", rangesContain(set, "2001:db8:1::")],
        ["2c0f:ffff:ffff:ffff::1", true], ["2c0f:ffff:fffe::1", rangesContain(set, "2c0f:ffff:fffe::1")], ["3000::1", false], ["::1", false],
      ] as [string, boolean][]) {
        expect((await from(edge, ip)).status, ip).toBe(denied ? 403 : 200);
      }
      // a sample of the middle of the list, against the reference implementation
      for (let i = 0; i < 40; i++) {
        const ip = `${2 + (i * 5) % 220}.${(i * 37) % 256}.${(i * 91) % 256}.7`;
        expect((await from(edge, ip)).status, ip).toBe(rangesContain(set, ip) ? 403 : 200);
      }
      for (const ip of deny.slice(1000, 1020)) {
        const probe = ip.includes(":") ? ip.replace("::/48", "::5") : ip.replace(".0/24", ".77");
        expect((await from(edge, probe)).status, probe).toBe(403);
      }
      expect(luaErrors(await edge.errors())).toEqual([]);
    } finally {
      await edge.stop();
    }
  });
});

describe("ip rules: compile-time checks", () => {
  it("reports bad blocks, host bits, an empty allow list, a useless gate and an unread header", () => {
    expect(codes(ipPolicy({ deny: ["300.1.1.1/8"] }))).toContain("CDN3015");
    expect(codes(ipPolicy({ deny: ["10.0.0.0/33"] }))).toContain("CDN3015");
    expect(codes(ipPolicy({ deny: ["2001:db8::/129"] }))).toContain("CDN3015");
    expect(codes(ipPolicy({ deny: ["1.2.3.4/24"] }))).toEqual(["CDN3016"]);
    expect(codes(ipPolicy({ allow: [] }))).toContain("CDN3017");
    expect(codes(ipPolicy({}))).toEqual(["CDN3018"]);
    expect(codes(ipPolicy({ deny: ["10.0.0.0/8"], realIpHeader: "X-Real-IP" }))).toEqual(["CDN3019"]);
    expect(codes(ipPolicy({ deny: ["10.0.0.0/8"], exceptPaths: ["/x"] }))).toEqual([]);
    expect(codes(ipPolicy({ deny: ["hello"] }))[0]).toMatch(/^CDN1/);
  });
});
