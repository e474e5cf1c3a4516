import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { bootEdge, type Edge } from "../support/edge.js";
import { startMockOrigin, type MockOrigin } from "../support/mock-origin.js";
import { policy } from "../support/policy.js";
import { startRedis, type RedisServer } from "../support/redis.js";
import { http, luaErrors } from "../support/http.js";
import { waitFor } from "../support/wait.js";
import { sendPurge, type PurgeSpec } from "../../src/purge/client.js";
import { freePort } from "../../src/runtime/nginx.js";

const TOKEN = "fleet-token-0123456789";
const CHANNEL = "cdn-build:purge:fleet-test";

let origin: MockOrigin;
let redis: RedisServer;
let a: Edge;
let b: Edge;
let lonely: Edge;

const fleetPolicy = (name: string, redisPort: number) =>
  policy(origin, {
    name,
    cache: { ttl: { "200": "1h" } },
    headers: { cacheStatus: "X-Cache" },
    purge: { token: { env: "PURGE_TOKEN" }, channel: CHANNEL },
    redis: { host: "127.0.0.1", port: redisPort, timeout: "200ms" },
  });

async function purgeOn(e: Edge, spec: PurgeSpec) {
  const [r] = await sendPurge([e.baseUrl], "/__purge", spec, { token: TOKEN });
  return r!;
}

/** Clients blocked in XREAD on the purge stream (one per node). */
async function readers(): Promise<number> {
  const out = await redis.cli("CLIENT", "LIST");
  return out.split("\n").filter((l) => /cmd=xread/.test(l)).length;
}

async function waitReaders(n: number, timeout = 10_000): Promise<void> {
  await waitFor(async () => (await readers()) >= n, { timeout, what: `${n} stream readers` });
}

/**
 * Waits until a purge fanned out through Redis has reached node `e`: its next request for `path` is a MISS
 * (HITs while waiting change nothing: no origin request, no store). That MISS is the assertion.
 */
async function missWhenApplied(e: Edge, path: string): Promise<void> {
  await waitFor(async () => (await http(e, path)).headers["x-cache"] === "MISS", { timeout: 5000, what: `a MISS for ${path} on ${e.baseUrl}` });
}

async function streamLength(): Promise<number> {
  return Number(await redis.cli("XLEN", CHANNEL));
}

/**
 * Stores `path` on a node. The request right after the first can still miss: nginx puts the object in
 * place (and the log phase writes its record) a moment after the client has the whole answer, and another
 * worker may take the next request in that moment.
 */
async function warm(e: Edge, path: string) {
  await http(e, path);
  await waitFor(async () => (await http(e, path)).headers["x-cache"] === "HIT", { what: `a HIT of ${path}` });
}

const u = (path: string) => `http://127.0.0.1${path}`;

describe("purge across a fleet (two nodes, one real redis-server)", () => {
  beforeAll(async () => {
    origin = await startMockOrigin();
    origin.setDefault((req, n) => ({ headers: { "cache-control": "max-age=3600", "cache-tag": "fleet" }, body: `${req.url}#${n}` }));
    redis = await startRedis();
    const env = { env: { PURGE_TOKEN: TOKEN } };
    [a, b] = await Promise.all([bootEdge(fleetPolicy("fleet-test", redis.port), env), bootEdge(fleetPolicy("fleet-test", redis.port), env)]);
    const closed = await freePort();
    lonely = await bootEdge(fleetPolicy("fleet-lonely", closed), env);
    await waitReaders(2);
  });
  afterEach(async () => {
    for (const e of [a, b, lonely]) expect(luaErrors(await e.errors())).toEqual([]);
  });
  afterAll(async () => {
    for (const e of [a, b, lonely]) await e?.stop();
    await redis?.stop();
    await origin?.close();
  });

  it("a URL purge on node A reaches node B: B's next request is a MISS", async () => {
    await warm(a, "/f1");
    await warm(b, "/f1");
    await warm(b, "/f2");
    const r = await purgeOn(a, { urls: [u("/f1")] });
    expect(r.ok).toBe(true);
    expect(r.answer).toMatchObject({ files: 1, fanout: { status: "published", id: expect.stringMatching(/^\d+-\d+$/) } });
    expect((await http(a, "/f1")).headers["x-cache"]).toBe("MISS");
    await missWhenApplied(b, "/f1");
    expect((await http(b, "/f2")).headers["x-cache"]).toBe("HIT");
    expect(origin.hits("/f1")).toBe(4);
  });

  it("tag and prefix purges apply on each node from its own index; a received purge is not re-published", async () => {
    await warm(b, "/g/1");
    await warm(b, "/g/2");
    await warm(b, "/h");
    const r = await purgeOn(a, { prefixes: [u("/g/")] });
    expect(r.answer).toMatchObject({ count: 0, fanout: { status: "published" } });
    await missWhenApplied(b, "/g/1");
    expect((await http(b, "/g/2")).headers["x-cache"]).toBe("MISS");
    expect((await http(b, "/h")).headers["x-cache"]).toBe("HIT");
    await warm(a, "/h");
    const before = await streamLength();
    await purgeOn(b, { tags: ["fleet"] });
    expect((await http(b, "/h")).headers["x-cache"]).toBe("MISS");
    await missWhenApplied(a, "/h");
    // one stream entry for the purge: A applied it without publishing it again
    expect((await streamLength()) - before).toBe(1);
  });

  it("purge all on one node empties every node's cache", async () => {
    await warm(a, "/all");
    await warm(b, "/all");
    const r = await purgeOn(b, { all: true });
    expect(r.answer).toMatchObject({ all: true, fanout: { status: "published", id: expect.stringMatching(/^\d+-\d+$/) } });
    expect((await http(b, "/all")).headers["x-cache"]).toBe("MISS");
    await missWhenApplied(a, "/all");
  });

  it("a node whose Redis connection dropped catches up on the purges published meanwhile", async () => {
    await warm(b, "/cu");
    await redis.cli("CLIENT", "KILL", "TYPE", "normal");
    const r = await purgeOn(a, { urls: [u("/cu")] });
    expect(r.answer).toMatchObject({ fanout: { status: "published" } });
    await waitReaders(2);
    await missWhenApplied(b, "/cu");
  });

  it("with Redis down the purge still applies locally and the answer says the fan-out failed", async () => {
    await warm(lonely, "/down");
    const r = await purgeOn(lonely, { urls: [u("/down")] });
    expect(r.status).toBe(200);
    expect(r.answer).toMatchObject({ ok: true, files: 1, fanout: { status: "failed" } });
    expect(r.answer!.fanout!.error).toBeTruthy();
    expect((await http(lonely, "/down")).headers["x-cache"]).toBe("MISS");
  });

  it("survives a Redis outage: fan-out fails meanwhile, subscribers reconnect after", async () => {
    await redis.stop();
    await warm(a, "/o");
    const during = await purgeOn(a, { urls: [u("/o")] });
    expect(during.answer).toMatchObject({ ok: true, files: 1, fanout: { status: "failed" } });
    await redis.start();
    await waitReaders(2, 15_000);
    await warm(b, "/o2");
    const after = await purgeOn(a, { urls: [u("/o2")] });
    expect(after.answer).toMatchObject({ fanout: { status: "published", id: expect.stringMatching(/^\d+-\d+$/) } });
    await missWhenApplied(b, "/o2");
  });
});
