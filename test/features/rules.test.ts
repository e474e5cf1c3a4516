import * as nodeHttp from "node:http";
import fc from "fast-check";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { bootEdge, buildForTest, nginxBinary, writeForTest, type Edge } from "../support/edge.js";
import { freePort, startBundle } from "../../src/runtime/nginx.js";
import { startMockOrigin, type MockOrigin } from "../support/mock-origin.js";
import { http, luaErrors } from "../support/http.js";
import { sleep } from "../support/wait.js";
import type { Policy, Rule } from "../../src/policy/types.js";
import { compile } from "../../src/compile.js";
import { manyRules } from "../support/many-rules.js";

let a: MockOrigin;
let b: MockOrigin;
let c: MockOrigin;

beforeAll(async () => {
  [a, b, c] = await Promise.all([startMockOrigin(), startMockOrigin(), startMockOrigin()]);
});
afterAll(async () => {
  await Promise.all([a?.close(), b?.close(), c?.close()]);
});

function pools(): Policy["origins"] {
  return {
    app: { servers: [{ address: a.address }], retries: 0 },
    api: { servers: [{ address: b.address }], retries: 0 },
    img: { servers: [{ address: c.address }], retries: 0, hostHeader: "images.internal" },
  };
}

const port = (o: MockOrigin) => String(o.port);
const last = (o: MockOrigin) => o.requests[o.requests.length - 1]!;

describe("rules: conditions and actions", () => {
  let edge: Edge;
  const rules: Rule[] = [
    { name: "admin-only-inside", when: { path: { prefix: "/admin/" }, not: { clientIp: ["10.0.0.0/8", "2001:db8::/32"] } }, then: { deny: true } },
    { name: "internal", when: { path: "/internal", clientIp: ["127.0.0.0/8"] }, then: { respond: { status: 200, body: "internal-ok" } } },
    { name: "old", when: { path: "/old" }, then: { redirect: { to: "/new" } } },
    { name: "promo", when: { path: "/promo" }, then: { redirect: { to: "https://example.com/landing", status: 302, keepQuery: false } } },
    { name: "moved-308", when: { path: "/form" }, then: { redirect: { to: "/form2", status: 308 } } },
    { name: "moved-307", when: { path: "/tmp" }, then: { redirect: { to: "/tmp2", status: 307 } } },
    { name: "teapot", when: { path: "/teapot", method: ["GET"] }, then: { respond: { status: 418, body: "short and stout", contentType: "text/plain" } } },
    { name: "post-only", when: { path: "/m", method: ["POST", "PUT"] }, then: { respond: { status: 200, body: "post" } } },
    { name: "api", when: { path: { prefix: "/api/" } }, then: { origin: "api", requestHeaders: { set: { "X-Api": "1" } }, rewrite: { stripPrefix: "/api", addPrefix: "/v1" } } },
    { name: "beta-header", when: { header: { name: "X-Beta", equals: "yes" } }, then: { responseHeaders: { set: { "X-Beta-Seen": "1" } } }, continue: true },
    { name: "ua-regex", when: { header: { name: "X-Client", matches: "^app/[0-9]+$" } }, then: { requestHeaders: { set: { "X-Client-Ok": "1" } } }, continue: true },
    { name: "seen-cookie", when: { cookie: { name: "seen" } }, then: { responseHeaders: { set: { "X-Seen": "1" } } }, continue: true },
    { name: "gold", when: { cookie: { name: "tier", equals: "gold" } }, then: { requestHeaders: { set: { "X-Tier": "gold" }, remove: ["X-Remove-Me"] } }, continue: true },
    { name: "debug", when: { query: { name: "debug", exists: true } }, then: { cache: { bypass: true }, responseHeaders: { set: { "X-Debug": "on" } } }, continue: true },
    { name: "lang", when: { query: { name: "lang", equals: "fr ch" } }, then: { responseHeaders: { set: { "X-Lang": "fr" } } }, continue: true },
    { name: "sub-host", when: { host: ["*.example.test"] }, then: { origin: "img" } },
    { name: "bots", when: { userAgent: ["googlebot", "bingbot"] }, then: { origin: "img", rewrite: { addPrefix: "/prerender" } } },
    { name: "france", when: { country: { in: ["FR"] } }, then: { respond: { status: 451, body: "not here" } } },
    { name: "pdf", when: { extension: ["pdf"] }, then: { responseHeaders: { set: { "X-Pdf": "1", "Cache-Control": "no-store" }, remove: ["X-Origin-Port"] } } },
    { name: "user-regex", when: { path: { regex: "^/u/[0-9]+$" } }, then: { requestHeaders: { set: { "X-User": "1" } } } },
    { name: "fm-exact", when: { path: "/fm/x" }, then: { responseHeaders: { set: { "X-Rule": "exact" } } } },
    { name: "fm-prefix", when: { path: "/fm/*" }, then: { responseHeaders: { set: { "X-Rule": "prefix" } } } },
    { name: "ct-first", when: { path: { prefix: "/ct/" } }, then: { responseHeaders: { set: { "X-C": "1", "X-Both": "first" } } }, continue: true },
    { name: "ct-second", when: { path: { prefix: "/ct/" } }, then: { responseHeaders: { set: { "X-D": "1", "X-Both": "second" } } } },
    { name: "any-of", when: { any: [{ path: "/any1" }, { header: { name: "X-Any", exists: true } }] }, then: { responseHeaders: { set: { "X-Any-Hit": "1" } } } },
    { name: "by-device", when: { path: "/dev" }, then: { cache: { key: { headers: ["X-Device"] } } } },
    { name: "ttl", when: { path: { prefix: "/ttl/" } }, then: { cache: { ttl: "1h" } } },
  ];

  beforeAll(async () => {
    edge = await bootEdge({
      name: "rules-test",
      origins: pools(),
      defaultOrigin: "app",
      cache: { ttl: { "200": "1h" } },
      headers: { cacheStatus: "X-Cache", response: { set: { "X-Global": "g", "X-Both": "global" } } },
      rules,
    });
  });
  afterEach(async () => {
    expect(luaErrors(await edge.errors())).toEqual([]);
  });
  afterAll(async () => {
    await edge?.stop();
  });

  it("denies by path and client CIDR, and answers by path and CIDR", async () => {
    expect((await http(edge, "/admin/x")).status).toBe(403);
    const r = await http(edge, "/internal");
    expect(r.status).toBe(200);
    expect(r.body).toBe("internal-ok");
    expect(a.hits("/admin/x") + a.hits("/internal")).toBe(0);
  });

  it("redirects keeping the query, or dropping it", async () => {
    const r = await http(edge, "/old?x=1&y=2");
    expect(r.status).toBe(301);
    expect(r.headers.location).toMatch(/\/new\?x=1&y=2$/);
    const p = await http(edge, "/promo?utm=1");
    expect(p.status).toBe(302);
    expect(p.headers.location).toBe("https://example.com/landing");
    expect((await http(edge, "/form", { method: "POST", body: "x" })).status).toBe(308);
    expect((await http(edge, "/tmp")).status).toBe(307);
  });

  it("responds with a fixed status and body, by method", async () => {
    const t = await http(edge, "/teapot");
    expect(t.status).toBe(418);
    expect(t.body).toBe("short and stout");
    expect(t.headers["content-type"]).toBe("text/plain");
    expect((await http(edge, "/m", { method: "POST", body: "x" })).body).toBe("post");
    expect((await http(edge, "/m")).headers["x-origin-port"]).toBe(port(a));
  });

  it("routes to a pool, sets request headers and rewrites the path", async () => {
    const r = await http(edge, "/api/users?id=7");
    expect(r.headers["x-origin-port"]).toBe(port(b));
    expect(last(b).url).toBe("/v1/users?id=7");
    expect(last(b).headers["x-api"]).toBe("1");
    // other paths stay on the default pool with the client's Host
    const d = await http(edge, "/plain");
    expect(d.headers["x-origin-port"]).toBe(port(a));
    expect(last(a).headers.host).toBe("127.0.0.1");
  });

  it("matches headers (equals, matches), cookies and query parameters, with continue", async () => {
    const r = await http(edge, "/hdr", { headers: { "x-beta": "yes", "x-client": "app/42", cookie: "a=1; tier=gold", "x-remove-me": "1" } });
    expect(r.headers["x-beta-seen"]).toBe("1");
    const o = last(a);
    expect(o.headers["x-client-ok"]).toBe("1");
    expect(o.headers["x-tier"]).toBe("gold");
    expect(o.headers["x-remove-me"]).toBeUndefined();
    const n = await http(edge, "/hdr2", { headers: { "x-beta": "no", "x-client": "app/x", cookie: "tier=silver" } });
    expect(n.headers["x-beta-seen"]).toBeUndefined();
    expect(last(a).headers["x-client-ok"]).toBeUndefined();
    expect(last(a).headers["x-tier"]).toBeUndefined();
    expect((await http(edge, "/ck", { headers: { cookie: "x=1; seen=yes" } })).headers["x-seen"]).toBe("1");
    expect((await http(edge, "/ck", { headers: { cookie: "unseen=yes" } })).headers["x-seen"]).toBeUndefined();
    const q = await http(edge, "/q?lang=fr%20ch");
    expect(q.headers["x-lang"]).toBe("fr");
    expect((await http(edge, "/q?lang=de")).headers["x-lang"]).toBeUndefined();
  });

  it("bypasses the cache for a query parameter", async () => {
    await http(edge, "/bp");
    expect((await http(edge, "/bp")).headers["x-cache"]).toBe("HIT");
    const r = await http(edge, "/bp?debug");
    expect(r.headers["x-cache"]).toBe("BYPASS");
    expect(r.headers["x-debug"]).toBe("on");
  });

  it("routes by host (wildcard) with the pool's Host header, and bots to a pre-render path", async () => {
    const r = await http(edge, "/page", { headers: { host: "shop.example.test" } });
    expect(r.headers["x-origin-port"]).toBe(port(c));
    expect(last(c).headers.host).toBe("images.internal");
    const bot = await http(edge, "/product/1", { headers: { "user-agent": "Mozilla/5.0 (compatible; Googlebot/2.1)" } });
    expect(bot.headers["x-origin-port"]).toBe(port(c));
    expect(last(c).path).toBe("/prerender/product/1");
    const human = await http(edge, "/product/1", { headers: { "user-agent": "Mozilla/5.0 Firefox" } });
    expect(human.headers["x-origin-port"]).toBe(port(a));
  });

  it("matches the country header, extensions and path regexes", async () => {
    expect((await http(edge, "/x", { headers: { "x-geoip-country-code": "FR" } })).status).toBe(451);
    expect((await http(edge, "/x", { headers: { "x-geoip-country-code": "fr" } })).status).toBe(451);
    expect((await http(edge, "/x2", { headers: { "x-geoip-country-code": "DE" } })).status).toBe(200);
    const pdf = await http(edge, "/docs/Report.PDF");
    expect(pdf.headers["x-pdf"]).toBe("1");
    expect(pdf.headers["cache-control"]).toBe("no-store");
    expect(pdf.headers["x-origin-port"]).toBeUndefined();
    expect(pdf.headers["x-global"]).toBe("g");
    await http(edge, "/u/123");
    expect(last(a).headers["x-user"]).toBe("1");
    await http(edge, "/u/abc");
    expect(last(a).headers["x-user"]).toBeUndefined();
  });

  it("stops at the first match, and applies every rule up to one without continue", async () => {
    expect((await http(edge, "/fm/x")).headers["x-rule"]).toBe("exact");
    expect((await http(edge, "/fm/y")).headers["x-rule"]).toBe("prefix");
    const r = await http(edge, "/ct/z");
    expect(r.headers["x-c"]).toBe("1");
    expect(r.headers["x-d"]).toBe("1");
    // the later rule wins over the earlier one, and a rule wins over the policy-wide headers
    expect(r.headers["x-both"]).toBe("second");
    expect((await http(edge, "/other")).headers["x-both"]).toBe("global");
  });

  it("combines conditions with any", async () => {
    expect((await http(edge, "/any1")).headers["x-any-hit"]).toBe("1");
    expect((await http(edge, "/any2", { headers: { "x-any": "1" } })).headers["x-any-hit"]).toBe("1");
    expect((await http(edge, "/any3")).headers["x-any-hit"]).toBeUndefined();
  });

  it("adds a request header to the cache key", async () => {
    a.route("/dev", (req) => ({ headers: { "cache-control": "max-age=600" }, body: `for ${req.headers["x-device"] ?? "none"}` }));
    const m1 = await http(edge, "/dev", { headers: { "x-device": "mobile" } });
    const d1 = await http(edge, "/dev", { headers: { "x-device": "desktop" } });
    const m2 = await http(edge, "/dev", { headers: { "x-device": "mobile" } });
    expect(m1.body).toBe("for mobile");
    expect(d1.body).toBe("for desktop");
    expect(m2.body).toBe("for mobile");
    expect(m2.headers["x-cache"]).toBe("HIT");
    expect(a.hits("/dev")).toBe(2);
  });

  it("overrides the TTL, but never stores private responses", async () => {
    a.route("/ttl/short", { headers: { "cache-control": "max-age=1" }, body: "short" });
    a.route("/ttl/private", { headers: { "cache-control": "private, max-age=600" }, body: "mine" });
    a.route("/short", { headers: { "cache-control": "max-age=1" }, body: "short" });
    await http(edge, "/ttl/short");
    await http(edge, "/short");
    await http(edge, "/ttl/private");
    await sleep(2100);
    const r = await http(edge, "/ttl/short");
    expect(r.headers["x-cache"]).toBe("HIT");
    expect(r.body).toBe("short");
    expect(a.hits("/ttl/short")).toBe(1);
    // without the rule, the origin's max-age=1 applies
    expect((await http(edge, "/short")).headers["x-cache"]).toBe("EXPIRED");
    expect((await http(edge, "/ttl/private")).headers["x-cache"]).not.toBe("HIT");
    expect(a.hits("/ttl/private")).toBe(2);
  });
});

describe("rules: endpoints", () => {
  it("leave the purge and health endpoints alone, even with a catch-all rule", async () => {
    const edge = await bootEdge({
      name: "endpoints",
      origins: pools(),
      defaultOrigin: "app",
      cache: {},
      health: { path: "/health" },
      rules: [{ name: "everything", then: { cache: { ttl: "1h" }, responseHeaders: { set: { "X-Everything": "1" } } } }],
    });
    try {
      const p = await http(edge, "/__purge", { method: "POST" });
      // answered by the purge handler itself (no credentials in this policy: refused)
      expect(p.status).toBe(403);
      expect(JSON.parse(p.body)).toEqual({ ok: false, error: "forbidden" });
      expect(p.headers["x-everything"]).toBeUndefined();
      expect((await http(edge, "/health")).body).toBe("ok\n");
      expect((await http(edge, "/page")).headers["x-everything"]).toBe("1");
      expect(a.hits("/__purge")).toBe(0);
      expect(luaErrors(await edge.errors())).toEqual([]);
    } finally {
      await edge.stop();
    }
  });
});

describe("rules: IPv6 clients", () => {
  it("matches client CIDRs for an IPv6 client", async () => {
    const listenPort = await freePort();
    const { dir, remove } = await buildForTest({
      name: "v6",
      listen: { http: listenPort, address: "[::1]" },
      origins: pools(),
      defaultOrigin: "app",
      rules: [
        { name: "v4-net", when: { clientIp: ["127.0.0.0/8"] }, then: { responseHeaders: { set: { "X-V4": "1" } } }, continue: true },
        { name: "loopback", when: { path: "/v6", clientIp: ["::1"] }, then: { respond: { status: 200, body: "loopback" } } },
        { name: "first-64", when: { path: "/v6net", clientIp: ["::/64"] }, then: { respond: { status: 200, body: "zero-net" } } },
        { name: "doc-net", when: { path: "/v6no", clientIp: ["2001:db8::/32", "fe80::/10"] }, then: { respond: { status: 200, body: "doc" } } },
      ],
    });
    const edge = await startBundle(dir, { port: listenPort, host: "::1", bin: await nginxBinary() });
    try {
      expect((await http(edge, "/v6")).body).toBe("loopback");
      expect((await http(edge, "/v6net")).body).toBe("zero-net");
      const no = await http(edge, "/v6no");
      expect(no.headers["x-origin-port"]).toBe(port(a));
      expect(no.headers["x-v4"]).toBeUndefined();
      const errs = (await edge.errorLog()).split("\n").filter((l) => /\[(error|crit|alert|emerg)\]/.test(l));
      expect(luaErrors(errs)).toEqual([]);
    } finally {
      await edge.stop();
      await remove();
    }
  });
});

describe("rules: geo routing", () => {
  it("routes by country with a default pool", async () => {
    const edge = await bootEdge({
      name: "geo",
      origins: pools(),
      defaultOrigin: "app",
      rules: [{ name: "geo", then: { geo: { map: { US: "api", CA: "api", DE: "img" }, default: "app" } } }],
    });
    try {
      const at = async (country?: string) => (await http(edge, "/g", { headers: country ? { "x-geoip-country-code": country } : {} })).headers["x-origin-port"];
      expect(await at("US")).toBe(port(b));
      expect(await at("ca")).toBe(port(b));
      expect(await at("DE")).toBe(port(c));
      expect(last(c).headers.host).toBe("images.internal");
      expect(await at("JP")).toBe(port(a));
      expect(await at()).toBe(port(a));
      expect(luaErrors(await edge.errors())).toEqual([]);
    } finally {
      await edge.stop();
    }
  });
});

/** One GET from a given local address (the whole 127.0.0.0/8 is local on Linux). */
function getFrom(edge: Edge, localAddress: string, path: string): Promise<{ status: number; headers: nodeHttp.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = nodeHttp.request({ host: "127.0.0.1", port: edge.port, path, localAddress, agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on("error", reject);
    req.end();
  });
}

async function inBatches<T>(n: number, size: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i += size) out.push(...(await Promise.all(Array.from({ length: Math.min(size, n - i) }, (_, k) => fn(i + k)))));
  return out;
}

describe("rules: A/B split", () => {
  let edge: Edge;
  beforeAll(async () => {
    b.route("/exp", (req) => ({ headers: { "cache-control": "max-age=600" }, body: `variant ${req.headers["x-experiment-checkout"]}` }));
    edge = await bootEdge({
      name: "ab",
      origins: pools(),
      defaultOrigin: "app",
      cache: { ttl: { "200": "10m" } },
      rules: [
        { name: "checkout", when: { path: "/exp" }, then: { origin: "api", experiment: { name: "checkout", variants: [{ name: "a", weight: 30 }, { name: "b", weight: 70 }], cacheKey: true } } },
        { name: "hero", when: { path: { prefix: "/hero" } }, then: { experiment: { name: "hero", by: "ip", variants: [{ name: "x", weight: 50 }, { name: "y", weight: 50 }], header: "X-Hero" } } },
        { name: "shared", when: { path: "/shared" }, then: { experiment: { name: "shared", variants: [{ name: "p", weight: 50 }, { name: "q", weight: 50 }] } } },
        { name: "landing", when: { path: { prefix: "/landing" } }, then: { origin: "api", experiment: { name: "landing", variants: [{ name: "v1", weight: 50 }, { name: "v2", weight: 50 }], pathPrefix: true } } },
      ],
    });
  });
  afterEach(async () => {
    expect(luaErrors(await edge.errors())).toEqual([]);
  });
  afterAll(async () => {
    await edge?.stop();
  });

  it("splits 1,000 new clients 30/70 within 2% with a sticky cookie, honoured after", async () => {
    const replies = await inBatches(1000, 50, () => http(edge, "/exp"));
    const variants = replies.map((r) => /cdn_exp_checkout=([a-z]+)/.exec(r.headers["set-cookie"] ?? "")?.[1]);
    expect(variants.every((v) => v === "a" || v === "b")).toBe(true);
    const shareA = variants.filter((v) => v === "a").length / 1000;
    expect(Math.abs(shareA - 0.3)).toBeLessThanOrEqual(0.02);
    expect(replies[0]!.headers["set-cookie"]).toMatch(/Path=\/; Max-Age=2592000; SameSite=Lax/);
    // stickiness: the cookie is honoured, no new cookie; the origin sees the variant and the cache keeps one entry per variant
    for (const v of ["a", "b"]) {
      for (let i = 0; i < 3; i++) {
        const r = await http(edge, "/exp", { headers: { cookie: `cdn_exp_checkout=${v}` } });
        expect(r.body).toBe(`variant ${v}`);
        expect(r.headers["set-cookie"]).toBeUndefined();
      }
    }
    expect(b.hits("/exp")).toBe(2);
    // an unknown variant in the cookie is replaced
    expect((await http(edge, "/exp", { headers: { cookie: "cdn_exp_checkout=zzz" } })).headers["set-cookie"]).toMatch(/cdn_exp_checkout=(a|b)/);
  });

  it("splits 1,000 client addresses 50/50 within 2% by IP hash, stable per address", async () => {
    const addr = (i: number) => `127.0.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;
    const before = a.requests.length;
    await inBatches(1000, 50, (i) => getFrom(edge, addr(i), `/hero?i=${i}`));
    const seen = a.requests.slice(before).filter((r) => r.path === "/hero");
    expect(seen.length).toBe(1000);
    const shareX = seen.filter((r) => r.headers["x-hero"] === "x").length / 1000;
    expect(Math.abs(shareX - 0.5)).toBeLessThanOrEqual(0.02);
    const byIp = new Map(seen.map((r) => [Number(/i=(\d+)/.exec(r.url)![1]), r.headers["x-hero"]]));
    const again = a.requests.length;
    await inBatches(100, 50, (i) => getFrom(edge, addr(i), `/hero?i=${i}`));
    for (const r of a.requests.slice(again)) expect(r.headers["x-hero"]).toBe(byIp.get(Number(/i=(\d+)/.exec(r.url)![1])));
  });

  it("keeps one cache entry for all variants unless the policy says the response differs", async () => {
    a.route("/shared", (req) => ({ headers: { "cache-control": "max-age=600" }, body: `seen ${req.headers["x-experiment-shared"]}` }));
    const p = await http(edge, "/shared", { headers: { cookie: "cdn_exp_shared=p" } });
    const q = await http(edge, "/shared", { headers: { cookie: "cdn_exp_shared=q" } });
    expect(p.body).toBe("seen p");
    expect(q.body).toBe("seen p");
    expect(a.hits("/shared")).toBe(1);
  });

  it("exposes the variant as a path prefix, with the variant in the cache key", async () => {
    const r1 = await http(edge, "/landing", { headers: { cookie: "cdn_exp_landing=v1" } });
    const r2 = await http(edge, "/landing", { headers: { cookie: "cdn_exp_landing=v2" } });
    expect(r1.status).toBe(200);
    expect(r2.status).toBe(200);
    expect(b.hits("/v1/landing")).toBe(1);
    expect(b.hits("/v2/landing")).toBe(1);
    await http(edge, "/landing", { headers: { cookie: "cdn_exp_landing=v1" } });
    expect(b.hits("/v1/landing")).toBe(1);
  });
});

describe("rules: image negotiation", () => {
  it("picks AVIF / WebP / original from Accept, keys the cache on the normalised format, sends Vary: Accept", async () => {
    c.route("/fmt/avif/w/640/photos/cat.jpg", { headers: { "cache-control": "max-age=600", "content-type": "image/avif" }, body: "AVIF" });
    c.route("/fmt/webp/w/640/photos/cat.jpg", { headers: { "cache-control": "max-age=600", "content-type": "image/webp" }, body: "WEBP" });
    c.route("/fmt/jpg/w/640/photos/cat.jpg", { headers: { "cache-control": "max-age=600", "content-type": "image/jpeg" }, body: "JPG" });
    const edge = await bootEdge({
      name: "img",
      origins: pools(),
      defaultOrigin: "app",
      cache: { key: { query: "all" } },
      headers: { cacheStatus: "X-Cache" },
      rules: [{ name: "images", when: { extension: ["jpg", "png"] }, then: { image: { origin: "img", url: "/fmt/{format}/w/{width}{path}", widths: [320, 640, 1280] } } }],
    });
    try {
      const chrome = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
      const safari = "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5";
      const oldWebp = "image/webp,*/*";
      const noAvif = "image/avif;q=0,image/webp,*/*";
      const r1 = await http(edge, "/photos/cat.jpg?w=600", { headers: { accept: chrome } });
      expect(r1.body).toBe("AVIF");
      expect(r1.headers.vary).toMatch(/Accept/);
      expect(last(c).headers.accept).toMatch(/^image\/avif/);
      const r2 = await http(edge, "/photos/cat.jpg?w=600", { headers: { accept: safari } });
      const r3 = await http(edge, "/photos/cat.jpg?w=500", { headers: { accept: oldWebp } });
      const r4 = await http(edge, "/photos/cat.jpg?w=640", { headers: { accept: noAvif } });
      expect([r2.body, r3.body, r4.body]).toEqual(["WEBP", "WEBP", "WEBP"]);
      expect([r3.headers["x-cache"], r4.headers["x-cache"]]).toEqual(["HIT", "HIT"]);
      const r5 = await http(edge, "/photos/cat.jpg?w=640", { headers: { accept: "*/*" } });
      const r6 = await http(edge, "/photos/cat.jpg?w=641", { headers: { accept: "text/html,*/*" } });
      expect(r5.body).toBe("JPG");
      expect(r6.headers["x-origin-port"]).toBe(port(c));
      // one origin fetch per normalised format (and width), not per Accept string
      expect(c.hits("/fmt/avif/w/640/photos/cat.jpg")).toBe(1);
      expect(c.hits("/fmt/webp/w/640/photos/cat.jpg")).toBe(1);
      expect(c.hits("/fmt/jpg/w/640/photos/cat.jpg")).toBe(1);
      expect(c.hits("/fmt/jpg/w/1280/photos/cat.jpg")).toBe(1);
      // non-image paths are untouched
      expect((await http(edge, "/page.html")).headers["x-origin-port"]).toBe(port(a));
      expect(luaErrors(await edge.errors())).toEqual([]);
    } finally {
      await edge.stop();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// compile-time analysis

function diags(rules: Rule[], extra: Partial<Policy> = {}) {
  const r = compile({
    name: "analysis",
    origins: { app: { servers: [{ address: "127.0.0.1:3000" }] }, api: { servers: [{ address: "127.0.0.1:3001" }] } },
    defaultOrigin: "app",
    cache: { bypass: { cookies: ["session"] } },
    rules,
    ...extra,
  });
  return {
    ok: r.bundle !== undefined,
    all: r.diagnostics,
    codes: r.diagnostics.map((d) => `${d.severity} ${d.code} ${d.path}`),
  };
}

describe("rules: compile-time analysis", () => {
  it("warns when an earlier rule shadows a later one, naming both (path, extension, method)", () => {
    const cases: [Rule, Rule][] = [
      [{ name: "all-static", when: { path: { prefix: "/static/" } }, then: { cache: { ttl: "1d" } } }, { name: "css", when: { path: "/static/app.css" }, then: { cache: { ttl: "1h" } } }],
      [{ name: "glob", when: { path: "/assets/*" }, then: { cache: { ttl: "1d" } } }, { name: "deeper", when: { path: { prefix: "/assets/img/" }, method: ["GET"] }, then: { cache: { ttl: "1h" } } }],
      [{ name: "images", when: { extension: ["png", "jpg"] }, then: { cache: { ttl: "1d" } } }, { name: "logo", when: { path: "/brand/logo.PNG" }, then: { cache: { ttl: "1h" } } }],
      [{ name: "reads", when: { method: ["GET", "HEAD"] }, then: { cache: { ttl: "1d" } } }, { name: "gets", when: { method: ["GET"], path: "/x" }, then: { cache: { ttl: "1h" } } }],
      [{ name: "catch-all", then: { origin: "api" } }, { name: "anything", when: { header: { name: "X-A" } }, then: { origin: "app" } }],
    ];
    for (const [first, second] of cases) {
      const d = diags([first, second]);
      expect(d.ok).toBe(true);
      const w = d.all.filter((x) => x.code === "CDN5004");
      expect(w).toHaveLength(1);
      expect(w[0]!.severity).toBe("warning");
      expect(w[0]!.path).toBe("/rules/1");
      expect(w[0]!.message).toContain(`"${first.name}"`);
      expect(w[0]!.message).toContain(`"${second.name}"`);
    }
  });

  it("does not warn when the earlier rule continues, is narrower, or differs", () => {
    const rules: Rule[] = [
      { name: "static", when: { path: { prefix: "/static/" } }, then: { responseHeaders: { set: { "X-S": "1" } } }, continue: true },
      { name: "css", when: { path: "/static/app.css" }, then: { cache: { ttl: "1h" } } },
      { name: "narrow", when: { path: { prefix: "/a/b/" } }, then: { cache: { ttl: "1h" } } },
      { name: "wide", when: { path: { prefix: "/a/" } }, then: { cache: { ttl: "1d" } } },
      { name: "gets", when: { method: ["GET"], path: { prefix: "/m/" } }, then: { cache: { ttl: "1d" } } },
      { name: "posts", when: { method: ["GET", "POST"], path: { prefix: "/m/" } }, then: { cache: { bypass: true } } },
      { name: "hdr", when: { path: "/h", header: { name: "X-A", equals: "1" } }, then: { origin: "api" } },
      { name: "hdr2", when: { path: "/h", header: { name: "X-A", equals: "2" } }, then: { origin: "api" } },
    ];
    const d = diags(rules);
    expect(d.codes.filter((c) => c.includes("CDN5004"))).toEqual([]);
    expect(d.ok).toBe(true);
  });

  it("refuses a route to an unknown pool", () => {
    const d = diags([
      { name: "r1", when: { path: "/a" }, then: { origin: "nope" } },
      { name: "r2", when: { path: "/b" }, then: { geo: { map: { US: "api", DE: "eu" }, default: "app" } } },
      { name: "r3", when: { extension: ["jpg"] }, then: { image: { origin: "imgproxy" } } },
    ]);
    expect(d.ok).toBe(false);
    expect(d.codes).toEqual(
      expect.arrayContaining(["error CDN5003 /rules/0/then/origin", "error CDN5003 /rules/1/then/geo/map/DE", "error CDN5003 /rules/2/then/image/origin"]),
    );
  });

  it("refuses a redirect loop between two rules, and a rule redirecting to itself", () => {
    const loop = diags([
      { name: "to-new", when: { path: "/old" }, then: { redirect: { to: "/new" } } },
      { name: "to-old", when: { path: { prefix: "/new" } }, then: { redirect: { to: "/old", status: 302 } } },
    ]);
    expect(loop.ok).toBe(false);
    const e = loop.all.find((x) => x.code === "CDN5005")!;
    expect(e.path).toBe("/rules/0/then/redirect/to");
    expect(e.message).toContain('"to-new"');
    expect(e.message).toContain('"to-old"');
    const self = diags([{ name: "self", when: { path: { prefix: "/shop" } }, then: { redirect: { to: "/shop/home" } } }]);
    expect(self.codes).toContain("error CDN5020 /rules/0/then/redirect/to");
    // an absolute URL on another host, or a target that depends on a header, is not a definite loop
    const ok = diags([
      { name: "a", when: { path: "/old" }, then: { redirect: { to: "https://elsewhere.example/new" } } },
      { name: "b", when: { path: "/new", host: ["shop.example"] }, then: { redirect: { to: "/old" } } },
      { name: "c", when: { path: "/x", header: { name: "X-R" } }, then: { redirect: { to: "/y" } } },
      { name: "d", when: { path: "/y" }, then: { redirect: { to: "/x" } } },
    ]);
    expect(ok.ok).toBe(true);
  });

  it("refuses a rule that caches what a bypass already excluded", () => {
    const covered = diags([
      { name: "no-cache-account", when: { path: { prefix: "/account/" } }, then: { cache: { bypass: true } }, continue: true },
      { name: "cache-avatar", when: { path: "/account/avatar.png" }, then: { cache: { ttl: "1h" } } },
    ]);
    expect(covered.codes).toContain("error CDN5006 /rules/1/then/cache/ttl");
    expect(covered.all.find((x) => x.code === "CDN5006")!.message).toContain('"no-cache-account"');
    const same = diags([{ name: "both", when: { path: "/x" }, then: { cache: { ttl: "1h", bypass: true } } }]);
    expect(same.codes).toContain("error CDN5006 /rules/0/then/cache/ttl");
    const cookie = diags([{ name: "logged-in", when: { cookie: { name: "session" } }, then: { cache: { ttl: "1h" } } }]);
    expect(cookie.codes).toContain("error CDN5006 /rules/0/then/cache/ttl");
    const auth = diags([{ name: "auth", when: { header: { name: "Authorization", exists: true } }, then: { cache: { ttl: "1h" } } }]);
    expect(auth.codes).toContain("error CDN5006 /rules/0/then/cache/ttl");
    // explicitly re-enabling the cache is allowed
    const reenabled = diags([
      { name: "no-cache-account", when: { path: { prefix: "/account/" } }, then: { cache: { bypass: true } }, continue: true },
      { name: "cache-avatar", when: { path: "/account/avatar.png" }, then: { cache: { ttl: "1h", bypass: false } } },
    ]);
    expect(reenabled.ok).toBe(true);
  });

  it("reports other contradictions with codes and paths", () => {
    const d = diags([
      { name: "dup", when: { path: "/a" }, then: { deny: true } },
      { name: "dup", when: { path: "/b" }, then: { deny: 404 } },
      { name: "ends-twice", when: { path: "/c" }, then: { deny: true, respond: { status: 200 } } },
      { name: "cont", when: { path: "/d" }, then: { redirect: { to: "/e" } }, continue: true },
      { name: "weights", when: { path: "/f" }, then: { experiment: { name: "e1", variants: [{ name: "a", weight: 50 }, { name: "b", weight: 40 }] } } },
      { name: "prefix-no-key", when: { path: "/g" }, then: { experiment: { name: "e2", variants: [{ name: "a", weight: 50 }, { name: "b", weight: 50 }], pathPrefix: true, cacheKey: false } } },
      { name: "two-routes", when: { path: "/h" }, then: { origin: "api", geo: { map: {}, default: "app" } } },
      { name: "bad-regex", when: { path: { regex: "^/(unclosed" } }, then: { deny: true } },
      { name: "bad-header", when: { path: "/i" }, then: { requestHeaders: { set: { Host: "x" } } } },
      { name: "bad-country", when: { path: "/j" }, then: { geo: { map: { usa: "api" }, default: "app" } } },
      { name: "empty-any", when: { any: [] }, then: { deny: true } },
    ]);
    expect(d.ok).toBe(false);
    expect(d.codes).toEqual(
      expect.arrayContaining([
        "error CDN5001 /rules/1/name",
        "error CDN5008 /rules/2/then/deny",
        "error CDN5008 /rules/3/continue",
        "error CDN5009 /rules/4/then/experiment/variants",
        "error CDN5010 /rules/5/then/experiment/cacheKey",
        "error CDN5011 /rules/6/then",
        "error CDN5002 /rules/7/when/path/regex",
        "error CDN5013 /rules/8/then/requestHeaders/set/Host",
        "error CDN5015 /rules/9/then/geo/map/usa",
        "error CDN5017 /rules/10/when/any",
      ]),
    );
    const noCache = diags([{ name: "ttl", when: { path: "/a" }, then: { cache: { ttl: "1h" } } }], { cache: undefined });
    expect(noCache.codes).toContain("error CDN5007 /rules/0/then/cache");
  });

  it("gives cookie options on an IP split, an empty rewrite and a 3xx respond codes of their own", () => {
    const variants = [{ name: "a", weight: 50 }, { name: "b", weight: 50 }];
    const d = diags([
      { name: "ip-cookie", when: { path: "/a" }, then: { experiment: { name: "e1", variants, by: "ip", cookie: "ab" } } },
      { name: "no-op-rewrite", when: { path: "/b" }, then: { rewrite: {} } },
      { name: "respond-302", when: { path: "/c" }, then: { respond: { status: 302 } } },
    ]);
    expect(d.codes).toEqual([
      "error CDN5021 /rules/0/then/experiment/by",
      "error CDN5022 /rules/1/then/rewrite",
      "error CDN5023 /rules/2/then/respond/status",
    ]);
  });

  it("warns that a routed pool's timeouts follow the default pool", () => {
    const d = compile({
      name: "t",
      origins: { app: { servers: [{ address: "127.0.0.1:3000" }] }, slow: { servers: [{ address: "127.0.0.1:3001" }], readTimeout: "5m" } },
      defaultOrigin: "app",
      rules: [{ name: "reports", when: { path: { prefix: "/reports/" } }, then: { origin: "slow" } }],
    });
    expect(d.bundle).toBeDefined();
    expect(d.diagnostics.map((x) => `${x.severity} ${x.code} ${x.path}`)).toEqual(["warning CDN5014 /origins/slow"]);
  });
});

// ---------------------------------------------------------------------------------------------------------
// scale

describe("rules: 1,000 rules", () => {
  it("compiles, boots and picks the right rule among 1,000", async () => {
    const rules = manyRules(1000);
    const r = compile({ name: "scale", origins: { app: { servers: [{ address: a.address }] } }, cache: {}, rules });
    expect(r.diagnostics).toEqual([]);
    expect(r.bundle).toBeDefined();
    const edge = await bootEdge({ name: "scale", origins: { app: { servers: [{ address: a.address }] } }, cache: {}, rules });
    try {
      const rule = async (path: string, headers: Record<string, string> = {}) => (await http(edge, path, { headers })).headers["x-rule"];
      expect(await rule("/page/995")).toBe("exact-995");
      expect(await rule("/section-501/deep/x")).toBe("prefix-501");
      expect(await rule("/files-702/a/b.bin")).toBe("glob-702");
      expect(await rule("/files-702/a/b.txt")).toBeUndefined();
      expect(await rule("/any/file.e998")).toBe("ext-998");
      expect(await rule("/x", { host: "h999.example.test" })).toBe("host-999");
      expect(await rule("/nothing")).toBeUndefined();
      expect(luaErrors(await edge.errors())).toEqual([]);
    } finally {
      await edge.stop();
    }
  });
});

describe("rules: property", () => {
  it("every valid random rule set gives a bundle nginx accepts (hostile values included)", async () => {
    const bin = await nginxBinary();
    const anyText = fc.string({ maxLength: 30, unit: "binary" });
    const seg = fc.stringMatching(/^[a-z0-9._-]{1,8}$/);
    const path = seg.map((s) => `/${s}`);
    const cond = fc.record(
      {
        path: fc.oneof(path, path.map((p) => `${p}/*`), path.map((p) => ({ prefix: p })), fc.constant({ regex: "^/[a-z]+$" })),
        extension: fc.uniqueArray(fc.stringMatching(/^[a-z0-9]{1,5}$/), { minLength: 1, maxLength: 3 }),
        method: fc.uniqueArray(fc.constantFrom("GET", "HEAD", "POST"), { minLength: 1 }),
        header: fc.record({ name: fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,10}$/), equals: anyText }, { requiredKeys: ["name"] }),
        cookie: fc.record({ name: fc.stringMatching(/^[a-z]{1,8}$/), equals: anyText }, { requiredKeys: ["name"] }),
        query: fc.record({ name: fc.stringMatching(/^[a-z]{1,8}$/), exists: fc.boolean() }, { requiredKeys: ["name"] }),
        country: fc.record({ in: fc.uniqueArray(fc.constantFrom("US", "DE", "FR"), { minLength: 1 }) }),
        clientIp: fc.uniqueArray(fc.constantFrom("10.0.0.0/8", "::1/128", "192.168.1.1"), { minLength: 1 }),
        userAgent: fc.uniqueArray(fc.constantFrom("bot", "crawl(er)?", "^curl/"), { minLength: 1 }),
      },
      { requiredKeys: [] },
    );
    const actions = fc.oneof(
      fc.record({ respond: fc.record({ status: fc.constantFrom(200, 404, 503), body: anyText }) }),
      fc.record({ redirect: fc.record({ to: fc.oneof(path, fc.constant("https://example.com/x")), status: fc.constantFrom(301, 302, 307, 308), keepQuery: fc.boolean() }) }),
      fc.record({ deny: fc.constantFrom(true as const, 404 as const) }),
      fc.record(
        {
          cache: fc.record({ ttl: fc.constantFrom("10s", "1h", "2d"), key: fc.record({ headers: fc.constant(["X-Device"]), tag: seg }) }, { requiredKeys: [] }),
          responseHeaders: fc.record({ set: fc.dictionary(fc.stringMatching(/^X-[A-Za-z]{1,8}$/), anyText, { maxKeys: 2 }) }),
          requestHeaders: fc.record({ set: fc.dictionary(fc.stringMatching(/^X-[A-Za-z]{1,8}$/), anyText, { maxKeys: 2 }) }),
          origin: fc.constantFrom("app", "api"),
          rewrite: fc.record({ addPrefix: path }),
          experiment: fc.record({ name: seg.map((s) => s.replace(/\./g, "_")), variants: fc.constant([{ name: "a", weight: 50 }, { name: "b", weight: 50 }]), by: fc.constantFrom("cookie" as const, "ip" as const) }),
        },
        { requiredKeys: [] },
      ),
    );
    // `continue` only on rules that do not end the request (CDN5008 otherwise)
    const ruleSet = fc.array(
      fc.record({ when: cond, then: actions, continue: fc.boolean() }, { requiredKeys: ["then"] }).map((r) =>
        "respond" in r.then || "redirect" in r.then || "deny" in r.then ? { ...r, continue: false } : r,
      ),
      { minLength: 1, maxLength: 8 },
    );
    let valid = 0;
    await fc.assert(
      fc.asyncProperty(ruleSet, async (rs) => {
        const rules = rs.map((r, i) => ({ ...r, name: `r${i}` })) as Rule[];
        const { bundle, diagnostics } = compile(
          { name: "prop", origins: { app: { servers: [{ address: "127.0.0.1:3000" }] }, api: { servers: [{ address: "127.0.0.1:3001" }] } }, defaultOrigin: "app", cache: {}, rules },
          { target: bin.kind },
        );
        if (!bundle) {
          expect(diagnostics.some((d) => d.severity === "error")).toBe(true);
          return;
        }
        valid++;
        // written as the CLI writes it; nginx -t runs on the staged bundle (throws with nginx's output)
        await (await writeForTest(bundle)).remove();
      }),
      { numRuns: 40 },
    );
    expect(valid).toBeGreaterThan(20);
  }, 120_000);
});
