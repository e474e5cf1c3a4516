import { afterEach, describe, expect, it } from "vitest";
import { compile } from "../../src/compile.js";
import type { Policy } from "../../src/policy/types.js";
import { bootEdge, type Edge } from "../support/edge.js";
import { http, luaErrors } from "../support/http.js";
import { sleep } from "../support/wait.js";
import { startMockOrigin, type MockOrigin } from "../support/mock-origin.js";
import { startRedis, type RedisServer } from "../support/redis.js";

/**
 * The fleet's Redis seen from the edge when it goes wrong: a wrong or missing password, and a Redis killed
 * while traffic flows. The users are the cluster rate limits (fail open / closed) and the purge fan-out
 * reader (a timer in worker 0); what is measured is what reaches the client and how many lines reach
 * error.log.
 */

const PURGE_TOKEN = "redis-test-token-0123456789";

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!();
});

async function origin(): Promise<MockOrigin> {
  const o = await startMockOrigin();
  o.setDefault({ body: "ok" });
  cleanup.push(() => o.close());
  return o;
}
async function redisServer(): Promise<RedisServer> {
  const r = await startRedis();
  cleanup.push(() => r.stop());
  return r;
}
async function edge(p: Omit<Policy, "listen">, env: Record<string, string>): Promise<Edge> {
  const e = await bootEdge(p, { env: { PURGE_TOKEN, ...env } });
  cleanup.push(async () => {
    expect(luaErrors(await e.errors())).toEqual([]);
    await e.stop();
  });
  return e;
}

/** Cluster limits that never refuse while Redis answers; one fails open, one closed. Purge fan-out on. */
function policy(name: string, o: MockOrigin, redis: Policy["redis"]): Omit<Policy, "listen"> {
  return {
    name,
    workers: { processes: 2 },
    origins: { app: { servers: [{ address: o.address }] } },
    cache: {},
    purge: { token: { env: "PURGE_TOKEN" } },
    redis: { timeout: "500ms", ...redis },
    rateLimit: [
      { name: "open", rate: "1000r/s", burst: 1000, scope: "cluster", onRedisError: "open", paths: ["/open/*"] },
      { name: "closed", rate: "1000r/s", burst: 1000, scope: "cluster", onRedisError: "closed", paths: ["/closed/*"] },
      { name: "few", rate: "1r/m", burst: 1, scope: "cluster", onRedisError: "closed", paths: ["/few/*"] },
    ],
  };
}

/** `concurrency` clients alternating /open/ and /closed/ for `ms`; statuses by limit, with send times. */
async function traffic(e: Edge, concurrency: number, ms: number) {
  const out: { limit: "open" | "closed"; at: number; status: number }[] = [];
  const end = Date.now() + ms;
  let i = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < end) {
        const n = i++;
        const limit = n % 2 ? "open" : "closed";
        const at = Date.now();
        const r = await http(e, `/${limit}/${n}`);
        out.push({ limit, at, status: r.status });
        await sleep(2);
      }
    }),
  );
  return out;
}

const lines = (log: string) => log.split("\n").filter((l) => l.trim() !== "");
const statuses = (rs: { status: number }[]) => [...new Set(rs.map((r) => r.status))].sort();

describe("redis: wrong or missing password", () => {
  it("recognises a refused AUTH: one throttled warning that says so, no pooled connection, limits fail as declared", async () => {
    const o = await origin();
    const redis = await redisServer();
    await redis.cli("CONFIG", "SET", "requirepass", "right");
    const e = await edge(policy("redis-auth", o, { port: redis.port, password: { env: "REDIS_PASSWORD" } }), { REDIS_PASSWORD: "wrong" });

    const rs = await traffic(e, 4, 3000);
    expect(statuses(rs.filter((r) => r.limit === "open"))).toEqual([200]);
    expect(statuses(rs.filter((r) => r.limit === "closed"))).toEqual([429]);
    const log = lines(await e.errorLog());
    console.log(`[redis] wrong password: ${rs.length} requests in 3 s, ${log.length} error.log lines`);
    expect(log.length).toBeGreaterThanOrEqual(1);
    expect(log.length).toBeLessThanOrEqual(3); // the rate limits' warning (once per 10 s per node) + the purge reader's (once per outage)
    for (const l of log) expect(l).toMatch(/\[warn\].*AUTH failed \(WRONGPASS.*environment variable REDIS_PASSWORD/);
    expect(log.some((l) => /rate limit "(open|closed)": Redis AUTH failed/.test(l))).toBe(true);
    // every connection that failed AUTH was closed: the only client left is the one asking (polled: the
    // purge reader may be between its connect and its AUTH; a pooled connection would stay for idleTimeout)
    let clients: string[] = [];
    for (let i = 0; i < 20; i++) {
      clients = lines(await redis.cli("-a", "right", "--no-auth-warning", "CLIENT", "LIST"));
      if (clients.length === 1) break;
      await sleep(100);
    }
    expect(clients).toHaveLength(1);
    expect(clients[0]).toMatch(/cmd=client/);

    // the server takes the edge's password now: after the per-worker backoff the limits count again
    await redis.cli("-a", "right", "--no-auth-warning", "CONFIG", "SET", "requirepass", "wrong");
    await sleep(1100);
    const after = [];
    for (let i = 0; i < 6; i++) after.push((await http(e, `/few/${i}`)).status);
    // each of the two workers may still be in its 1 s backoff for one request: 429 (closed) until it retries
    expect(after.slice(-3)).toEqual([429, 429, 429]);
    expect(after.filter((s) => s === 200)).toHaveLength(2);
  });

  it("recognises a server that requires a password the policy does not give (NOAUTH)", async () => {
    const o = await origin();
    const redis = await redisServer();
    await redis.cli("CONFIG", "SET", "requirepass", "right");
    const e = await edge(policy("redis-noauth", o, { port: redis.port }), {});
    const rs = await traffic(e, 2, 1500);
    expect(statuses(rs.filter((r) => r.limit === "open"))).toEqual([200]);
    expect(statuses(rs.filter((r) => r.limit === "closed"))).toEqual([429]);
    const log = lines(await e.errorLog());
    console.log(`[redis] missing password: ${rs.length} requests, ${log.length} error.log lines`);
    expect(log.length).toBeGreaterThanOrEqual(1);
    expect(log.length).toBeLessThanOrEqual(3);
    for (const l of log) expect(l).toMatch(/AUTH failed \(NOAUTH .*the policy gives no redis\.password/);
  });
});

describe("redis: killed while traffic flows", () => {
  it("answers per failOpen / failClosed, never a 5xx, with a bounded number of error.log lines", async () => {
    const o = await origin();
    const redis = await redisServer();
    const e = await edge(policy("redis-kill", o, { port: redis.port }), {});
    const killAt = Date.now() + 1000;
    let settledLog = "";
    const kill = (async () => {
      await sleep(1000);
      await redis.stop();
      // lines after the first 2 s of the outage: the steady state must be quiet
      await sleep(2000);
      settledLog = await e.errorLog();
    })();
    const rs = await traffic(e, 2, 6000);
    await kill;
    const log = lines(await e.errorLog());
    const steady = lines((await e.errorLog()).slice(settledLog.length));
    const before = rs.filter((r) => r.at < killAt - 20);
    const outage = rs.filter((r) => r.at > killAt + 200);
    console.log(
      `[redis] killed mid-traffic: ${rs.length} requests, ${log.length} error.log lines over the 5 s outage ` +
        `(${log.filter((l) => /\[error\]/.test(l)).length} [error] from calls in flight, ${log.filter((l) => /\[warn\]/.test(l)).length} [warn]), ${steady.length} in its last 3 s`,
    );
    expect(rs.filter((r) => r.status >= 500)).toEqual([]);
    expect(statuses(before)).toEqual([200]);
    expect(statuses(outage.filter((r) => r.limit === "open"))).toEqual([200]);
    expect(statuses(outage.filter((r) => r.limit === "closed"))).toEqual([429]);
    // in flight at the kill: at most one reset per client connection; then one rate-limit warning per node
    // per 10 s and the purge reader's two (stream read failed, cannot connect), whatever the traffic
    expect(log.filter((l) => /\[error\]/.test(l)).length).toBeLessThanOrEqual(2);
    expect(log.filter((l) => /\[warn\]/.test(l)).length).toBeLessThanOrEqual(3);
    expect(steady).toEqual([]);
  });

  it("silences socket errors whenever the policy has a Redis, not only with cluster limits", () => {
    const conf = (p: Partial<Policy>) => compile({ name: "r", origins: { app: { servers: [{ address: "127.0.0.1:3000" }] } }, ...p }).bundle!.files.get("nginx.conf")!;
    expect(conf({ redis: {}, purge: { token: { env: "T" } } })).toContain("lua_socket_log_errors off;");
    // one for the whole http block, besides the proxy location's (client.bodyDeadline, docs/edge.md#client-limits)
    expect(conf({ redis: {}, rateLimit: [{ name: "a", rate: "1r/s", scope: "cluster" }] }).match(/lua_socket_log_errors off;/g)).toHaveLength(2);
    expect(conf({}).match(/lua_socket_log_errors off;/g)).toHaveLength(1);
  });
});
