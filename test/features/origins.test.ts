import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { compile } from "../../src/compile.js";
import type { Origin, Policy } from "../../src/policy/types.js";
import { bootEdge, type Edge } from "../support/edge.js";
import { startMockOrigin, type MockOrigin } from "../support/mock-origin.js";
import { http, luaErrors } from "../support/http.js";
import { sleep, waitFor } from "../support/wait.js";

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

  it("retries a 502/504 on the next server when retryOn lists them", async () => {
    const bad = await origin();
    const good = await origin();
    bad.setDefault((_req, n) => ({ status: n % 2 ? 502 : 504, body: "gateway" }));
    const e = await edge({
      name: "retry",
      origins: { app: { servers: [{ address: bad.address }, { address: good.address }], retries: 1, retryOn: ["error", "timeout", 502, 504], maxFails: 0 } },
    });
    for (let i = 0; i < 6; i++) expect((await http(e, `/r${i}`)).status).toBe(200);
    expect(good.hits()).toBe(6);
  });

  it("passes a 503 of a live origin to the client by default, and leaves the server in the pool", async () => {
    const busy = await origin();
    const good = await origin();
    busy.setDefault({ status: 503, body: "busy" });
    const e = await edge({ name: "pass503", origins: { app: { servers: [{ address: busy.address }, { address: good.address }] } }, workers: { processes: 1 } });
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push((await http(e, `/p${i}`)).status);
    // round robin alternates; nothing is retried (one attempt per request) and nothing is marked down
    expect(statuses.filter((s) => s === 503)).toHaveLength(10);
    expect(statuses.filter((s) => s === 200)).toHaveLength(10);
    expect(busy.hits() + good.hits()).toBe(20);
    expect(await e.errorLog()).not.toMatch(/temporarily disabled|no live upstreams/);
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

/** Sends requests from `concurrency` loops until `ms` have passed; each result with the time it was sent. */
async function load(e: Edge, concurrency: number, ms: number): Promise<{ at: number; status: number; state: string }[]> {
  const out: { at: number; status: number; state: string }[] = [];
  const end = Date.now() + ms;
  let i = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < end) {
        const at = Date.now();
        const r = await http(e, `/burst/${i++}`);
        out.push({ at, status: r.status, state: r.headers["x-state"] ?? "edge" });
      }
    }),
  );
  return out;
}

function tally(results: { status: number }[]): Record<number, number> {
  const t: Record<number, number> = {};
  for (const r of results) t[r.status] = (t[r.status] ?? 0) + 1;
  return t;
}

describe("origins: a burst of 503 from a live origin", () => {
  for (const layout of ["two servers", "a server and a backup"] as const) {
    it(`answers no 502 during or after a 1 s burst of 503 under load (${layout})`, async () => {
      const a = await origin();
      const b = await origin();
      let failing = false;
      // the origin says in which state it answered: the client's clock cannot tell under load
      for (const o of [a, b]) o.setDefault(() => (failing ? { status: 503, headers: { "x-state": "failing" }, body: "busy" } : { headers: { "x-state": "ok" }, body: "ok" }));
      const servers = layout === "two servers" ? [{ address: a.address }, { address: b.address }] : [{ address: a.address }, { address: b.address, backup: true }];
      const e = await edge({ name: "burst", origins: { app: { servers } }, workers: { processes: 2 } });
      let failedAt = 0;
      let recoveredAt = 0;
      const t1 = setTimeout(() => ((failing = true), (failedAt = Date.now())), 500);
      const t2 = setTimeout(() => ((failing = false), (recoveredAt = Date.now())), 1500);
      // 4 concurrent clients for 3 s: 0.5 s healthy, 1 s of 503, 1.5 s after the origin recovered
      const results = await load(e, 4, 3000);
      clearTimeout(t1);
      clearTimeout(t2);
      // a request sent just before the switch may still see the old answer: 50 ms of grace
      const before = results.filter((r) => r.at < failedAt);
      const during = results.filter((r) => r.at >= failedAt + 50 && r.at < recoveredAt);
      const after = results.filter((r) => r.at >= recoveredAt + 50);
      console.log(`[origins] 503 burst (${layout}): before ${JSON.stringify(tally(before))}, during ${JSON.stringify(tally(during))}, after recovery ${JSON.stringify(tally(after))}`);
      expect(results.filter((r) => r.status === 502)).toHaveLength(0);
      // every answer is the origin's own (no server was taken out): its 503s while failing, 200 after
      expect(results.filter((r) => r.state === "edge")).toHaveLength(0);
      expect(results.every((r) => (r.state === "failing" ? r.status === 503 : r.status === 200))).toBe(true);
      expect(during.length).toBeGreaterThan(50);
      expect(after.length).toBeGreaterThan(100);
      expect(results.filter((r) => r.state === "ok" && r.at >= recoveredAt).length).toBeGreaterThan(100);
      expect(await e.errorLog()).not.toMatch(/temporarily disabled|no live upstreams/);
    });
  }
});

async function accessLog(e: Edge): Promise<{ status: number; upstream: string; upstreamStatus: string }[]> {
  const text = await readFile(join(e.dir, "logs", "access.log"), "utf8").catch(() => "");
  return text.trim().split("\n").map((l) => JSON.parse(l));
}

describe("origins: attempts per request against an origin that resets connections", () => {
  it("a single server: at most keepalive + 1 attempts for the first request, then 1; every try logged", async () => {
    const o = await origin();
    let reset = false;
    o.setDefault(() => (reset ? { reset: true } : { body: "ok", delayMs: 50 }));
    const keepalive = 4;
    const e = await edge({ name: "reset1", origins: { app: { servers: [{ address: o.address }], keepalive } }, workers: { processes: 1 } });
    // 8 concurrent requests open 8 connections; the worker keeps `keepalive` of them idle
    await Promise.all(Array.from({ length: 8 }, (_, i) => http(e, `/warm/${i}`)));
    reset = true;
    const attempts: number[] = [];
    for (let i = 0; i < 3; i++) {
      const before = o.hits();
      expect((await http(e, `/reset/${i}`)).status).toBe(502);
      attempts.push(o.hits() - before);
    }
    console.log(`[origins] resetting origin, single server, keepalive ${keepalive}: origin attempts per request ${attempts.join(", ")}`);
    // nginx gives back the try of an attempt that failed on a pooled connection: the first request goes
    // through the worker's idle connections, then one fresh one; the failed connections are not pooled again
    expect(attempts[0]).toBeGreaterThanOrEqual(1);
    expect(attempts[0]).toBeLessThanOrEqual(keepalive + 1);
    expect(attempts.slice(1)).toEqual([1, 1]);
    // the access log lists every try, the error log has one line per failed try
    // the log is buffered (written within a second)
    await waitFor(async () => (await accessLog(e)).filter((l) => l.status === 502).length >= attempts.length, { what: "the 502 lines in access.log" });
    const log = (await accessLog(e)).filter((l) => l.status === 502);
    expect(log.map((l) => l.upstream.split(", ").length)).toEqual(attempts);
    expect(log[0]!.upstreamStatus).toBe(Array(attempts[0]).fill("502").join(", "));
    const tries = (await e.errorLog()).split("\n").filter((l) => /Connection reset by peer|prematurely closed/.test(l));
    expect(tries).toHaveLength(attempts.reduce((a, b) => a + b, 0));
  });

  it("several servers: each server is tried at most once per request, however many connections are pooled", async () => {
    const servers = [await origin(), await origin(), await origin()];
    let reset = false;
    for (const o of servers) o.setDefault(() => (reset ? { reset: true } : { body: "ok", delayMs: 50 }));
    const e = await edge({
      name: "reset3",
      origins: { app: { servers: [{ address: servers[0]!.address }, { address: servers[1]!.address }, { address: servers[2]!.address, backup: true }] } },
      workers: { processes: 1 },
    });
    await Promise.all(Array.from({ length: 40 }, (_, i) => http(e, `/warm/${i}`)));
    reset = true;
    const hits = () => servers.reduce((n, o) => n + o.hits(), 0);
    const attempts: number[] = [];
    for (let i = 0; i < 4; i++) {
      const before = hits();
      expect((await http(e, `/reset/${i}`)).status).toBe(502);
      attempts.push(hits() - before);
    }
    console.log(`[origins] resetting origin, 2 servers + 1 backup, keepalive 32: origin attempts per request ${attempts.join(", ")}`);
    for (const n of attempts) expect(n).toBeLessThanOrEqual(3);
    expect(attempts[0]).toBeGreaterThanOrEqual(2);
  });

  it("stops going from server to server once retryTimeout has passed", async () => {
    const a = await origin();
    const b = await origin();
    for (const o of [a, b]) o.setDefault({ body: "late", delayMs: 400 });
    const slow = (retryTimeout: string): Policy["origins"] => ({
      app: { servers: [{ address: a.address }, { address: b.address }], readTimeout: "200ms", retryTimeout, maxFails: 0 },
    });
    const bounded = await edge({ name: "budget", origins: slow("150ms"), workers: { processes: 1 } });
    expect((await http(bounded, "/x")).status).toBe(504);
    expect(a.hits() + b.hits()).toBe(1);
    const unbounded = await edge({ name: "nobudget", origins: slow("0s"), workers: { processes: 1 } });
    expect((await http(unbounded, "/y")).status).toBe(504);
    expect(a.hits("/y") + b.hits("/y")).toBe(2);
  });
});

describe("origins: settings and checks", () => {
  const conf = (o: Partial<Origin>, extra: Partial<Policy> = {}) => {
    const r = compile({ name: "o", origins: { app: { servers: [{ address: "127.0.0.1:3000" }, { address: "127.0.0.1:3001", backup: true }], ...o } }, ...extra });
    expect(r.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
    return r.bundle!.files.get("nginx.conf")!;
  };
  const codes = (o: Partial<Origin>) =>
    compile({ name: "o", origins: { app: { servers: [{ address: "127.0.0.1:3000" }, { address: "127.0.0.1:3001" }], ...o } } }).diagnostics.map((d) => `${d.severity} ${d.code} ${d.path}`);

  it("defaults: only errors and timeouts retried and counted, 3 fails in 10 s, idle connections closed after 4 s", () => {
    const c = conf({});
    expect(c).toMatch(/server 127\.0\.0\.1:3000 weight=1 max_fails=3 fail_timeout=10s;/);
    expect(c).toMatch(/server 127\.0\.0\.1:3001 max_fails=3 fail_timeout=10s backup;/);
    expect(c).toMatch(/keepalive 32;\s+keepalive_timeout 4s;\s+keepalive_requests 1000;/);
    expect(c).toMatch(/proxy_next_upstream error timeout;\s+proxy_next_upstream_tries 2;\s+proxy_next_upstream_timeout 10s;/);
  });

  it("takes every setting from the pool, a server's own maxFails/failTimeout first", () => {
    const c = conf({
      retryOn: [504, "error", "invalidHeader", "timeout", 502],
      retries: 2,
      retryTimeout: "3s",
      maxFails: 5,
      failTimeout: "30s",
      keepalive: 8,
      keepaliveTimeout: "50s",
      keepaliveRequests: 200,
      servers: [{ address: "127.0.0.1:3000", maxFails: 1, failTimeout: "5s" }, { address: "127.0.0.1:3001" }],
    });
    expect(c).toMatch(/server 127\.0\.0\.1:3000 weight=1 max_fails=1 fail_timeout=5s;/);
    expect(c).toMatch(/server 127\.0\.0\.1:3001 weight=1 max_fails=5 fail_timeout=30s;/);
    expect(c).toMatch(/keepalive 8;\s+keepalive_timeout 50s;\s+keepalive_requests 200;/);
    expect(c).toMatch(/proxy_next_upstream error timeout invalid_header http_502 http_504;\s+proxy_next_upstream_tries 3;\s+proxy_next_upstream_timeout 3s;/);
    expect(conf({ retryOn: [], retries: 0 })).toMatch(/proxy_next_upstream off;/);
    expect(conf({ retryTimeout: "0s" })).toMatch(/proxy_next_upstream_timeout 0s;/);
    expect(/upstream origin_app \{[^}]*\}/.exec(conf({ keepalive: 0 }))![0]).not.toMatch(/keepalive/);
  });

  it("warns about retry settings that make no sense", () => {
    expect(codes({ retryOn: [502, 504] })).toEqual(["warning CDN2040 /origins/app/retryOn"]);
    expect(codes({ retryOn: ["error", "timeout", 503, 429] })).toEqual(["warning CDN2041 /origins/app/retryOn/2", "warning CDN2041 /origins/app/retryOn/3"]);
    // without failure accounting a burst of 503 cannot take the servers out
    expect(codes({ retryOn: ["error", "timeout", 503], maxFails: 0 })).toEqual([]);
    expect(codes({ retryOn: ["error", "timeout"], retries: 0 })).toEqual(["warning CDN2042 /origins/app/retryOn"]);
    expect(codes({ retryOn: [], retries: 2 })).toEqual(["warning CDN2042 /origins/app/retryOn"]);
    expect(codes({ connectTimeout: "10s" })).toEqual(["warning CDN2043 /origins/app/retryTimeout"]);
    expect(codes({ connectTimeout: "10s", retryTimeout: "0s" })).toEqual([]);
    expect(codes({ retryOn: ["error", "error"] })).toEqual(["error CDN1000 /origins/app/retryOn"]);
    expect(codes({ retryOn: [500, 418 as never] })[0]).toMatch(/^error CDN100\d \/origins\/app\/retryOn\/1$/);
    expect(codes({ keepaliveTimeout: "soon" })).toEqual(["error CDN1004 /origins/app/keepaliveTimeout"]);
    expect(codes({ failTimeout: "1500ms" })).toEqual(["error CDN2006 /origins/app/failTimeout"]);
    expect(codes({})).toEqual([]);
  });

  it("warns when a pool reached through rules has its own retry conditions (CDN5014)", () => {
    const r = compile({
      name: "o",
      origins: { app: { servers: [{ address: "127.0.0.1:3000" }] }, api: { servers: [{ address: "127.0.0.1:3001" }], retryOn: ["error", "timeout", 502] } },
      defaultOrigin: "app",
      rules: [{ name: "api", when: { path: { prefix: "/api/" } }, then: { origin: "api" } }],
    });
    expect(r.diagnostics.map((d) => `${d.severity} ${d.code} ${d.path}`)).toEqual(["warning CDN5014 /origins/api"]);
    expect(r.diagnostics[0]!.message).toMatch(/retryOn/);
  });
});
