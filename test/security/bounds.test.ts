/**
 * Security issue 11 §6: values the schema used to accept but nginx (or the gate) rejects, and unbounded
 * values. Every value below is refused at validation, with a code, where it used to build and fail
 * `nginx -t` or produce something the edge refuses; every string of the schema has a bound; oversized
 * client headers get a clean 4xx from the edge, and an origin's refusal of one client's oversized or
 * malformed request is never cached. (That every accepted value passes `nginx -t` and boots, the maxima
 * and minima included, is test/property.test.ts.)
 */
import { execa } from "execa";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootEdge, type Edge } from "../support/edge.js";
import { startMockOrigin, type MockOrigin } from "../support/mock-origin.js";
import { http, luaErrors, rawRequest } from "../support/http.js";
import { policy } from "../support/policy.js";
import { tally } from "../support/tally.js";
import { compile } from "../../src/compile.js";
import { policySchema } from "../../src/validate/schema.js";
import type { Policy } from "../../src/policy/types.js";
import { env } from "../../src/policy/env.js";

const ORIGIN = "127.0.0.1:9";
const run = (p: unknown) => compile(p, { target: "openresty" });

/** [what, policy, code(s) ("|"-separated: a value the schema's pattern already refuses is CDN1004), JSON pointer] that must be refused. */
type Case = [string, Partial<Policy>, string, string];
const server = (address: string): Partial<Policy> => ({ origins: { app: { servers: [{ address }] } } });

const BAD: Case[] = [
  // origin server hosts (CDN2065): the issue's two, then their class
  ...["[:::::]", "[1:2:3]", "[::1:]", "[12345::1]", "[::g]", "[1.2.3.4]", "[]", "[:]"].map((h): Case => [`server ${h}:80`, server(`${h}:80`), "CDN2065|CDN1004", "/origins/app/servers/0/address"]),
  ...["999.999.999.999", "256.1.1.1", "1.2.3", "1.2.3.4.5", "1..2.3", "01.2.3.4.", "4294967296", "0x7f.1"].filter((h) => /^[0-9.]+$/.test(h)).map((h): Case => [`server ${h}:80`, server(`${h}:80`), "CDN2065", "/origins/app/servers/0/address"]),
  ...["-app.internal", "app-.internal", "a..b", ".app", "app.", "a".repeat(64) + ".com", ("a".repeat(63) + ".").repeat(4) + "com"].map((h): Case => [`server ${h.slice(0, 30)}:80`, server(`${h}:80`), h.length > 253 ? "CDN1004" : "CDN2065", "/origins/app/servers/0/address"]),
  // listen addresses (CDN2064)
  ...["999.1.1.1", "1.2.3", "256.0.0.1", "[1:2:3]", "[:::::]", "[::g]", "1.2.3.4.5"].map((a): Case => [`listen ${a}`, { listen: { address: a } }, "CDN2064|CDN1004", "/listen/address"]),
  // shared memory zones above what nginx maps (CDN2007): the issue's, then every zone
  ["ram.size 999999999g", { cache: { ram: { size: "999999999g" } } }, "CDN2007", "/cache/ram/size"],
  ["ram.size 17g", { cache: { ram: { size: "17g" } } }, "CDN2007", "/cache/ram/size"],
  ["keysZone 5g", { cache: { disk: { keysZone: "5g" } } }, "CDN2007", "/cache/disk/keysZone"],
  ["keysZone 4097m", { cache: { disk: { keysZone: "4097m" } } }, "CDN2007", "/cache/disk/keysZone"],
  ["markersSize 999999999g", { cache: { disk: { markersSize: "999999999g" } } }, "CDN2007", "/cache/disk/markersSize"],
  ["purge.indexSize 4194305k", { cache: {}, purge: { token: env("T"), indexSize: "4194305k" } }, "CDN2007", "/purge/indexSize"],
  // workers (CDN2022, schema range CDN1006, CDN2066)
  ["processes 1024", { workers: { processes: 1024 } }, "CDN2022", "/workers/processes"],
  ["processes 257", { workers: { processes: 257 } }, "CDN2022", "/workers/processes"],
  ["connections 1000000", { workers: { connections: 1000000 } }, "CDN1006", "/workers/connections"],
  ["connections 262145", { workers: { connections: 262145 } }, "CDN1006", "/workers/connections"],
  ["256 × 16385 connections", { workers: { processes: 256, connections: 16385 } }, "CDN2066", "/workers/connections"],
  // header values and totals (CDN1006 per value, CDN2067 per set map)
  ["a 100 KB request header value", { headers: { request: { set: { "X-Big": "a".repeat(100 * 1024) } } } }, "CDN1006", "/headers/request/set/X-Big"],
  ["a 4097-character value", { headers: { request: { set: { "X-Big": "a".repeat(4097) } } } }, "CDN1006", "/headers/request/set/X-Big"],
  ["request headers totalling 8193 bytes", { headers: { request: { set: { A: "a".repeat(4096), B: "b".repeat(4087) } } } }, "CDN2067", "/headers/request/set"],
  ["response headers totalling 8193 bytes", { headers: { response: { set: { A: "a".repeat(4096), B: "b".repeat(4087) } } } }, "CDN2067", "/headers/response/set"],
  ["a rule's request headers over 8 KiB", { rules: [{ name: "r", then: { requestHeaders: { set: { A: "a".repeat(4096), B: "b".repeat(4087) } } } }] }, "CDN2067", "/rules/0/then/requestHeaders/set"],
  ["a rule's response headers over 8 KiB", { rules: [{ name: "r", then: { responseHeaders: { set: { A: "a".repeat(4096), B: "b".repeat(4087) } } } }] }, "CDN2067", "/rules/0/then/responseHeaders/set"],
  ["65 response headers", { headers: { response: { set: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`X-${i}`, "v"])) } } }, "CDN1006", "/headers/response/set"],
  // other strings past their bound
  ["a 129-character origin name", { origins: { ["o".repeat(129)]: { servers: [{ address: ORIGIN }] } } }, "CDN1006", "/origins"],
  ["a 4,097-character WAF pattern", { waf: { rules: [{ id: "x", target: "path", pattern: "a".repeat(4097) }] } }, "CDN1006", "/waf/rules/0/pattern"],
  ["a 1,025-character WAF pattern", { waf: { rules: [{ id: "x", target: "path", pattern: "a".repeat(1025) }] } }, "CDN2090", "/waf/rules/0/pattern"],
  ["a 1025-character issuer", { jwt: { algorithms: ["HS256"], secret: env("S"), issuer: "i".repeat(1025) } }, "CDN1006", "/jwt/issuer"],
  ["a 33-character rate", { rateLimit: [{ name: "l", rate: "1".repeat(29) + "r/s" + "x" }] }, "CDN1006", "/rateLimit/0/rate"],
];

describe("§6 values nginx or the gate would refuse are refused at validation, with a code", () => {
  it("refuses each value at its path, and accepts the boundary on the right side", () => {
    const t = tally("§6 bounds (compile)");
    for (const [what, extra, code, at] of BAD) {
      const r = run(policy(ORIGIN, extra));
      t.refused(r.bundle === undefined && r.diagnostics.some((d) => code.split("|").includes(d.code) && d.path === at), `${what}: ${r.diagnostics.map((d) => `${d.code} ${d.path}`).join(", ") || "accepted"}`);
    }
    const GOOD: [string, Partial<Policy>][] = [
      ["server [::ffff:127.0.0.1]", server("[::ffff:127.0.0.1]:80")],
      ["server 255.255.255.255", server("255.255.255.255:80")],
      ["server app-1.internal", server("app-1.internal:80")],
      ["server a 63-character label", server("a".repeat(63) + ".com:80")],
      ["listen [::]", { listen: { address: "[::]" } }],
      ["listen 0.0.0.0", { listen: { address: "0.0.0.0" } }],
      ["ram.size 16g", { cache: { ram: { size: "16g" } } }],
      ["keysZone 4g", { cache: { disk: { keysZone: "4g" } } }],
      ["processes 256 × 16384", { workers: { processes: 256, connections: 16384 } }],
      ["request headers totalling 8192 bytes", { headers: { request: { set: { A: "a".repeat(4096), B: "b".repeat(4086) } } } }],
      ["64 response headers", { headers: { response: { set: Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`X-${i}`, "v"])) } } }],
    ];
    for (const [what, extra] of GOOD) {
      const r = run(policy(ORIGIN, extra));
      t.accepted(r.bundle !== undefined, `${what}: ${r.diagnostics.map((d) => `${d.code} ${d.path}`).join(", ")}`);
    }
    t.done();
  });

  it("refuses a 50 MB response header value at once, without building anything", () => {
    const started = Date.now();
    const r = run(policy(ORIGIN, { headers: { response: { set: { "X-Huge": "x".repeat(50 * 1024 * 1024) } } } }));
    expect(r.bundle).toBeUndefined();
    expect(r.diagnostics.map((d) => d.code)).toContain("CDN1006");
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("gives every string of the schema a bound: maxLength, a bounded pattern or an enum (map keys too)", () => {
    type Node = Record<string, unknown> & { $ref?: string; type?: string | string[]; pattern?: string; maxLength?: number; enum?: unknown[]; const?: unknown; properties?: Record<string, Node>; items?: Node; additionalProperties?: Node | boolean; propertyNames?: Node; anyOf?: Node[]; oneOf?: Node[] };
    const defs = (policySchema() as { definitions: Record<string, Node> }).definitions;
    const boundedPattern = (p: string) => /^\^.*\$$/.test(p) && !/[+*]|\{\d+,\}/.test(p.replace(/\\./g, "x").replace(/\[[^\]]*\]/g, "x"));
    const unbounded: string[] = [];
    const walk = (n: Node, at: string, seen: Set<string>): void => {
      if (n.$ref) {
        const name = n.$ref.split("/").pop()!;
        if (!seen.has(name)) walk(defs[name]!, `${at}->${name}`, new Set([...seen, name]));
        return;
      }
      const types = Array.isArray(n.type) ? n.type : [n.type];
      if (types.includes("string") && n.maxLength === undefined && n.enum === undefined && n.const === undefined && !(n.pattern && boundedPattern(n.pattern))) unbounded.push(at);
      for (const [k, v] of Object.entries(n.properties ?? {})) walk(v, `${at}.${k}`, seen);
      if (n.items) walk(n.items, `${at}[]`, seen);
      if (n.additionalProperties && typeof n.additionalProperties === "object") {
        walk(n.additionalProperties, `${at}.<value>`, seen);
        const keys = n.propertyNames;
        if (!keys || (keys.maxLength === undefined && !(keys.pattern && boundedPattern(keys.pattern)))) unbounded.push(`${at}.<key>`);
      }
      for (const b of [...(n.anyOf ?? []), ...(n.oneOf ?? [])]) walk(b, at, seen);
    };
    walk({ $ref: "#/definitions/Policy" }, "", new Set());
    expect(unbounded).toEqual([]);
  });
});

describe("§6 `cdn-build sign` never prints a URL the gate refuses", () => {
  let dir: string;
  let origin: MockOrigin;
  let edge: Edge;
  const BIN = join(import.meta.dirname, "..", "..", "bin", "cdn-build.js");
  const KEY = "bounds-sign-key";
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "cdn-sign-bounds-"));
    await writeFile(join(dir, "edge.yaml"), `name: s\norigins:\n  app:\n    servers: [{ address: "${ORIGIN}" }]\nsignedUrls:\n  paths: ["/dl/*"]\n  secret: { env: SIGN_KEY }\n`);
    origin = await startMockOrigin();
    edge = await bootEdge(policy(origin, { name: "sign-bounds", signedUrls: { paths: ["/dl/*"], secret: env("SIGN_KEY") } }), { env: { SIGN_KEY: KEY } });
  });
  afterAll(async () => {
    await edge?.stop();
    await origin?.close();
    await rm(dir, { recursive: true, force: true });
  });
  const sign = (args: string[]) => execa("node", [BIN, "sign", "edge.yaml", "/dl/a.zip", ...args], { reject: false, cwd: dir, env: { SIGN_KEY: KEY } });

  it("refuses expiries past 12 digits (exit 2) and the URLs it prints are accepted by the gate", async () => {
    const t = tally("§6 sign expiry");
    for (const args of [["--ttl", "99999999w"], ["--ttl", "1700000w"], ["--ttl", "999999999d"], ["--expires", "1000000000000"], ["--expires", "99999999999999"]]) {
      const r = await sign(args);
      t.refused(r.exitCode === 2 && r.stdout === "", `${args.join(" ")}: exit ${r.exitCode} ${r.stdout}`);
    }
    for (const args of [["--expires", "999999999999"], ["--ttl", "1600000w"], ["--ttl", "1h"]]) {
      const r = await sign(args);
      const status = r.exitCode === 0 ? (await http(edge, r.stdout.trim())).status : 0;
      t.accepted(status === 200, `${args.join(" ")}: exit ${r.exitCode}, gate ${status}`);
    }
    t.done();
  });
});

describe("§6 oversized client headers: a clean 4xx from the edge, never a broken proxy or a cached refusal", () => {
  let origin: MockOrigin;
  let edge: Edge;
  beforeAll(async () => {
    origin = await startMockOrigin();
    edge = await bootEdge(policy(origin, { name: "hdr-bounds", cache: { ttl: { any: "1h" } } }));
  });
  afterAll(async () => {
    await edge?.stop();
    await origin?.close();
  });

  it("answers 400 (414 for a long URI) to a header line over 8 KiB or headers over 32 KiB, without the origin", async () => {
    const t = tally("§6 client header limits");
    const cases: [string, string, number][] = [
      ["one 100 KB header", `GET /a HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(100 * 1024)}\r\nConnection: close\r\n\r\n`, 400],
      ["one 8 KiB + 1 header line", `GET /a HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(8192)}\r\nConnection: close\r\n\r\n`, 400],
      ["a 100 KB cookie", `GET /a HTTP/1.1\r\nHost: x\r\nCookie: c=${"a".repeat(100 * 1024)}\r\nConnection: close\r\n\r\n`, 400],
      ["five 7 KB headers (35 KB)", `GET /a HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 5 }, (_, i) => `X-${i}: ${"a".repeat(7000)}\r\n`).join("")}Connection: close\r\n\r\n`, 400],
      ["a 9 KB URI", `GET /${"a".repeat(9000)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, 414],
    ];
    for (const [what, text, want] of cases) {
      origin.reset();
      const r = await rawRequest(edge, text);
      t.refused(r.status === want && origin.hits() === 0, `${what}: ${r.status}, origin ${origin.hits()}`);
    }
    origin.reset();
    const ok = await rawRequest(edge, `GET /a HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(7000)}\r\nConnection: close\r\n\r\n`);
    t.accepted(ok.status === 200 && origin.hits() === 1, `a 7 KB header: ${ok.status}`);
    expect(luaErrors(await edge.errors())).toEqual([]);
    t.done();
  });

  it("never stores an origin's 400, 413, 414 or 431 (one client's request refused), even with a TTL for any status", async () => {
    const t = tally("§6 refusals never cached");
    for (const status of [400, 413, 414, 431]) {
      const path = `/refused-${status}`;
      origin.reset();
      // the origin refuses the request that carries a header it finds too large, and serves the others
      origin.route(path, (req) => (req.headers["x-big"] ? { status, headers: { "cache-control": "max-age=3600" }, body: "refused" } : { status: 200, headers: { "cache-control": "max-age=3600" }, body: "page" }));
      const bad = await http(edge, path, { headers: { "x-big": "a".repeat(6000) } });
      const next = await http(edge, path);
      t.refused(bad.status === status && next.status === 200 && next.body === "page", `${status}: then ${next.status} ${next.body}`);
    }
    // a cacheable 404 is still cached (control)
    origin.reset();
    origin.route("/nf", { status: 404, headers: { "cache-control": "max-age=3600" }, body: "nf" });
    await http(edge, "/nf");
    t.accepted((await http(edge, "/nf")).headers["x-cache"] === "HIT", "404 not cached");
    expect(run(policy(ORIGIN, { cache: { ttl: { "431": "1m" } } })).diagnostics.map((d) => `${d.severity} ${d.code}`)).toContain("warning CDN2063");
    t.done();
  });
});
