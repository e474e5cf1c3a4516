/**
 * The cache's side of the purge contract, end to end without the purge endpoint: the booted bundle gets a
 * test-only location that writes markers into the `cdn_markers` dict exactly as lua-src/core/markers.ts
 * does ("m:" .. key / "m:*" = "<hard time>|<soft time>", and "v" bumped for the global ones); both tiers
 * must honour them.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { buildForTest, nginxBinary } from "../support/edge.js";
import { startMockOrigin, type MockOrigin } from "../support/mock-origin.js";
import { http, luaErrors } from "../support/http.js";
import { sleep, waitFor } from "../support/wait.js";
import { freePort, startBundle, type RunningNginx } from "../../src/runtime/nginx.js";
import type { Policy } from "../../src/policy/types.js";

let origin: MockOrigin;
let edge: RunningNginx;
let built: Awaited<ReturnType<typeof buildForTest>> | undefined;

const MARK = `
location = /__test_mark {
  content_by_lua_block {
    local args = ngx.req.get_uri_args()
    local key = args.all and "m:*" or ("m:" .. ngx.var.scheme .. "://" .. ngx.var.host .. args.path)
    local now = ngx.now()
    local value = tonumber(args.flags) == 1 and (now .. "|0") or ("0|" .. now)
    ngx.shared.cdn_markers:set(key, value)
    ngx.shared.cdn_markers:incr("v", 1, 0)
    ngx.say("ok")
  }
}
`;

async function mark(path: string | null, flags: 1 | 2): Promise<void> {
  // a marker applies to objects stored at or before it: keep the clock readings of store, mark and the next
  // store apart (a wait on the clock itself, there is nothing else to observe)
  await sleep(20);
  const q = path === null ? "all=1" : `path=${encodeURIComponent(path)}`;
  expect((await http(edge, `/__test_mark?${q}&flags=${flags}`)).body).toBe("ok\n");
  await sleep(20);
}

describe("purge markers (contract with the purge feature)", () => {
  beforeAll(async () => {
    origin = await startMockOrigin();
    const port = await freePort();
    const policy: Policy = {
      name: "markers",
      listen: { http: port, address: "127.0.0.1" },
      origins: { app: { servers: [{ address: origin.address }], retries: 0 } },
      cache: { ttl: { "200": "1h" }, ram: { size: "1m", maxObjectSize: "64k", minHits: 1 } },
      headers: { cacheStatus: "X-Cache" },
    };
    built = await buildForTest(policy, {
      patchConf: (conf) => {
        // the cache declares the markers' dict whenever the policy has a cache
        expect(conf).toMatch(/lua_shared_dict cdn_markers /);
        return conf.replace(/(\n\s*location \/ \{)/, `\n${MARK}$1`);
      },
    });
    expect(built.conf).toContain("location = /__test_mark");
    edge = await startBundle(built.dir, { port, bin: await nginxBinary() });
  });
  afterEach(async () => {
    const log = await edge.errorLog();
    expect(luaErrors(log.split("\n").filter((l) => /\[(error|crit|alert|emerg)\]/.test(l)))).toEqual([]);
  });
  afterAll(async () => {
    await edge?.stop();
    await built?.remove();
    await origin?.close();
  });

  const versions = (p: string, extra = "") => origin.route(p, (_r, n) => ({ headers: { "cache-control": `max-age=600${extra}` }, body: `${p}:${n}` }));

  it("a hard purge of a key makes the next request fetch a new copy, in both tiers", async () => {
    versions("/hard-ram");
    versions("/hard-disk");
    await http(edge, "/hard-ram");
    expect((await http(edge, "/hard-ram")).headers["x-cache"]).toBe("HIT-RAM");
    await mark("/hard-ram", 1);
    const r = await http(edge, "/hard-ram");
    // a hard-purged object no longer exists: MISS (the disk file is still there here, only the marker is set)
    expect([r.body, r.headers["x-cache"]]).toEqual(["/hard-ram:2", "MISS"]);
    // the new copy is not affected by the older marker
    expect((await http(edge, "/hard-ram")).body).toBe("/hard-ram:2");
  });

  it("a soft purge serves stale within stale-while-revalidate and refreshes in the background", async () => {
    versions("/soft", ", stale-while-revalidate=60");
    await http(edge, "/soft");
    expect((await http(edge, "/soft")).headers["x-cache"]).toBe("HIT-RAM");
    await mark("/soft", 2);
    const stale = await http(edge, "/soft");
    expect([stale.body, stale.headers["x-cache"]]).toEqual(["/soft:1", "STALE-RAM"]);
    await waitFor(async () => (await http(edge, "/soft")).body === "/soft:2", { what: "the refreshed /soft:2" });
  });

  it("a soft purge without a stale window refetches", async () => {
    versions("/soft-strict", ", must-revalidate");
    await http(edge, "/soft-strict");
    await mark("/soft-strict", 2);
    expect((await http(edge, "/soft-strict")).body).toBe("/soft-strict:2");
  });

  it("purge-all applies to every key stored before it", async () => {
    versions("/all-a");
    versions("/all-b");
    await http(edge, "/all-a");
    await http(edge, "/all-b");
    await mark(null, 1);
    expect((await http(edge, "/all-a")).body).toBe("/all-a:2");
    expect((await http(edge, "/all-b")).body).toBe("/all-b:2");
    versions("/all-c");
    await http(edge, "/all-c");
    expect((await http(edge, "/all-c")).headers["x-cache"]).toMatch(/^HIT/);
  });

  it("an object fetched after a purge-all is a hit on the next request, whichever worker takes it", async () => {
    // the client has the whole answer before the fetching worker's log phase writes the object's record: a
    // request on the other worker in between must not read the stored file's one-second date as "stored at
    // the same time as the marker" (seen as a second origin fetch in about 1 of 100 pairs)
    await mark(null, 1);
    const missed: string[] = [];
    for (let i = 0; i < 150; i++) {
      const p = `/after-all/${i}`;
      versions(p);
      await http(edge, p);
      const again = await http(edge, p);
      if (!/^HIT/.test(String(again.headers["x-cache"]))) missed.push(`${p} ${again.headers["x-cache"]} origin hits ${origin.hits(p)}`);
    }
    expect(missed).toEqual([]);
  });
});
