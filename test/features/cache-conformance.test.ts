/**
 * HTTP caching details a standards suite checks (RFC 9111 / 9110 / 9213), each as an HTTP test citing its
 * section, run on both tiers: the disk tier alone, and with the RAM tier admitting on the first hit. Both tiers
 * must answer every case the same way.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { bootEdge, type Edge } from "../support/edge.js";
import { startMockOrigin, type MockOrigin, type MockResponse, type RecordedRequest } from "../support/mock-origin.js";
import { http, luaErrors } from "../support/http.js";
import { sleep } from "../support/wait.js";
import type { Policy } from "../../src/policy/types.js";

const date = (ms = Date.now()) => new Date(ms).toUTCString();

let origin: MockOrigin;
let seq = 0;
/** A fresh path per test (tiers share the origin). */
const fresh = (name: string) => `/${name}/${++seq}`;

beforeAll(async () => {
  origin = await startMockOrigin();
});
afterAll(async () => {
  await origin?.close();
});

const TIERS: [string, Policy["cache"]][] = [
  ["disk tier", {}],
  ["RAM tier", { ram: { size: "8m", minHits: 1 } }],
];

describe.each(TIERS)("HTTP caching conformance (%s)", (_tier, tierCache) => {
  let edge: Edge;
  let ignoring: Edge;
  const boot = (cache: Policy["cache"]) =>
    bootEdge({
      name: "conformance",
      origins: { app: { servers: [{ address: origin.address }], retries: 0, connectTimeout: "1s" } },
      cache: { ...tierCache, ...cache },
      headers: { cacheStatus: "X-Cache" },
    });
  beforeAll(async () => {
    edge = await boot({});
    ignoring = await boot({ clientDirectives: "ignore" });
  });
  afterEach(async () => {
    expect(luaErrors(await edge.errors())).toEqual([]);
  });
  afterAll(async () => {
    await edge?.stop();
    await ignoring?.stop();
  });

  /** Requests `path` `times` times; returns the replies and how many requests the origin saw. */
  async function repeat(path: string, times: number, headers: Record<string, string> = {}, e = edge) {
    const replies = [];
    for (let i = 0; i < times; i++) replies.push(await http(e, path, { headers }));
    return { replies, hits: origin.hits(path) };
  }

  describe("defaults: no implicit lifetime (RFC 9111 4.2.2)", () => {
    it("does not reuse a response without explicit freshness and without Last-Modified", async () => {
      const p = fresh("no-freshness");
      origin.route(p, (_r, n) => ({ body: `v${n}` }));
      const { hits } = await repeat(p, 3);
      expect(hits).toBe(3);
    });

    it("gives a heuristic lifetime of 10% of the time since Last-Modified to a heuristically cacheable status", async () => {
      const p = fresh("heuristic");
      origin.route(p, (_r, n) => ({ headers: { "last-modified": date(Date.now() - 3600_000), date: date() }, body: `v${n}` }));
      const { replies, hits } = await repeat(p, 3);
      expect(hits).toBe(1);
      expect(replies[2]!.headers["x-cache"]).toMatch(/^HIT/);
    });

    it("gives no heuristic lifetime to a status that is not heuristically cacheable (302)", async () => {
      const p = fresh("heuristic-302");
      origin.route(p, (_r, n) => ({ status: 302, headers: { location: "/x", "last-modified": date(Date.now() - 3600_000) }, body: `v${n}` }));
      expect((await repeat(p, 2)).hits).toBe(2);
    });
  });

  describe("parsing (RFC 9111 4.2, 5.1, 5.2; RFC 9110 5.3)", () => {
    it("takes an Age it cannot read (not one non-negative integer on one line) as stale on arrival", async () => {
      for (const age of ["abc", "-7200", "7200.0", "7200, 0", "0, 0", "0,7200", ["7200", "0"], ["0", "0"], "7200;foo=bar"]) {
        const p = fresh("age");
        // unreadable: the object's age is unknown, so it is revalidated (here: fetched again) before reuse
        origin.route(p, (_r, n) => ({ headers: { "cache-control": "max-age=3600", age, date: date() }, body: `v${n}` }));
        expect((await repeat(p, 2)).hits, JSON.stringify(age)).toBe(2);
      }
      const young = fresh("age-young");
      origin.route(young, (_r, n) => ({ headers: { "cache-control": "max-age=3600", age: "60" }, body: `v${n}` }));
      expect((await repeat(young, 2)).hits).toBe(1);
      const p = fresh("age-valid");
      origin.route(p, (_r, n) => ({ headers: { "cache-control": "max-age=3600", age: "7200" }, body: `v${n}` }));
      expect((await repeat(p, 2)).hits).toBe(2);
    });

    it("treats two Expires lines, or a date in another zone than GMT, as already expired", async () => {
      const future = Date.now() + 3600_000;
      for (const expires of [[date(future), date(future)], date(future).replace("GMT", "UTC"), "Thu, 01 Jan 2099 00:00:00 AEST"]) {
        const p = fresh("expires");
        origin.route(p, (_r, n) => ({ headers: { date: date(), expires }, body: `v${n}` }));
        expect((await repeat(p, 2)).hits, JSON.stringify(expires)).toBe(2);
      }
      const ok = fresh("expires-ok");
      origin.route(ok, (_r, n) => ({ headers: { date: date(), expires: date(future) }, body: `v${n}` }));
      expect((await repeat(ok, 2)).hits).toBe(1);
    });

    it("reads two max-age values (one line or two) as the most restrictive one", async () => {
      for (const cc of ["max-age=3600, max-age=1", ["max-age=1", "max-age=3600"]]) {
        const p = fresh("two-max-age");
        origin.route(p, (_r, n) => ({ headers: { "cache-control": cc }, body: `v${n}` }));
        expect((await repeat(p, 2)).hits).toBe(1);
        await sleep(1100);
        await http(edge, p);
        expect(origin.hits(p), JSON.stringify(cc)).toBe(2);
      }
    });

    it("does not read 'max-age =3600' or 'max-age= 3600' as a directive, and honours a quoted value", async () => {
      for (const cc of ["max-age =3600", "max-age= 3600"]) {
        const p = fresh("cc-space");
        origin.route(p, (_r, n) => ({ headers: { "cache-control": cc }, body: `v${n}` }));
        expect((await repeat(p, 2)).hits, cc).toBe(2);
      }
      const q = fresh("cc-quoted");
      origin.route(q, (_r, n) => ({ headers: { "cache-control": 'max-age="3600"' }, body: `v${n}` }));
      expect((await repeat(q, 2)).hits).toBe(1);
    });

    it("ignores an invalid CDN-Cache-Control (RFC 9213 2.1): it never overrides Cache-Control, no-store included", async () => {
      const p = fresh("cdn-invalid");
      origin.route(p, (_r, n) => ({ headers: { "cache-control": "no-store", "cdn-cache-control": "max-age=3600 garbage!" }, body: `v${n}` }));
      expect((await repeat(p, 2)).hits).toBe(2);
      const v = fresh("cdn-valid");
      origin.route(v, (_r, n) => ({ headers: { "cache-control": "no-store", "cdn-cache-control": "max-age=3600" }, body: `v${n}` }));
      expect((await repeat(v, 2)).hits).toBe(1);
    });

    it("matches Vary on normalised request values: whitespace, and several field lines combined (RFC 9111 4.1)", async () => {
      const p = fresh("vary-norm");
      origin.route(p, (req, n) => ({ headers: { "cache-control": "max-age=3600", vary: "Accept-Language" }, body: `${req.headers["accept-language"]}#${n}` }));
      await http(edge, p, { headers: { "accept-language": "en, de" } });
      await http(edge, p, { headers: { "accept-language": "en,de" } });
      await http(edge, p, { headers: { "accept-language": "en ,  de" } });
      expect(origin.hits(p)).toBe(1);
      await http(edge, p, { headers: { "accept-language": "fr" } });
      expect(origin.hits(p)).toBe(2);
      // a header nginx knows nothing of, stored first with spaces, then asked without (nginx's own Vary check
      // compares what the request carried: the edge hands it the normalised value)
      const q = fresh("vary-norm-foo");
      origin.route(q, (req, n) => ({ headers: { "cache-control": "max-age=3600", vary: "Foo" }, body: `${req.headers.foo}#${n}` }));
      await http(edge, q, { headers: { foo: "1, 2" } });
      for (const v of ["1,2", " 1 ,2 "]) expect((await http(edge, q, { headers: { foo: v } })).headers["x-cache"], v).toMatch(/^HIT/);
      expect(origin.hits(q)).toBe(1);
    });

    it("normalises Vary field names: case and order do not make a new variant", async () => {
      const p = fresh("vary-names");
      let n = 0;
      origin.route(p, () => ({ headers: { "cache-control": "max-age=3600", vary: n++ % 2 ? "accept-language, Accept" : "Accept,Accept-Language" }, body: "x" }));
      const h = { accept: "text/html", "accept-language": "en" };
      await http(edge, p, { headers: h });
      await http(edge, p, { headers: h });
      expect(origin.hits(p)).toBe(1);
    });
  });

  describe("revalidation (RFC 9111 3.2, 4.3.4)", () => {
    it("updates every stored header a 304 carries, except Content-Length and hop-by-hop fields", async () => {
      const p = fresh("update");
      origin.route(p, (_r, n): MockResponse =>
        n === 1
          ? { headers: { "cache-control": "max-age=1", etag: '"e"', "x-one": "a", "x-two": "keep" }, body: "body" }
          : { status: 304, headers: { "cache-control": "max-age=3600", etag: '"e"', "x-one": "b", "x-new": "n", "content-length": "99" } },
      );
      await http(edge, p);
      await sleep(1100);
      const r = await http(edge, p);
      expect(r.headers["x-cache"]).toBe("REVALIDATED");
      const hit = await http(edge, p);
      expect(hit.headers["x-cache"]).toMatch(/^HIT/);
      expect([hit.headers["x-one"], hit.headers["x-two"], hit.headers["x-new"], hit.body, hit.headers["content-length"]]).toEqual(["b", "keep", "n", "body", "4"]);
    });

    it("never takes the fields that describe the stored bytes from a 304: ETag, Content-MD5, Content-Encoding", async () => {
      const p = fresh("update-bytes");
      origin.route(p, (_r, n): MockResponse =>
        n === 1
          ? { headers: { "cache-control": "max-age=1", etag: '"e1"', "content-md5": "rL0Y20zC+Fzt72VPzMSk2A==", "x-one": "a" }, body: "body" }
          : { status: 304, headers: { "cache-control": "max-age=3600", etag: '"e2"', "content-md5": "N7UdGUp1E+RbVvZSTy1R8g==", "content-encoding": "zz", "x-one": "b" } },
      );
      await http(edge, p);
      await sleep(1100);
      expect((await http(edge, p)).headers["x-cache"]).toBe("REVALIDATED");
      const hit = await http(edge, p);
      expect(hit.headers["x-cache"]).toMatch(/^HIT/);
      expect([hit.headers.etag, hit.headers["content-md5"], hit.headers["content-encoding"], hit.headers["x-one"], hit.body]).toEqual(['"e1"', "rL0Y20zC+Fzt72VPzMSk2A==", undefined, "b", "body"]);
    });

    it("stores a no-cache response without explicit freshness (with a validator) and revalidates it on every use", async () => {
      const p = fresh("no-cache");
      const conditional: boolean[] = [];
      origin.route(p, (req): MockResponse => {
        conditional.push(req.headers["if-none-match"] === '"nc"');
        return req.headers["if-none-match"] === '"nc"' ? { status: 304, headers: { etag: '"nc"' } } : { headers: { "cache-control": "no-cache", etag: '"nc"' }, body: "stored" };
      });
      const { replies } = await repeat(p, 3);
      expect(replies.map((r) => r.body)).toEqual(["stored", "stored", "stored"]);
      expect(conditional).toEqual([false, true, true]);
    });
  });

  describe("Surrogate-Control (W3C Edge Architecture 1.0)", () => {
    it("its max-age and no-store for this edge replace Cache-Control; clients never see the header", async () => {
      const stored = fresh("sc-stored");
      origin.route(stored, (_r, n) => ({ headers: { "cache-control": "no-store", "surrogate-control": "max-age=600" }, body: `v${n}` }));
      const a = await repeat(stored, 2);
      expect(a.hits).toBe(1);
      expect(a.replies.map((r) => [r.headers["surrogate-control"], r.headers["cache-control"]])).toEqual([
        [undefined, "no-store"],
        [undefined, "no-store"],
      ]);
      const refused = fresh("sc-no-store");
      origin.route(refused, (_r, n) => ({ headers: { "cache-control": "max-age=600", "surrogate-control": "no-store" }, body: `v${n}` }));
      expect((await repeat(refused, 2)).hits).toBe(2);
      // targeted: at this edge (the policy's name is its token) it counts, at another surrogate it does not
      const mine = fresh("sc-mine");
      origin.route(mine, (_r, n) => ({ headers: { "cache-control": "max-age=0", "surrogate-control": "max-age=600;Conformance, no-store;other" }, body: `v${n}` }));
      expect((await repeat(mine, 2)).hits).toBe(1);
      const theirs = fresh("sc-theirs");
      origin.route(theirs, (_r, n) => ({ headers: { "cache-control": "max-age=600", "surrogate-control": "no-store;other, MAX-AGE=0;other" }, body: `v${n}` }));
      expect((await repeat(theirs, 2)).hits).toBe(1);
      // not directives: spaces around "=", unknown names
      const odd = fresh("sc-odd");
      origin.route(odd, (_r, n) => ({ headers: { "cache-control": "max-age=0", "surrogate-control": "max-age =600, foo" }, body: `v${n}` }));
      expect((await repeat(odd, 2)).hits).toBe(2);
    });

    it("announces the edge to the origin with Surrogate-Capability, never a client's own; a surrogate in front gets the header", async () => {
      const p = fresh("sc-capability");
      origin.route(p, { headers: { "cache-control": "max-age=600", "surrogate-control": "max-age=60;outer" }, body: "x" });
      const front = await http(edge, p, { headers: { "surrogate-capability": 'outer="Surrogate/1.0"' } });
      expect(front.headers["surrogate-control"]).toBe("max-age=60;outer");
      // hits of either tier: kept for a surrogate in front, removed for anyone else
      for (let i = 0; i < 3; i++) {
        const hitFront = await http(edge, p, { headers: { "surrogate-capability": 'outer="Surrogate/1.0"' } });
        const hitClient = await http(edge, p);
        expect([hitFront.headers["x-cache"], hitFront.headers["surrogate-control"], hitClient.headers["x-cache"], hitClient.headers["surrogate-control"]]).toEqual([
          expect.stringMatching(/^HIT/),
          "max-age=60;outer",
          expect.stringMatching(/^HIT/),
          undefined,
        ]);
      }
      expect(origin.requests.at(-1)?.path).toBe(p);
      expect(origin.requests.at(-1)?.headers["surrogate-capability"]).toBe('conformance="Surrogate/1.0"');
    });

    it("max-age=N+M gives M seconds of stale-if-error", async () => {
      const p = fresh("sc-sie");
      origin.route(p, (_r, n) => (n === 1 ? { headers: { "surrogate-control": "max-age=1+600" }, body: "kept" } : { status: 503, body: "down" }));
      await http(edge, p);
      await sleep(2100);
      const r = await http(edge, p);
      expect([r.status, r.body, r.headers["x-cache"]]).toEqual([200, "kept", expect.stringMatching(/^STALE/)]);
    });

    it("surrogateControl: false ignores the header and passes it on", async () => {
      const off = await boot({ surrogateControl: false });
      try {
        const p = fresh("sc-off");
        origin.route(p, (_r, n) => ({ headers: { "cache-control": "max-age=600", "surrogate-control": "no-store" }, body: `v${n}` }));
        const { replies, hits } = await repeat(p, 2, {}, off);
        expect(hits).toBe(1);
        expect(replies[1]!.headers["surrogate-control"]).toBe("no-store");
        const q = fresh("sc-off-capability");
        await http(off, q, { headers: { "surrogate-capability": 'client="ESI/1.0"' } });
        expect(origin.requests.at(-1)?.path).toBe(q);
        expect(origin.requests.at(-1)?.headers["surrogate-capability"]).toBeUndefined();
      } finally {
        await off.stop();
      }
    });
  });

  describe("invalidation (RFC 9111 4.4)", () => {
    it("invalidates after any method not known to be safe (here M-SEARCH) on a non-error answer, and the same-host Location", async () => {
      const p = fresh("inval");
      const loc = fresh("inval-loc");
      for (const x of [p, loc]) origin.route(x, (req, n): MockResponse => (req.method === "GET" ? { headers: { "cache-control": "max-age=3600" }, body: `v${n}` } : { status: 200, headers: { location: loc }, body: "done" }));
      await http(edge, p);
      await http(edge, loc);
      expect((await http(edge, p, { method: "M-SEARCH" as "GET" })).status).toBe(200);
      expect((await http(edge, p)).body).toBe("v3");
      expect((await http(edge, loc)).body).toBe("v2");
    });
  });

  describe("conditional requests (RFC 9110 13.2.2)", () => {
    const lm = date(Date.now() - 86_400_000);
    const setup = () => {
      const p = fresh("cond");
      origin.route(p, { headers: { "cache-control": "max-age=3600", etag: '"c1"', "last-modified": lm }, body: "content" });
      return p;
    };
    it("If-None-Match takes precedence over If-Modified-Since", async () => {
      const p = setup();
      await http(edge, p);
      await http(edge, p);
      // the entity tag matches; the date alone would say "modified"
      const r = await http(edge, p, { headers: { "if-none-match": '"c1"', "if-modified-since": date(Date.now() - 10 * 86_400_000) } });
      expect(r.status).toBe(304);
      const r2 = await http(edge, p, { headers: { "if-none-match": '"other"', "if-modified-since": date() } });
      expect(r2.status).toBe(200);
    });
    it("answers If-Modified-Since earlier than Last-Modified with 200, equal or later with 304", async () => {
      const p = setup();
      await http(edge, p);
      await http(edge, p);
      expect((await http(edge, p, { headers: { "if-modified-since": date(Date.parse(lm) - 1000) } })).status).toBe(200);
      expect((await http(edge, p, { headers: { "if-modified-since": lm } })).status).toBe(304);
      expect((await http(edge, p, { headers: { "if-modified-since": date(Date.parse(lm) + 3600_000) } })).status).toBe(304);
    });
  });

  describe("ranges (RFC 9110 14, RFC 9111 3.3)", () => {
    it("serves a byte range from a stored complete 200, and fetches the whole object for a cold one", async () => {
      const p = fresh("range");
      let sawRange = false;
      origin.route(p, (req: RecordedRequest) => {
        if (req.headers.range) sawRange = true;
        return { headers: { "cache-control": "max-age=3600" }, body: "0123456789" };
      });
      const cold = await http(edge, p, { headers: { range: "bytes=2-4" } });
      expect([cold.status, cold.body]).toEqual([206, "234"]);
      const warm = await http(edge, p, { headers: { range: "bytes=5-" } });
      expect([warm.status, warm.body, warm.headers["content-range"]]).toEqual([206, "56789", "bytes 5-9/10"]);
      expect(origin.hits(p)).toBe(1);
      expect(sawRange).toBe(false);
    });
  });

  describe("request directives (RFC 9111 5.2.1, 5.4)", () => {
    const cached = async (cc = "max-age=3600") => {
      const p = fresh("req");
      origin.route(p, (req, n) => (req.headers["if-none-match"] === '"r"' ? { status: 304, headers: { etag: '"r"', "cache-control": cc } } : { headers: { "cache-control": cc, etag: '"r"' }, body: `v${n}` }));
      await http(edge, p);
      await http(ignoring, p);
      return p;
    };
    it("no-cache, max-age=0 and Pragma: no-cache make the cache validate with the origin first", async () => {
      const asks: Record<string, string>[] = [{ "cache-control": "no-cache" }, { "cache-control": "max-age=0" }, { pragma: "no-cache" }];
      for (const h of asks) {
        const p = await cached();
        const before = origin.hits(p);
        const r = await http(edge, p, { headers: h });
        expect(r.status).toBe(200);
        expect(origin.hits(p), JSON.stringify(h)).toBe(before + 1);
      }
    });
    it("min-fresh asks for an object fresh for at least that long", async () => {
      const p = await cached("max-age=60");
      const before = origin.hits(p);
      await http(edge, p, { headers: { "cache-control": "min-fresh=30" } });
      expect(origin.hits(p)).toBe(before);
      await http(edge, p, { headers: { "cache-control": "min-fresh=3600" } });
      expect(origin.hits(p)).toBe(before + 1);
    });
    it("max-stale takes a stale object without validation, never one with must-revalidate", async () => {
      const p = await cached("max-age=1");
      await sleep(1100);
      const before = origin.hits(p);
      const r = await http(edge, p, { headers: { "cache-control": "max-stale=60" } });
      expect(r.headers["x-cache"]).toMatch(/STALE/);
      expect(origin.hits(p)).toBe(before);
      const m = await cached("max-age=1, must-revalidate");
      await sleep(1100);
      const mb = origin.hits(m);
      await http(edge, m, { headers: { "cache-control": "max-stale=60" } });
      expect(origin.hits(m)).toBe(mb + 1);
    });
    it("only-if-cached: 504 without a usable stored response, the stored one otherwise", async () => {
      const cold = fresh("only");
      origin.route(cold, { headers: { "cache-control": "max-age=3600" }, body: "x" });
      expect((await http(edge, cold, { headers: { "cache-control": "only-if-cached" } })).status).toBe(504);
      expect(origin.hits(cold)).toBe(0);
      const p = await cached();
      const r = await http(edge, p, { headers: { "cache-control": "only-if-cached" } });
      expect(r.status).toBe(200);
    });
    it("no-store in a request: the answer is not stored", async () => {
      const p = fresh("req-no-store");
      origin.route(p, (_r, n) => ({ headers: { "cache-control": "max-age=3600" }, body: `v${n}` }));
      await http(edge, p, { headers: { "cache-control": "no-store" } });
      await http(edge, p);
      expect(origin.hits(p)).toBe(2);
    });
    it("with clientDirectives: \"ignore\", a client's no-cache does not reach the origin", async () => {
      const p = await cached();
      const before = origin.hits(p);
      const r = await http(ignoring, p, { headers: { "cache-control": "no-cache", pragma: "no-cache" } });
      expect(r.headers["x-cache"]).toMatch(/^HIT/);
      expect(origin.hits(p)).toBe(before);
    });
  });

  describe("must-understand (RFC 9111 5.2.2.3)", () => {
    it("stores a response with must-understand and no-store when its status is understood, not otherwise", async () => {
      const p = fresh("mu");
      origin.route(p, (_r, n) => ({ headers: { "cache-control": "max-age=3600, must-understand, no-store" }, body: `v${n}` }));
      expect((await repeat(p, 2)).hits).toBe(1);
      const q = fresh("mu-299");
      origin.route(q, (_r, n) => ({ status: 299, headers: { "cache-control": "max-age=3600, must-understand, no-store" }, body: `v${n}` }));
      expect((await repeat(q, 2)).hits).toBe(2);
    });
  });
});

describe("Set-Cookie (storeSetCookie)", () => {
  it("is not stored by default; with storeSetCookie the response is stored and hits carry no Set-Cookie", async () => {
    const plain = await bootEdge({ name: "sc", origins: { app: { servers: [{ address: origin.address }] } }, cache: {}, headers: { cacheStatus: "X-Cache" } });
    const storing = await bootEdge({ name: "sc2", origins: { app: { servers: [{ address: origin.address }] } }, cache: { storeSetCookie: true, ram: { size: "4m", minHits: 2 } }, headers: { cacheStatus: "X-Cache" } });
    try {
      const p = fresh("set-cookie");
      origin.route(p, (_r, n) => ({ headers: { "cache-control": "max-age=3600", "set-cookie": `s=${n}` }, body: `v${n}` }));
      await http(plain, p);
      await http(plain, p);
      expect(origin.hits(p)).toBe(2);
      const first = await http(storing, p);
      expect(first.headers["set-cookie"]).toBe("s=3");
      for (let i = 0; i < 3; i++) {
        const hit = await http(storing, p);
        expect(hit.headers["x-cache"]).toMatch(/^HIT/);
        expect(hit.headers["set-cookie"]).toBeUndefined();
        expect(hit.body).toBe("v3");
      }
    } finally {
      await plain.stop();
      await storing.stop();
    }
  });
});

describe("stale on disconnect (RFC 9111 4.2.4)", () => {
  it("without stale-if-error, an unreachable origin gets a 502/504, never a stale object; with must-revalidate, never either", async () => {
    const o = await startMockOrigin();
    const port = o.port;
    o.route("/gone-soon", { headers: { "cache-control": "max-age=1" }, body: "stale" });
    o.route("/mr", { headers: { "cache-control": "max-age=1, must-revalidate" }, body: "stale" });
    const e = await bootEdge({
      name: "disconnect",
      origins: { app: { servers: [{ address: `127.0.0.1:${port}` }], retries: 0, connectTimeout: "1s" } },
      cache: {},
      headers: { cacheStatus: "X-Cache" },
    });
    const sie = await bootEdge({
      name: "disconnect-sie",
      origins: { app: { servers: [{ address: `127.0.0.1:${port}` }], retries: 0, connectTimeout: "1s" } },
      cache: { staleIfError: "1h" },
      headers: { cacheStatus: "X-Cache" },
    });
    try {
      for (const x of [e, sie]) for (const p of ["/gone-soon", "/mr"]) await http(x, p);
      await o.close();
      await sleep(1100);
      expect([502, 504]).toContain((await http(e, "/gone-soon")).status);
      expect([502, 504]).toContain((await http(sie, "/mr")).status);
      const s = await http(sie, "/gone-soon");
      expect([s.status, s.body, s.headers["x-cache"]]).toEqual([200, "stale", "STALE"]);
    } finally {
      await e.stop();
      await sie.stop();
    }
  });
});
