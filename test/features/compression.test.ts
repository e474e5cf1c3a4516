/**
 * Compression: gzip and brotli as output filters, with the disk and RAM tiers of the cache. A body is stored
 * as the origin sent it, and each client gets the encoding it asked for, never one it did not.
 */
import { brotliCompressSync, brotliDecompressSync, gunzipSync, gzipSync } from "node:zlib";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Agent, request } from "undici";
import { compile } from "../../src/compile.js";
import { bootEdge, nginxBinary, type Edge } from "../support/edge.js";
import { luaErrors } from "../support/http.js";
import { startMockOrigin, type MockOrigin } from "../support/mock-origin.js";
import { codes, diagnostics, policy } from "../support/policy.js";

const TEXT = Array.from({ length: 400 }, (_, i) => `.rule-${i} { color: #${(i * 2654435761 % 0xffffff).toString(16).padStart(6, "0")}; }`).join("\n").slice(0, 10 * 1024);

describe("compression: policy and config", () => {
  const conf = (compression: object, target: "openresty" | "nginx-lua" = "nginx-lua") =>
    compile({ ...policy("127.0.0.1:3000"), compression }, { target }).bundle!.files.get("nginx.conf")!;

  it("emits gzip and brotli with a CDN's defaults, brotli loaded before the Lua module", () => {
    const c = conf({});
    expect(c).toMatch(/^\s*gzip on;$/m);
    expect(c).toMatch(/^\s*gzip_comp_level 5;$/m);
    expect(c).toMatch(/^\s*gzip_min_length 1024;$/m);
    expect(c).toMatch(/^\s*gzip_proxied any;$/m);
    expect(c).not.toMatch(/^\s*gzip_vary/m); // the bundle's Lua merges Vary: Accept-Encoding into the origin's
    expect(c).toMatch(/^\s*brotli_comp_level 4;$/m);
    expect(c).toMatch(/^\s*gzip_types .*application\/json.*;$/m);
    expect(c).not.toMatch(/^\s*gzip_types .*text\/html/m); // nginx always includes it; naming it again warns
    expect(c).not.toMatch(/^\s*gzip_types .*image\/(png|jpeg)/m);
    const loads = [...c.matchAll(/^load_module (\S+);$/gm)].map((m) => m[1]);
    expect(loads.findIndex((l) => l!.includes("brotli_filter"))).toBeLessThan(loads.findIndex((l) => l!.includes("lua_module")));
  });

  it("levels, types and minimum length are the policy's; gzip or brotli can be turned off", () => {
    const c = conf({ gzip: { level: 9 }, brotli: { level: 11 }, types: ["application/json"], minLength: "2k" });
    expect(c).toMatch(/^\s*gzip_comp_level 9;$/m);
    expect(c).toMatch(/^\s*brotli_comp_level 11;$/m);
    expect(c).toMatch(/^\s*gzip_types application\/json;$/m);
    expect(c).toMatch(/^\s*brotli_min_length 2048;$/m);
    expect(conf({ gzip: false })).not.toMatch(/^\s*gzip on;$/m);
    expect(conf({ brotli: false })).not.toMatch(/brotli/);
  });

  it("on openresty, brotli is left out with a warning (none with brotli: false)", () => {
    const r = compile({ ...policy("127.0.0.1:3000"), compression: {} }, { target: "openresty" });
    expect(r.diagnostics.map((d) => `${d.severity} ${d.code} ${d.path}`)).toEqual(["warning CDN2101 /compression/brotli"]);
    expect(r.bundle!.files.get("nginx.conf")).not.toMatch(/brotli/);
    expect(r.bundle!.files.get("nginx.conf")).toMatch(/^\s*gzip on;$/m);
    expect(compile({ ...policy("127.0.0.1:3000"), compression: { brotli: false } }, { target: "openresty" }).diagnostics).toEqual([]);
    // nginx-lua has the module: no warning
    expect(compile({ ...policy("127.0.0.1:3000"), compression: {} }, { target: "nginx-lua" }).diagnostics).toEqual([]);
  });

  it("refuses bad values with a code naming the field", () => {
    expect(diagnostics({ ...policy("127.0.0.1:3000"), compression: { minLength: "lots" } })).toContain("CDN1004 /compression/minLength");
    expect(codes({ ...policy("127.0.0.1:3000"), compression: { types: ["text/css", "TEXT/CSS"] } })).toContain("CDN1004");
    expect(diagnostics({ ...policy("127.0.0.1:3000"), compression: { types: ["text/css", "text/css"] } })).toContain("CDN2010 /compression/types/1");
    expect(diagnostics({ ...policy("127.0.0.1:3000"), compression: { types: ["image/png"] } })).toContain("CDN2102 /compression/types/0");
    expect(codes({ ...policy("127.0.0.1:3000"), compression: { types: ["text/$x;"] } })).toContain("CDN1004");
    expect(codes({ ...policy("127.0.0.1:3000"), compression: { gzip: { level: 10 } } })).not.toEqual([]);
  });
});

// raw bodies: undici's request() neither asks for nor decodes any encoding on its own
const agent = new Agent({ keepAliveTimeout: 1000 });
async function get(edge: Edge, path: string, ae?: string): Promise<{ status: number; headers: Record<string, string>; raw: Buffer; text: string }> {
  const res = await request(edge.baseUrl + path, { headers: ae === undefined ? {} : { "accept-encoding": ae }, dispatcher: agent });
  const raw = Buffer.from(await res.body.arrayBuffer());
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(", ") : v;
  const enc = headers["content-encoding"];
  const text = (enc === "gzip" ? gunzipSync(raw) : enc === "br" ? brotliDecompressSync(raw) : raw).toString("utf8");
  return { status: res.statusCode, headers, raw, text };
}

describe("compression in a real nginx, with the disk and RAM tiers", () => {
  let origin: MockOrigin;
  let edge: Edge;
  beforeAll(async () => {
    origin = await startMockOrigin();
    edge = await bootEdge(
      policy(origin.address, {
        name: "gz",
        cache: { ttl: { "200": "1h" }, ram: { size: "4m", maxObjectSize: "200k", minHits: 2 } },
        headers: { cacheStatus: "X-Cache" },
        compression: {},
      }),
    );
  });
  afterEach(async () => {
    expect(luaErrors(await edge.errors())).toEqual([]);
  });
  afterAll(async () => {
    await edge?.stop();
    await origin?.close();
  });

  const plain = (etag: string) => ({ headers: { "cache-control": "max-age=600", "content-type": "text/css", etag }, body: TEXT });

  it("the nginx-lua target loads brotli (the local runtime)", async () => {
    const b = await nginxBinary();
    if (b.kind === "openresty") expect(edge.conf).not.toMatch(/brotli/);
    else expect(edge.conf).toMatch(/^\s*brotli on;$/m);
  });

  it("warmed with gzip: a client without Accept-Encoding gets identity from the disk tier (HIT) and the RAM tier (HIT-RAM)", async () => {
    origin.route("/a.css", plain('"a1"'));
    const r1 = await get(edge, "/a.css", "gzip");
    expect(r1.headers["x-cache"]).toBe("MISS");
    expect(r1.headers["content-encoding"]).toBe("gzip");
    expect(r1.text).toBe(TEXT);
    expect(r1.headers["vary"]).toMatch(/accept-encoding/i);
    expect(r1.headers["etag"]).toBe('W/"a1"'); // RFC 9110 8.8.3: weak once the edge changed the bytes
    expect(r1.headers["content-length"]).toBeUndefined();
    // the origin got the client's Accept-Encoding but answered identity: what is stored is identity
    const r2 = await get(edge, "/a.css");
    expect(r2.headers["x-cache"]).toBe("HIT");
    expect(r2.headers["content-encoding"]).toBeUndefined();
    expect(r2.raw.toString()).toBe(TEXT);
    expect(r2.headers["content-length"]).toBe(String(TEXT.length));
    expect(r2.headers["etag"]).toBe('"a1"');
    expect(r2.headers["vary"]).toMatch(/accept-encoding/i);
    const r3 = await get(edge, "/a.css");
    expect(r3.headers["x-cache"]).toBe("HIT-RAM");
    expect(r3.headers["content-encoding"]).toBeUndefined();
    expect(r3.raw.toString()).toBe(TEXT);
    expect(r3.headers["vary"]).toMatch(/accept-encoding/i);
    // and the RAM tier compresses for a client that asks
    const r4 = await get(edge, "/a.css", "gzip");
    expect(r4.headers["x-cache"]).toBe("HIT-RAM");
    expect(r4.headers["content-encoding"]).toBe("gzip");
    expect(r4.headers["etag"]).toBe('W/"a1"');
    expect(r4.text).toBe(TEXT);
    expect(r4.raw.length).toBeLessThan(TEXT.length / 2);
    expect(origin.hits("/a.css")).toBe(1);
  });

  it("warmed without Accept-Encoding: gzip and brotli clients get their encoding from both tiers", async () => {
    origin.route("/b.css", plain('"b1"'));
    expect((await get(edge, "/b.css")).headers["content-encoding"]).toBeUndefined();
    const hit = await get(edge, "/b.css", "gzip, deflate, br");
    expect(hit.headers["x-cache"]).toBe("HIT");
    expect(hit.headers["content-encoding"]).toBe("br"); // brotli first when both are accepted
    expect(hit.text).toBe(TEXT);
    const gz = await get(edge, "/b.css", "gzip");
    expect(gz.headers["x-cache"]).toBe("HIT-RAM");
    expect(gz.headers["content-encoding"]).toBe("gzip");
    expect(gz.text).toBe(TEXT);
    const br = await get(edge, "/b.css", "br");
    expect(br.headers["x-cache"]).toBe("HIT-RAM");
    expect(br.headers["content-encoding"]).toBe("br");
    expect(br.headers["etag"]).toBe('W/"b1"');
    expect(br.text).toBe(TEXT);
    const id = await get(edge, "/b.css", "identity");
    expect(id.headers["content-encoding"]).toBeUndefined();
    expect(id.raw.toString()).toBe(TEXT);
    expect(origin.hits("/b.css")).toBe(1);
  });

  it("a conditional request with the weak ETag of a compressed response gets 304 from both tiers", async () => {
    origin.route("/c.css", plain('"c1"'));
    const first = await get(edge, "/c.css", "gzip");
    expect(first.headers["etag"]).toBe('W/"c1"');
    const conditional = async () => {
      const res = await request(edge.baseUrl + "/c.css", { headers: { "accept-encoding": "gzip", "if-none-match": 'W/"c1"' }, dispatcher: agent });
      await res.body.arrayBuffer();
      return [res.statusCode, res.headers["x-cache"]];
    };
    expect(await conditional()).toEqual([304, "HIT"]);
    expect((await get(edge, "/c.css", "gzip")).headers["x-cache"]).toBe("HIT"); // admitted to RAM
    expect(await conditional()).toEqual([304, "HIT-RAM"]);
  });

  it("an origin that compresses by Accept-Encoding and sends Vary: each variant is kept apart in both tiers", async () => {
    origin.route("/neg.js", (req) => {
      const ae = String(req.headers["accept-encoding"] ?? "");
      const base = { "cache-control": "max-age=600", "content-type": "application/javascript", vary: "Accept-Encoding" };
      if (/gzip/.test(ae)) return { headers: { ...base, "content-encoding": "gzip" }, body: gzipSync(TEXT) };
      return { headers: base, body: TEXT };
    });
    const seen = [];
    for (const ae of ["gzip", undefined, "gzip", undefined, "gzip", undefined]) {
      const r = await get(edge, "/neg.js", ae);
      expect(r.text).toBe(TEXT);
      expect(r.headers["content-encoding"]).toBe(ae === undefined ? undefined : "gzip");
      seen.push(r.headers["x-cache"]);
    }
    // the second miss (the identity variant) already makes the key hot: that variant is admitted to RAM at once
    expect(seen).toEqual(["MISS", "MISS", "HIT", "HIT-RAM", "HIT-RAM", "HIT-RAM"]);
    expect(origin.hits("/neg.js")).toBe(2);
  });

  it("a body the origin precompressed passes untouched, never compressed twice", async () => {
    const br = brotliCompressSync(TEXT);
    origin.route("/pre.css", { headers: { "cache-control": "max-age=600", "content-type": "text/css", "content-encoding": "br", vary: "Accept-Encoding" }, body: br });
    for (const expected of ["MISS", "HIT", "HIT-RAM"]) {
      const r = await get(edge, "/pre.css", "br, gzip");
      expect(r.headers["x-cache"]).toBe(expected);
      expect(r.headers["content-encoding"]).toBe("br");
      expect(r.raw.equals(br)).toBe(true);
    }
  });

  it("Vary names Accept-Encoding once, merged into the origin's Vary, on every tier; not on what is never compressed", async () => {
    origin.route("/v1.css", { headers: { "cache-control": "max-age=600", "content-type": "text/css", vary: "Accept-Encoding" }, body: TEXT });
    origin.route("/v2.css", { headers: { "cache-control": "max-age=600", "content-type": "text/css", vary: "Origin" }, body: TEXT });
    origin.route("/v3.png", { headers: { "cache-control": "max-age=600", "content-type": "image/png" }, body: TEXT });
    origin.route("/v4.css", { headers: { "cache-control": "max-age=600", "content-type": "text/css" }, body: "a{}" });
    for (let i = 0; i < 3; i++) {
      for (const ae of ["gzip", undefined]) {
        expect((await get(edge, "/v1.css", ae)).headers["vary"]).toBe("Accept-Encoding");
        expect((await get(edge, "/v2.css", ae)).headers["vary"]).toBe("Origin, Accept-Encoding");
        expect((await get(edge, "/v3.png", ae)).headers["vary"]).toBeUndefined();
        expect((await get(edge, "/v4.css", ae)).headers["vary"]).toBeUndefined(); // below minLength
      }
    }
  });

  it("an origin's gzip without Vary is decoded for a client that does not accept it; brotli without Vary is stored only when the client did not ask for it", async () => {
    origin.route("/s3.json", { headers: { "cache-control": "max-age=600", "content-type": "application/json", "content-encoding": "gzip" }, body: gzipSync(TEXT) });
    const a = await get(edge, "/s3.json", "gzip");
    expect(a.headers["content-encoding"]).toBe("gzip");
    for (const tier of ["HIT", "HIT-RAM"]) {
      const b = await get(edge, "/s3.json");
      expect(b.headers["x-cache"]).toBe(tier);
      expect(b.headers["content-encoding"]).toBeUndefined();
      expect(b.raw.toString()).toBe(TEXT);
    }
    origin.route("/nv.css", { headers: { "cache-control": "max-age=600", "content-type": "text/css", "content-encoding": "br" }, body: brotliCompressSync(TEXT) });
    await get(edge, "/nv.css", "br");
    const r = await get(edge, "/nv.css");
    expect(r.headers["x-cache"]).toBe("MISS");
    expect(origin.hits("/nv.css")).toBe(2);
    // a coding this client did not ask for was not negotiated: the origin sends it to everyone, so it is stored
    origin.route("/fixed.css", { headers: { "cache-control": "max-age=600", "content-type": "text/css", "content-encoding": "br" }, body: brotliCompressSync(TEXT) });
    await get(edge, "/fixed.css", "gzip");
    const again = await get(edge, "/fixed.css", "gzip");
    expect([again.headers["x-cache"], again.headers["content-encoding"]]).toEqual(["HIT", "br"]);
    expect(origin.hits("/fixed.css")).toBe(1);
  });

  it("never compresses a response that says Cache-Control: no-transform (RFC 9110 7.7), from either tier", async () => {
    origin.route("/nt.css", { headers: { "cache-control": "max-age=600, no-transform", "content-type": "text/css", etag: '"nt"' }, body: TEXT });
    for (const tier of ["MISS", "HIT", "HIT-RAM", "HIT-RAM"]) {
      const r = await get(edge, "/nt.css", "gzip, br");
      expect([r.headers["x-cache"], r.headers["content-encoding"], r.headers["etag"]]).toEqual([tier, undefined, '"nt"']);
      expect(r.raw.toString()).toBe(TEXT);
    }
    // a precompressed one with no-transform still passes as it is
    origin.route("/nt-gz.css", { headers: { "cache-control": "max-age=600, no-transform", "content-type": "text/css", "content-encoding": "gzip", vary: "Accept-Encoding" }, body: gzipSync(TEXT) });
    const gz = await get(edge, "/nt-gz.css", "gzip");
    expect(gz.headers["content-encoding"]).toBe("gzip");
    expect(gz.text).toBe(TEXT);
  });

  it("leaves small bodies, images and byte ranges alone", async () => {
    origin.route("/small.css", { headers: { "cache-control": "max-age=600", "content-type": "text/css" }, body: "a{}" });
    expect((await get(edge, "/small.css", "gzip")).headers["content-encoding"]).toBeUndefined();
    const png = Buffer.alloc(8192, 7);
    origin.route("/i.png", { headers: { "cache-control": "max-age=600", "content-type": "image/png" }, body: png });
    const img = await get(edge, "/i.png", "gzip, br");
    expect(img.headers["content-encoding"]).toBeUndefined();
    expect(img.raw.equals(png)).toBe(true);
    const res = await request(edge.baseUrl + "/a.css", { headers: { range: "bytes=0-9" }, dispatcher: agent });
    const body = Buffer.from(await res.body.arrayBuffer());
    expect(res.statusCode).toBe(206);
    expect(res.headers["content-encoding"]).toBeUndefined();
    expect(body.toString()).toBe(TEXT.slice(0, 10));
    // a range of a body the edge compresses is not served: the whole compressed body is (200, allowed by RFC 9110 14.2)
    const gz = await request(edge.baseUrl + "/a.css", { headers: { "accept-encoding": "gzip", range: "bytes=0-9" }, dispatcher: agent });
    const gzBody = Buffer.from(await gz.body.arrayBuffer());
    expect([gz.statusCode, gz.headers["content-encoding"]]).toEqual([200, "gzip"]);
    expect(gunzipSync(gzBody).toString()).toBe(TEXT);
  });
});
