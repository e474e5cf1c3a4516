/**
 * Every purge published after a node started reaches it once Redis is reachable again, whatever happened
 * meanwhile: the node's link to Redis cut across a reload, across a restart, and a node that started while
 * Redis was unreachable. Node A talks to Redis directly; node B through a TCP relay the test can cut.
 */
import { createServer, connect, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMockOrigin, type MockOrigin } from "../support/mock-origin.js";
import { startRedis, type RedisServer } from "../support/redis.js";
import { http, luaErrors } from "../support/http.js";
import { waitFor } from "../support/wait.js";
import { sendPurge } from "../../src/purge/client.js";
import { freePort } from "../../src/runtime/nginx.js";
import type { Policy } from "../../src/policy/types.js";
import { restartableEdge, type RestartableEdge } from "./support.js";

const TOKEN = "fleet-int-token-0123456789";
const CHANNEL = "cdn-build:purge:fleet-integrity";

/** A TCP relay to 127.0.0.1:target that can be cut (every connection reset, new ones refused) and restored. */
interface Relay {
  port: number;
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

async function relay(target: number): Promise<Relay> {
  const port = await freePort();
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  const open = () =>
    new Promise<void>((resolve) => {
      server = createServer((client) => {
        const upstream = connect(target, "127.0.0.1");
        sockets.add(client).add(upstream);
        const drop = () => {
          client.destroy();
          upstream.destroy();
          sockets.delete(client);
          sockets.delete(upstream);
        };
        client.on("error", drop).on("close", drop);
        upstream.on("error", drop).on("close", drop);
        client.pipe(upstream).pipe(client);
      });
      server.listen(port, "127.0.0.1", () => resolve());
    });
  const shut = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      sockets.clear();
      if (!server) return resolve();
      server.close(() => resolve());
      server = undefined;
    });
  await open();
  return { port, cut: shut, restore: open, close: shut };
}

let origin: MockOrigin;
let redis: RedisServer;
let link: Relay;
let a: RestartableEdge;
let b: RestartableEdge | undefined;

const fleetPolicy = (name: string, redisPort: number): Omit<Policy, "listen"> => ({
  name,
  origins: { app: { servers: [{ address: origin.address }], retries: 0 } },
  cache: { ttl: { "200": "1h" } },
  headers: { cacheStatus: "X-Cache" },
  purge: { token: { env: "PURGE_TOKEN" }, channel: CHANNEL },
  redis: { host: "127.0.0.1", port: redisPort, timeout: "200ms" },
});

const ENV = { PURGE_TOKEN: TOKEN };

beforeAll(async () => {
  origin = await startMockOrigin();
  origin.setDefault((req, n) => ({ headers: { "cache-control": "max-age=3600" }, body: `${req.path}#${n}` }));
  redis = await startRedis();
  link = await relay(redis.port);
  a = await restartableEdge(fleetPolicy("fleet-a", redis.port), ENV);
}, 60_000);

afterAll(async () => {
  for (const e of [a, b]) {
    if (!e) continue;
    expect(luaErrors(await e.errors())).toEqual([]);
    await e.stop();
  }
  await link?.close();
  await redis?.stop();
  await origin?.close();
});

async function warm(e: RestartableEdge, path: string) {
  await http(e, path);
  expect((await http(e, path)).headers["x-cache"]).toBe("HIT");
}

async function purgeOnA(path: string) {
  const [r] = await sendPurge([a.baseUrl], "/__purge", { urls: [`http://127.0.0.1${path}`] }, { token: TOKEN });
  expect(r!.ok).toBe(true);
  expect((r!.answer as { fanout: { status: string } }).fanout.status).toBe("published");
}

/** The purge reached B: its next request for `path` is a MISS (HITs while waiting change nothing). */
async function appliedOnB(path: string) {
  await waitFor(async () => (await http(b!, path)).headers["x-cache"] === "MISS", { timeout: 10_000, what: `the purge of ${path} on node B` });
}

describe("fleet fan-out: no published purge is lost by a node", () => {
  it("link cut, purge published, node reloaded, link back: applied", async () => {
    b = await restartableEdge(fleetPolicy("fleet-b", link.port), ENV);
    await warm(b, "/f1");
    // B's reader is connected: give it one purge to set its position
    await warm(b, "/f0");
    await purgeOnA("/f0");
    await appliedOnB("/f0");
    await link.cut();
    await purgeOnA("/f1");
    await b.running.reload();
    await link.restore();
    await appliedOnB("/f1");
  }, 60_000);

  it("link cut, purge published, node restarted, link back: applied", async () => {
    await warm(b!, "/f2");
    await link.cut();
    await purgeOnA("/f2");
    await b!.restart();
    await link.restore();
    await appliedOnB("/f2");
  }, 60_000);

  it("node started while Redis was unreachable: a purge published after it started is applied once Redis is back", async () => {
    await b!.stop();
    await link.cut();
    b = await restartableEdge(fleetPolicy("fleet-c", link.port), ENV);
    await warm(b, "/f3");
    await purgeOnA("/f3");
    await link.restore();
    await appliedOnB("/f3");
  }, 60_000);
});
