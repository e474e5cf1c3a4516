import { readdir } from "node:fs/promises";
import { basename, join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { bootEdge, type Edge } from "../support/edge.js";
import { startMockOrigin, type MockOrigin } from "../support/mock-origin.js";
import { policy } from "../support/policy.js";
import { http, luaErrors } from "../support/http.js";
import { sleep, waitFor } from "../support/wait.js";
import type { Policy } from "../../src/policy/types.js";
import { purgeBody, purgeHeaders, signPurge, type PurgeSpec } from "../../src/purge/client.js";

const TOKEN = "t0ken-for-tests-0123456789";
const SECRET = "hmac-secret-for-tests";

let origin: MockOrigin;
let edge: Edge;

const purgePolicy = (extra: Partial<Policy> = {}) =>
  policy(origin, {
    name: "purge-test",
    cache: { ttl: { "200": "1h" } },
    headers: { cacheStatus: "X-Cache" },
    purge: { token: { env: "PURGE_TOKEN" }, hmac: { secret: { env: "PURGE_HMAC" }, maxSkew: "30s" } },
    ...extra,
  });

/** Purges on an edge with the bearer token. */
async function purgeWith(e: Edge, spec: PurgeSpec, auth: { token?: string; hmacSecret?: string } = { token: TOKEN }) {
  const body = purgeBody(spec);
  const r = await http(e, "/__purge", { method: "POST", headers: purgeHeaders(auth, "/__purge", body), body });
  return { ...r, json: r.body ? JSON.parse(r.body) : undefined };
}

const u = (path: string) => `http://127.0.0.1${path}`;

/** Cache files on the edge's disk tier (cache/disk, levels 1:2, 32-hex names). */
async function cacheFiles(e: Edge): Promise<string[]> {
  const entries = await readdir(join(e.dir, "cache", "disk"), { recursive: true }).catch(() => [] as string[]);
  return entries.filter((p) => /^[0-9a-f]{32}$/.test(basename(p)));
}

describe("purge", () => {
  beforeAll(async () => {
    origin = await startMockOrigin();
    origin.setDefault((req, n) => ({ headers: { "cache-control": "max-age=3600" }, body: `${req.url}#${n}` }));
    edge = await bootEdge(
      purgePolicy({
        rules: [{ name: "variants", when: { path: "/variant" }, then: { cache: { key: { headers: ["X-Variant"] } } } }],
      }),
      { env: { PURGE_TOKEN: TOKEN, PURGE_HMAC: SECRET } },
    );
  });
  afterEach(async () => {
    expect(luaErrors(await edge.errors())).toEqual([]);
  });
  afterAll(async () => {
    await edge?.stop();
    await origin?.close();
  });

  async function warm(path: string, headers?: Record<string, string>) {
    const a = await http(edge, path, { headers });
    expect(a.headers["x-cache"]).toBe("MISS");
    const b = await http(edge, path, { headers });
    expect(b.headers["x-cache"]).toBe("HIT");
  }

  it("purges by exact URL: the next request is a MISS and reaches the origin once more", async () => {
    await warm("/u1");
    await warm("/u2");
    const r = await purgeWith(edge, { urls: [u("/u1")] });
    expect(r.status).toBe(200);
    expect(r.headers["cache-control"]).toBe("no-store");
    expect(r.json).toMatchObject({ ok: true, soft: false, all: false, count: 1, keys: [u("/u1")], files: 1, fanout: { status: "off" } });
    const after = await http(edge, "/u1");
    expect(after.headers["x-cache"]).toBe("MISS");
    expect(after.body).toBe("/u1#2");
    expect(origin.hits("/u1")).toBe(2);
    expect((await http(edge, "/u2")).headers["x-cache"]).toBe("HIT");
    // the host is case-insensitive and the port is not part of the key
    await http(edge, "/u1");
    const again = await purgeWith(edge, { urls: [`HTTP://127.0.0.1:${edge.port}/u1`] });
    expect(again.json.files).toBe(1);
    expect((await http(edge, "/u1")).headers["x-cache"]).toBe("MISS");
  });

  it("matches hosts as nginx's $host does: case-insensitive, without the port, IPv6 literals", async () => {
    const shop = { host: "Shop.Example.COM:8443" };
    await warm("/h", shop);
    await warm("/h", { host: "[::1]:9" });
    await warm("/h", { host: "other.example.com" });
    const r = await purgeWith(edge, { urls: ["https://shop.EXAMPLE.com:1/h".replace("https", "http"), "http://[::1]/h"] });
    expect([...r.json.keys].sort()).toEqual(["http://[::1]/h", "http://shop.example.com/h"]);
    expect(r.json.files).toBe(2);
    expect((await http(edge, "/h", { headers: shop })).headers["x-cache"]).toBe("MISS");
    expect((await http(edge, "/h", { headers: { host: "[::1]" } })).headers["x-cache"]).toBe("MISS");
    expect((await http(edge, "/h", { headers: { host: "other.example.com" } })).headers["x-cache"]).toBe("HIT");
  });

  it("purges a URL with a query, in any parameter order, and only that query", async () => {
    await warm("/q?b=2&a=1");
    await warm("/q?a=3");
    const r = await purgeWith(edge, { urls: [u("/q?a=1&b=2")] });
    expect(r.json).toMatchObject({ count: 1, keys: [u("/q?a=1&b=2")], files: 1 });
    expect((await http(edge, "/q?b=2&a=1")).headers["x-cache"]).toBe("MISS");
    expect((await http(edge, "/q?a=3")).headers["x-cache"]).toBe("HIT");
  });

  it("purges every cache key of a URL (variants keyed by a rule)", async () => {
    await warm("/variant", { "x-variant": "a" });
    await warm("/variant", { "x-variant": "b" });
    const r = await purgeWith(edge, { urls: [u("/variant")] });
    expect(r.json.files).toBe(2);
    expect((await http(edge, "/variant", { headers: { "x-variant": "a" } })).headers["x-cache"]).toBe("MISS");
    expect((await http(edge, "/variant", { headers: { "x-variant": "b" } })).headers["x-cache"]).toBe("MISS");
  });

  it("purges by prefix from the index", async () => {
    await warm("/p/a");
    await warm("/p/b/c?x=1");
    await warm("/pp");
    const r = await purgeWith(edge, { prefixes: [u("/p/")] });
    expect(r.json.count).toBe(2);
    expect(r.json.files).toBe(2);
    expect([...r.json.keys].sort()).toEqual([u("/p/a"), u("/p/b/c?x=1")]);
    expect((await http(edge, "/p/a")).headers["x-cache"]).toBe("MISS");
    expect((await http(edge, "/p/b/c?x=1")).headers["x-cache"]).toBe("MISS");
    expect((await http(edge, "/pp")).headers["x-cache"]).toBe("HIT");
  });

  it("purges by tag from Cache-Tag and Surrogate-Key, several tags per object, and hides the tag headers", async () => {
    origin.route("/t1", { headers: { "cache-control": "max-age=3600", "cache-tag": "red, blue" }, body: "t1" });
    origin.route("/t2", { headers: { "cache-control": "max-age=3600", "surrogate-key": "blue  green" }, body: "t2" });
    origin.route("/t3", { headers: { "cache-control": "max-age=3600", "cache-tag": ["green", "yellow"] }, body: "t3" });
    for (const p of ["/t1", "/t2", "/t3"]) await warm(p);
    const seen = await http(edge, "/t1");
    expect(seen.headers["cache-tag"]).toBeUndefined();
    expect(seen.headers["surrogate-key"]).toBeUndefined();

    const blue = await purgeWith(edge, { tags: ["blue"] });
    expect(blue.json.count).toBe(2);
    expect([...blue.json.keys].sort()).toEqual([u("/t1"), u("/t2")]);
    expect((await http(edge, "/t1")).headers["x-cache"]).toBe("MISS");
    expect((await http(edge, "/t2")).headers["x-cache"]).toBe("MISS");
    expect((await http(edge, "/t3")).headers["x-cache"]).toBe("HIT");
    // the objects were stored again (and re-indexed): purge by their other tags
    const green = await purgeWith(edge, { tags: ["green", "red"] });
    expect([...green.json.keys].sort()).toEqual([u("/t1"), u("/t2"), u("/t3")]);
    expect(green.json.files).toBe(3);
    for (const p of ["/t1", "/t2", "/t3"]) expect((await http(edge, p)).headers["x-cache"]).toBe("MISS");
    expect(origin.hits("/t1")).toBe(3);
    // an unknown tag purges nothing
    expect((await purgeWith(edge, { tags: ["nope"] })).json).toMatchObject({ ok: true, count: 0, files: 0 });
  });

  it("accepts the query-string form", async () => {
    await warm("/qs1");
    await warm("/qs2");
    const path = `/__purge?url=${encodeURIComponent(u("/qs1"))}&url=${encodeURIComponent(u("/qs2"))}`;
    const r = await http(edge, path, { method: "POST", headers: { authorization: `Bearer ${TOKEN}` } });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).files).toBe(2);
    expect((await http(edge, "/qs1")).headers["x-cache"]).toBe("MISS");
  });

  it("purges everything: files deleted by a background timer", async () => {
    for (const p of ["/all1", "/all2/x", "/all3?z=1"]) await warm(p);
    expect((await cacheFiles(edge)).length).toBeGreaterThanOrEqual(3);
    const r = await purgeWith(edge, { all: true });
    expect(r.json).toMatchObject({ ok: true, all: true, scheduled: true });
    await waitFor(async () => (await cacheFiles(edge)).length === 0, { what: "the purge-all timer to delete every cache file" });
    for (const p of ["/all1", "/all2/x", "/all3?z=1"]) expect((await http(edge, p)).headers["x-cache"]).toBe("MISS");
    // the index was emptied with the cache, and fills again
    expect((await purgeWith(edge, { urls: [u("/all1")] })).json.files).toBe(1);
  });

  it("answers 400 to malformed requests", async () => {
    const bad: [string, string][] = [
      ["{}", "nothing to purge"],
      ["[1]", "JSON object"],
      ['{"urls":"x"}', "list of strings"],
      ['{"urls":["/relative"]}', "absolute"],
      ['{"prefixes":["/p"]}', "scheme://host"],
      ['{"tags":["a b"]}', "spaces"],
      ['{"urls":[1]}', "list of strings"],
      ['{"all":"yes"}', "true or false"],
      ['{"bogus":true}', "unknown field"],
      ['{"urls":["http://h/a",]}', "not valid JSON"],
      ['{"a":1,"a":2}', "not valid JSON"],
      ['{"urls":["\u0001"]}', "not valid JSON"],
    ];
    for (const [body, msg] of bad) {
      const r = await http(edge, "/__purge", { method: "POST", headers: { authorization: `Bearer ${TOKEN}` }, body });
      expect(r.status, body).toBe(400);
      expect(JSON.parse(r.body).error, body).toContain(msg);
    }
    const many = JSON.stringify({ tags: Array.from({ length: 1001 }, (_, i) => `t${i}`) });
    expect((await http(edge, "/__purge", { method: "POST", headers: { authorization: `Bearer ${TOKEN}` }, body: many })).status).toBe(400);
    // JSON escapes are decoded (\u002F is "/")
    await warm("/esc");
    const esc = await http(edge, "/__purge", { method: "POST", headers: { authorization: `Bearer ${TOKEN}` }, body: '{"urls":["http:\\/\\/127.0.0.1\\u002Fesc"]}' });
    expect(JSON.parse(esc.body).files).toBe(1);
  });

  it("accepts an HMAC-signed request and refuses bad, stale or replayed signatures", async () => {
    await warm("/h1");
    const ok = await purgeWith(edge, { urls: [u("/h1")] }, { hmacSecret: SECRET });
    expect(ok.status).toBe(200);
    expect(ok.json.files).toBe(1);

    const body = purgeBody({ urls: [u("/h2")] });
    const now = Math.floor(Date.now() / 1000);
    // every signed request carries a nonce, covered by the signature (test/security/purge-endpoint.test.ts)
    const nonce = "nonce-0001";
    const send = (headers: Record<string, string>, b = body) => http(edge, "/__purge", { method: "POST", headers: { "x-purge-nonce": nonce, ...headers }, body: b });
    const good = signPurge(SECRET, "POST", "/__purge", now, nonce, body);
    // wrong secret, tampered body, signature of another path, stale and future timestamps, replay
    expect((await send({ "x-purge-timestamp": String(now), "x-purge-signature": signPurge("other", "POST", "/__purge", now, nonce, body) })).status).toBe(403);
    expect((await send({ "x-purge-timestamp": String(now), "x-purge-signature": good }, purgeBody({ all: true }))).status).toBe(403);
    expect((await send({ "x-purge-timestamp": String(now), "x-purge-signature": signPurge(SECRET, "POST", "/other", now, nonce, body) })).status).toBe(403);
    const old = now - 120;
    expect((await send({ "x-purge-timestamp": String(old), "x-purge-signature": signPurge(SECRET, "POST", "/__purge", old, nonce, body) })).status).toBe(403);
    const future = now + 120;
    expect((await send({ "x-purge-timestamp": String(future), "x-purge-signature": signPurge(SECRET, "POST", "/__purge", future, nonce, body) })).status).toBe(403);
    expect((await send({ "x-purge-timestamp": "abc", "x-purge-signature": good })).status).toBe(403);
    expect((await send({ "x-purge-signature": good })).status).toBe(403);
    const first = await send({ "x-purge-timestamp": String(now), "x-purge-signature": good });
    expect(first.status).toBe(200);
    const replay = await send({ "x-purge-timestamp": String(now), "x-purge-signature": good });
    expect(replay.status).toBe(403);
    expect(JSON.parse(replay.body)).toEqual({ ok: false, error: "forbidden" });
  });

  it("refuses a missing or wrong token with 403", async () => {
    await warm("/auth");
    const body = purgeBody({ urls: [u("/auth")] });
    for (const headers of [{} as Record<string, string>, { authorization: "Bearer wrong" }, { authorization: `Bearer ${TOKEN}x` }, { authorization: TOKEN }, { authorization: `Basic ${TOKEN}` }]) {
      const r = await http(edge, "/__purge", { method: "POST", headers, body });
      expect(r.status).toBe(403);
      expect(r.headers["cache-control"]).toBe("no-store");
    }
    expect((await http(edge, "/auth")).headers["x-cache"]).toBe("HIT");
  });

  it("is never cached and never proxied: other methods get 405, the origin never sees the endpoint", async () => {
    const g = await http(edge, "/__purge");
    expect(g.status).toBe(405);
    expect(g.headers["allow"]).toBe("POST");
    expect(g.headers["cache-control"]).toBe("no-store");
    expect(g.headers["x-cache"]).toBeUndefined();
    await warm("/nc");
    // the same purge twice: both applied (nothing was cached)
    expect((await purgeWith(edge, { urls: [u("/nc")] })).json.files).toBe(1);
    await http(edge, "/nc");
    const second = await purgeWith(edge, { urls: [u("/nc")] });
    expect(second.json.files).toBe(1);
    expect(second.headers["x-cache"]).toBeUndefined();
    expect(origin.hits("/__purge")).toBe(0);
  });
});

describe("purge endpoint access", () => {
  let o: MockOrigin;
  let far: Edge;
  let bare: Edge;
  beforeAll(async () => {
    o = await startMockOrigin();
    far = await bootEdge(
      { name: "purge-far", origins: { app: { servers: [{ address: o.address }] } }, cache: {}, purge: { allow: ["10.0.0.0/8"], token: { env: "PURGE_TOKEN" } } },
      { env: { PURGE_TOKEN: TOKEN } },
    );
    bare = await bootEdge({ name: "purge-bare", origins: { app: { servers: [{ address: o.address }] } }, cache: {} });
  });
  afterAll(async () => {
    for (const e of [far, bare]) {
      if (!e) continue;
      expect(luaErrors(await e.errors())).toEqual([]);
      await e.stop();
    }
    await o?.close();
  });

  it("refuses a client outside the allow-list with 403, even with the right token, without reaching the origin", async () => {
    const body = purgeBody({ all: true });
    for (const method of ["POST", "GET"] as const) {
      const r = await http(far, "/__purge", { method, headers: { authorization: `Bearer ${TOKEN}` }, body: method === "POST" ? body : undefined });
      expect(r.status).toBe(403);
    }
    expect((await http(far, "/__purge?x=1", { method: "POST" })).status).toBe(403);
    expect(o.hits("/__purge")).toBe(0);
  });

  it("refuses everything when the policy names no credentials", async () => {
    const r = await http(bare, "/__purge", { method: "POST", headers: { authorization: "Bearer " }, body: purgeBody({ all: true }) });
    expect(r.status).toBe(403);
    expect(o.hits("/__purge")).toBe(0);
  });
});

describe("purge index bounds", () => {
  let o: MockOrigin;
  let e: Edge;
  beforeAll(async () => {
    o = await startMockOrigin();
    o.setDefault((req, n) => ({ headers: { "cache-control": "max-age=3600", "surrogate-key": req.path.startsWith("/m") ? "many" : "other" }, body: `${req.path}#${n}` }));
    e = await bootEdge(
      { name: "purge-bounds", origins: { app: { servers: [{ address: o.address }] } }, cache: { ttl: { "200": "1h" }, key: { query: { allow: ["a", "b"] } } }, headers: { cacheStatus: "X-Cache" }, purge: { token: { env: "PURGE_TOKEN" }, indexTtl: "1s", maxKeysPerTag: 2 } },
      { env: { PURGE_TOKEN: TOKEN } },
    );
  });
  afterAll(async () => {
    if (e) {
      expect(luaErrors(await e.errors())).toEqual([]);
      await e.stop();
    }
    await o?.close();
  });

  it("normalises a purged URL's query like the cache key (allow-listed parameters only)", async () => {
    await http(e, "/k?a=1&utm=x");
    expect((await http(e, "/k?utm=y&a=1")).headers["x-cache"]).toBe("HIT");
    const r = await purgeWith(e, { urls: [u("/k?utm=zzz&a=1")] });
    expect(r.json.keys).toEqual([u("/k?a=1")]);
    expect(r.json.files).toBe(1);
    expect((await http(e, "/k?a=1")).headers["x-cache"]).toBe("MISS");
  });

  it("remembers at most maxKeysPerTag keys per tag, and still purges every object of the tag (the marker holds it)", async () => {
    for (const p of ["/m1", "/m2", "/m3"]) await http(e, p);
    expect((await http(e, "/m3")).headers["x-cache"]).toBe("HIT");
    const r = await purgeWith(e, { tags: ["many"] });
    // the index found two keys (a lower bound, and the answer says so)...
    expect(r.json.count).toBe(2);
    expect([...r.json.keys].sort()).toEqual([u("/m1"), u("/m2")]);
    expect(r.json.indexComplete).toBe(false);
    // ...but the purge holds for the third one too
    expect((await http(e, "/m3")).headers["x-cache"]).toBe("MISS");
  });

  it("expires index entries after indexTtl; an exact URL purge still works from the computed key", async () => {
    await http(e, "/old");
    await http(e, "/old2?b=1&a=2");
    expect((await http(e, "/old")).headers["x-cache"]).toBe("HIT");
    await sleep(2100);
    // the tag and prefix index forgot the objects...
    expect((await purgeWith(e, { prefixes: [u("/old")] })).json.count).toBe(0);
    // ...but the URL's key is computed from the URL: the file is removed
    const r = await purgeWith(e, { urls: [u("/old"), u("/old2?a=2&b=1")] });
    expect(r.json.files).toBe(2);
    expect((await http(e, "/old")).headers["x-cache"]).toBe("MISS");
    expect((await http(e, "/old2?b=1&a=2")).headers["x-cache"]).toBe("MISS");
  });
});
