/**
 * Security issue 11 §7: gate path scopes and the cache key's length.
 * - Every spelling of a gated path an origin may read as that path (";params", encodings, backslashes,
 *   dot segments, doubled slashes; with an origin declared case-insensitive also case and Windows forms)
 *   gets the gate, for every gate with a scope; paths outside the scope, and exceptions, still pass.
 * - Cache keys of any length (up to what nginx admits in a request line) are cached without an error line
 *   per request, and purged by URL.
 */
import { createHmac } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootEdge, type Edge } from "../support/edge.js";
import { startMockOrigin, type MockOrigin } from "../support/mock-origin.js";
import { http, luaErrors, rawRequest } from "../support/http.js";
import { policy } from "../support/policy.js";
import { tally } from "../support/tally.js";
import { purgeBody, purgeHeaders } from "../../src/purge/client.js";
import { signPath } from "../../src/sign.js";
import { env } from "../../src/policy/env.js";
import type { Policy } from "../../src/policy/types.js";

const ENV = { GS_SECRET: "gs-origin-secret", GS_JWT: "gs-jwt-secret-0123456789abcdef", GS_SIGN: "gs-sign-key", GS_PURGE: "gs-purge-token" };

let origin: MockOrigin;
beforeAll(async () => {
  origin = await startMockOrigin();
});
afterAll(async () => {
  await origin?.close();
});

const gated = (caseInsensitive: boolean): Partial<Policy> => ({
  origins: { app: { servers: [{ address: origin.address }], retries: 0, ...(caseInsensitive ? { caseInsensitivePaths: true } : {}) } },
  originSecret: { secret: env("GS_SECRET"), paths: ["/os/*"] },
  jwt: { algorithms: ["HS256"], secret: env("GS_JWT"), paths: ["/jwt/*"], exceptPaths: ["/jwt/public/*"] },
  signedUrls: { secret: env("GS_SIGN"), paths: ["/dl/*.zip"] },
  ipRules: { deny: ["127.0.0.0/8", "::1/128"], paths: ["/ip/*"] },
});

/** Spellings of `/<seg>/<rest>` that a case-sensitive origin may read as it. */
function spellings(seg: string, rest: string): string[] {
  const enc = (c: string) => "%" + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0");
  return [
    `/${seg}/${rest}`,
    `/${seg};/${rest}`,
    `/${seg};x/${rest}`,
    `/${seg};x=1;y=2/${rest}`,
    `/${seg};jsessionid=0A1B2C/${rest}`,
    `/${seg}%3Bx/${rest}`,
    `/${enc(seg[0]!)}${seg.slice(1)}/${rest}`,
    `/${seg}%2F${rest}`,
    `/${seg}%252F${rest}`,
    `/${seg}%253Bx/${rest}`,
    `/${seg}\\${rest}`,
    `/${seg}%5C${rest}`,
    `//${seg}//${rest}`,
    `/./${seg}/./${rest}`,
    `/x/../${seg}/${rest}`,
    `/${seg}/x/..//${rest}`,
  ];
}
/** Further spellings a case-insensitive (Windows-like) origin reads as the same path. */
function ciSpellings(seg: string, rest: string): string[] {
  const up = seg.toUpperCase();
  const mixed = seg[0]!.toUpperCase() + seg.slice(1);
  return [
    `/${up}/${rest}`,
    `/${mixed}/${rest.toUpperCase()}`,
    `/${up};x/${rest}`,
    `/%${up.charCodeAt(0).toString(16)}${seg.slice(1)}/${rest}`,
    `/${seg}./${rest}`,
    `/${seg}%20/${rest}`,
    `/${seg}::$DATA/${rest}`,
    `/${up}%252F${rest}`,
  ];
}

/** Each gate: the segment it guards, a file under it, and what it answers without credentials. */
const GATES: [string, string, string, number[]][] = [
  ["origin secret", "os", "a", [403]],
  ["jwt", "jwt", "a", [401]],
  ["signed URLs", "dl", "a.zip", [403]],
  ["ip rules", "ip", "a", [403]],
];

async function send(e: Edge, target: string): Promise<number> {
  return (await rawRequest(e, `GET ${target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`)).status;
}

describe("§7 gate scopes match every spelling of a gated path", () => {
  let cs: Edge;
  let ci: Edge;
  beforeAll(async () => {
    cs = await bootEdge(policy(origin, { name: "scope-cs", ...gated(false) }), { env: ENV });
    ci = await bootEdge(policy(origin, { name: "scope-ci", ...gated(true) }), { env: ENV });
  });
  afterAll(async () => {
    await cs?.stop();
    await ci?.stop();
  });

  it("gates every spelling a case-sensitive origin reads as the gated path, and lets others through", async () => {
    const t = tally("§7 gate scopes (case-sensitive origin)");
    for (const [gate, seg, rest, refused] of GATES) {
      for (const target of spellings(seg, rest)) {
        origin.reset();
        const status = await send(cs, target);
        t.refused(refused.includes(status) && origin.hits() === 0, `${gate} ${target}: ${status}, origin ${origin.hits()}`);
      }
      // outside the scope: another segment (and, on a case-sensitive origin, another case is another path)
      for (const target of [`/${seg}x/${rest}`, `/pub/${seg}/${rest}`, `/${seg.toUpperCase()}/${rest}`]) {
        origin.reset();
        const status = await send(cs, target);
        t.accepted(status === 200 && origin.hits() === 1, `${gate} ${target} (outside): ${status}`);
      }
    }
    // an exception holds only when every reading of the path is excepted (`/jwt/public;x/a` is another
    // resource to an origin that keeps ";x": gated)
    for (const [target, excepted] of [["/jwt/public/a", true], ["/jwt/public/a;x", true], ["/jwt/public;x/a", false], ["/jwt/public%252Fa", false], ["/jwt;x/public/../a", false]] as const) {
      origin.reset();
      const status = await send(cs, target);
      if (excepted) t.accepted(status === 200, `${target} (excepted): ${status}`);
      else t.refused(status === 401 && origin.hits() === 0, `${target}: ${status}`);
    }
    expect(luaErrors(await cs.errors())).toEqual([]);
    t.done();
  });

  it("with an origin declared case-insensitive, also every case and Windows spelling", async () => {
    const t = tally("§7 gate scopes (case-insensitive origin)");
    for (const [gate, seg, rest, refused] of GATES) {
      for (const target of [...spellings(seg, rest), ...ciSpellings(seg, rest)]) {
        origin.reset();
        const status = await send(ci, target);
        t.refused(refused.includes(status) && origin.hits() === 0, `${gate} ${target}: ${status}, origin ${origin.hits()}`);
      }
      for (const target of [`/${seg}x/${rest}`, `/pub/${seg}/${rest}`]) {
        origin.reset();
        t.accepted((await send(ci, target)) === 200, `${gate} ${target} (outside)`);
      }
    }
    expect(luaErrors(await ci.errors())).toEqual([]);
    t.done();
  });

  it("still lets the credentials through: the secret, a token, a signed URL", async () => {
    const b64u = (x: string) => Buffer.from(x).toString("base64url");
    const input = `${b64u(JSON.stringify({ alg: "HS256" }))}.${b64u(JSON.stringify({ sub: "u", exp: Math.floor(Date.now() / 1000) + 600 }))}`;
    const jwt = `${input}.${createHmac("sha256", ENV.GS_JWT).update(input).digest("base64url")}`;
    for (const e of [cs, ci]) {
      expect((await http(e, "/os/a", { headers: { "x-origin-secret": ENV.GS_SECRET } })).status).toBe(200);
      expect((await http(e, "/jwt;x/a", { headers: { authorization: `Bearer ${jwt}` } })).status).toBe(200);
      const url = signPath({ path: "/dl/a.zip", expires: Math.floor(Date.now() / 1000) + 600, key: ENV.GS_SIGN });
      expect((await http(e, url)).status).toBe(200);
    }
  });
});

describe("§7 cache keys of any length: cached without an error per request, purged by URL", () => {
  let edge: Edge;
  beforeAll(async () => {
    origin.setDefault({ status: 200, headers: { "cache-control": "max-age=600", vary: "Cookie" }, body: "long" });
    edge = await bootEdge(policy(origin, { name: "long-keys", cache: {}, purge: { token: env("GS_PURGE"), allow: ["127.0.0.1/32"] } }), { env: ENV });
  });
  afterAll(async () => {
    await edge?.stop();
    origin.reset();
  });

  it("stores and serves every length, a long Vary signature included, with no error line", async () => {
    const t = tally("§7 long cache keys");
    const before = (await edge.errors()).length;
    let n = 0;
    for (const len of [100, 2000, 2047, 2048, 2049, 3000, 3800, 4000, 5000, 7900]) {
      for (const cookie of ["", "c=" + "v".repeat(6000)]) {
        const path = `/k${n++}/` + "p".repeat(len - 4 - String(n).length);
        const headers: Record<string, string> = cookie ? { cookie } : {};
        const a = await http(edge, path, { headers });
        const b = await http(edge, path, { headers });
        t.refused(a.headers["x-cache"] === "MISS" && b.headers["x-cache"] === "HIT", `path ${path.length} cookie ${cookie.length}: ${a.headers["x-cache"]} ${b.headers["x-cache"]}`);
      }
    }
    // two long paths that share their first 2 KB stay apart
    const common = "/same/" + "s".repeat(3000);
    origin.route(common + "A", { status: 200, headers: { "cache-control": "max-age=600" }, body: "A" });
    origin.route(common + "B", { status: 200, headers: { "cache-control": "max-age=600" }, body: "B" });
    await http(edge, common + "A");
    t.refused((await http(edge, common + "B")).body === "B", "two long keys merged");
    const errors = (await edge.errors()).slice(before);
    t.refused(errors.length === 0, `error lines: ${errors.slice(0, 2).join(" / ")}`);
    t.done();
  });

  it("purges a long URL by its URL", async () => {
    const path = "/purge-long/" + "q".repeat(5000);
    await http(edge, path);
    expect((await http(edge, path)).headers["x-cache"]).toBe("HIT");
    const body = purgeBody({ urls: [`http://127.0.0.1${path}`] });
    const r = await http(edge, "/__purge", { method: "POST", headers: purgeHeaders({ token: ENV.GS_PURGE }, "/__purge", body), body });
    expect(r.status).toBe(200);
    expect((await http(edge, path)).headers["x-cache"]).toBe("MISS");
    expect(luaErrors(await edge.errors())).toEqual([]);
  });
});
