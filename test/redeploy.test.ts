/**
 * Rebuilding into the folder of a running edge (what `cdn-build build --out <dir>` does on a live host), then
 * reloading nginx, under steady traffic: nothing fails, the cache survives, the new bundle is served.
 */
import { rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { Agent, request } from "undici";
import { describe, expect, it } from "vitest";
import { compile } from "../src/compile.js";
import { writeBundleAtomic } from "../src/emit/write.js";
import { freePort, startBundle, testConfig } from "../src/runtime/nginx.js";
import { nginxBinary, projectDir } from "./support/edge.js";
import { luaErrors } from "./support/http.js";
import { startMockOrigin } from "./support/mock-origin.js";
import { policy } from "./support/policy.js";
import { waitFor } from "./support/wait.js";

const CACHED = 20;
const REDEPLOYS = 4;
const CLIENTS = 6;

describe("redeploy into the folder of a running edge", () => {
  it(`${REDEPLOYS} rebuilds + reloads under traffic: no failed request, cache kept, new bundle served`, async () => {
    const bin = await nginxBinary();
    const origin = await startMockOrigin();
    origin.setDefault((req, n) =>
      req.path.startsWith("/c/")
        ? { headers: { "cache-control": "max-age=3600" }, body: `${req.path}#${n}` }
        : { headers: { "cache-control": "no-store" }, body: `${req.path}#${n}` },
    );
    const port = await freePort();
    const release = (version: number) =>
      policy(origin, {
        name: "redeploy",
        listen: { http: port, address: "127.0.0.1" },
        cache: { ttl: { "200": "1h" } },
        headers: { cacheStatus: "X-Cache", response: { set: { "X-Deploy": `v${version}` } } },
        health: {},
      });
    // what `cdn-build build --verify` does: compile, stage, nginx -t there, swap into the folder
    const deploy = async (version: number) => {
      const { bundle, diagnostics } = compile(release(version), { target: bin.kind });
      if (!bundle) throw new Error(JSON.stringify(diagnostics));
      await writeBundleAtomic(bundle, dir, async (stage) => {
        const t = await testConfig(stage, bin);
        if (!t.ok) throw new Error(t.output);
      });
    };

    const project = await projectDir("cdn-redeploy-");
    const dir = join(project, "edge");
    await deploy(1);
    const folder = await stat(dir);
    const edge = await startBundle(dir, { port, bin });
    // One connection per request: a graceful reload closes idle keep-alive connections of the old workers, and
    // a request written onto one at that instant is lost on the wire ("other side closed") whatever the bundle
    // does; HTTP clients retry those (RFC 9112 9.3.1). This test measures what the rebuild does to requests.
    const agent = new Agent({ pipelining: 0, connections: CLIENTS * 2 });
    const get = async (path: string) => {
      const res = await request(edge.baseUrl + path, { dispatcher: agent, reset: true, headersTimeout: 5000, bodyTimeout: 5000 });
      const body = await res.body.text();
      return { status: res.statusCode, headers: res.headers, body };
    };

    try {
      // objects stored before the redeploys
      for (let i = 0; i < CACHED; i++) expect((await get(`/c/${i}`)).headers["x-cache"]).toBe("MISS");
      for (let i = 0; i < CACHED; i++) expect((await get(`/c/${i}`)).headers["x-cache"]).toBe("HIT");
      const before = Array.from({ length: CACHED }, (_, i) => origin.hits(`/c/${i}`));
      expect(before).toEqual(Array(CACHED).fill(1));

      // steady traffic: each client alternates a cached object and an uncached path
      const stats = { sent: 0, failed: 0, status5xx: 0, errors: [] as string[] };
      let running = true;
      const client = async (c: number) => {
        for (let n = 0; running; n++) {
          const path = n % 2 === 0 ? `/c/${(c * 7 + n) % CACHED}` : `/u/${c}-${n}`;
          stats.sent++;
          try {
            const r = await get(path);
            if (r.status >= 500) {
              stats.status5xx++;
              stats.errors.push(`${path}: ${r.status}`);
            } else if (r.status !== 200) {
              stats.failed++;
              stats.errors.push(`${path}: ${r.status}`);
            }
          } catch (err) {
            stats.failed++;
            stats.errors.push(`${path}: ${(err as Error).message}`);
          }
        }
      };
      const clients = Array.from({ length: CLIENTS }, (_, c) => client(c));
      try {
        for (let v = 2; v <= REDEPLOYS + 1; v++) {
          const mark = stats.sent;
          await waitFor(() => stats.sent >= mark + 200, { timeout: 10_000, what: "200 requests between two redeploys" });
          await deploy(v);
          await edge.reload();
        }
        const mark = stats.sent;
        await waitFor(() => stats.sent >= mark + 200, { timeout: 10_000, what: "200 requests after the last reload" });
      } finally {
        running = false;
        await Promise.all(clients);
      }
      console.log(`redeploy: ${stats.sent} requests, ${stats.failed} failed, ${stats.status5xx} x 5xx over ${REDEPLOYS} redeploys`);
      expect(stats.errors.slice(0, 10)).toEqual([]);
      expect({ failed: stats.failed, status5xx: stats.status5xx }).toEqual({ failed: 0, status5xx: 0 });
      expect(stats.sent).toBeGreaterThan(1000);

      // the folder is the same one (never moved), the cache objects stored before are still hits
      const now = await stat(dir);
      expect(now.ino).toBe(folder.ino);
      for (let i = 0; i < CACHED; i++) {
        const r = await get(`/c/${i}`);
        expect(r.headers["x-cache"], `/c/${i}`).toBe("HIT");
        expect(r.body).toBe(`/c/${i}#1`);
      }
      expect(Array.from({ length: CACHED }, (_, i) => origin.hits(`/c/${i}`))).toEqual(before);

      // the last bundle is served
      const last = await get("/u/final");
      expect(last.headers["x-deploy"]).toBe(`v${REDEPLOYS + 1}`);

      const log = await edge.errorLog();
      expect(log.split("\n").filter((l) => /\[(crit|alert|emerg)\]/.test(l))).toEqual([]);
      expect(luaErrors(log.split("\n").filter((l) => /\[error\]/.test(l)))).toEqual([]);
    } finally {
      await agent.close();
      await edge.stop();
      await origin.close();
      await rm(project, { recursive: true, force: true });
    }
  });
});
