/** RAM hits and the response header work of the other features: headers set/remove, cache status, tag headers. */
import { afterAll, describe, expect, it } from "vitest";
import { bootEdge, type Edge } from "../support/edge.js";
import { startMockOrigin, type MockOrigin } from "../support/mock-origin.js";
import { http, luaErrors } from "../support/http.js";

const edges: Edge[] = [];
let origin: MockOrigin;

async function boot(name: string, exposeTags: boolean): Promise<Edge> {
  origin ??= await startMockOrigin();
  const e = await bootEdge({
    name,
    origins: { app: { servers: [{ address: origin.address }], retries: 0 } },
    cache: { ttl: { "200": "1h" }, ram: { size: "1m", maxObjectSize: "64k", minHits: 2 } },
    headers: { cacheStatus: "X-Cache", response: { set: { "X-Served-By": "edge" }, remove: ["X-Powered-By"] } },
    purge: { exposeTags, token: { env: "PURGE_TOKEN" } },
  }, { env: { PURGE_TOKEN: "ram-hdr-token" } });
  edges.push(e);
  return e;
}

describe("RAM hits and response headers", () => {
  afterAll(async () => {
    for (const e of edges) await e.stop();
    await origin?.close();
  });

  for (const exposeTags of [false, true]) {
    it(`applies the headers feature and ${exposeTags ? "keeps" : "removes"} the tag headers on every tier (exposeTags: ${exposeTags})`, async () => {
      const edge = await boot(`ram-hdr-${exposeTags}`, exposeTags);
      const path = `/t${exposeTags ? 2 : 1}`;
      origin.route(path, { headers: { "cache-control": "max-age=600", "cache-tag": "a,b", "surrogate-key": "k1", "x-powered-by": "php", etag: '"t"' }, body: "tagged" });
      const rs = [];
      for (let i = 0; i < 4; i++) rs.push(await http(edge, path));
      expect(rs.map((r) => r.headers["x-cache"])).toEqual(["MISS", "HIT", "HIT-RAM", "HIT-RAM"]);
      for (const r of rs) {
        expect(r.body).toBe("tagged");
        expect(r.headers["x-served-by"]).toBe("edge");
        expect(r.headers["x-powered-by"]).toBeUndefined();
        expect(r.headers["cache-tag"]).toBe(exposeTags ? "a,b" : undefined);
        expect(r.headers["surrogate-key"]).toBe(exposeTags ? "k1" : undefined);
      }
      // a conditional RAM hit (304) and a HEAD RAM hit carry them too
      const c = await http(edge, path, { headers: { "if-none-match": '"t"' } });
      expect(c.status).toBe(304);
      expect(c.headers["x-cache"]).toBe("HIT-RAM");
      expect(c.headers["x-served-by"]).toBe("edge");
      expect(c.headers["cache-tag"]).toBe(exposeTags ? "a,b" : undefined);
      const h = await http(edge, path, { method: "HEAD" });
      expect(h.headers["x-cache"]).toBe("HIT-RAM");
      expect(h.headers["x-served-by"]).toBe("edge");
      expect(h.headers["content-length"]).toBe("6");
      expect(origin.hits(path)).toBe(1);
      expect(luaErrors(await edge.errors())).toEqual([]);
    });
  }

  it("a purge by tag still reaches an object the RAM tier holds without its tag headers", async () => {
    const edge = edges[0]!;
    expect((await http(edge, "/t1")).headers["x-cache"]).toBe("HIT-RAM");
    const p = await http(edge, "/__purge", { method: "POST", headers: { authorization: "Bearer ram-hdr-token" }, body: '{"tags":["b"]}' });
    expect(p.status).toBe(200);
    const r = await http(edge, "/t1");
    expect(r.headers["x-cache"]).not.toBe("HIT-RAM");
    expect(r.headers["cache-tag"]).toBeUndefined();
  });
});
