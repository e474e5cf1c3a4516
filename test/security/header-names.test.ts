/**
 * Security issue 11 §4: one rule for header names across every feature (src/util/header-name.ts): letters,
 * digits and "-". Every place the schema names a header is tried with a class of bad names (the table below
 * must cover every such place: a new field that names a header fails the coverage test until it is listed),
 * and, over HTTP, every spelling of the gated and forwarded headers a client can send.
 */
import { createHmac } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootEdge, type Edge } from "../support/edge.js";
import { startMockOrigin, type MockOrigin } from "../support/mock-origin.js";
import { http, luaErrors } from "../support/http.js";
import { policy } from "../support/policy.js";
import { compile } from "../../src/compile.js";
import { policySchema } from "../../src/validate/schema.js";
import { HEADER_NAME, HEADER_NAME_PATTERN } from "../../src/util/header-name.js";
import type { Policy } from "../../src/policy/types.js";
import { env } from "../../src/policy/env.js";
import { tally } from "../support/tally.js";

type Node = Record<string, unknown> & { $ref?: string; pattern?: string; anyOf?: Node[]; properties?: Record<string, Node>; items?: Node; additionalProperties?: Node | boolean; propertyNames?: Node };

/** Every place of the schema that holds a header name: "Definition.property", "[]" for items, "<key>" / "<value>" for maps. */
function headerNamePlaces(): string[] {
  const defs = (policySchema() as { definitions: Record<string, Node> }).definitions;
  const isName = (n: Node | undefined): boolean => !!n && (n.$ref === "#/definitions/HeaderName" || n.pattern === HEADER_NAME_PATTERN || (n.anyOf ?? []).some(isName));
  const out: string[] = [];
  const walk = (n: Node, at: string) => {
    if (isName(n)) out.push(at);
    if (n.propertyNames && isName(n.propertyNames)) out.push(at + ".<key>");
    for (const [k, v] of Object.entries(n.properties ?? {})) walk(v, `${at}.${k}`);
    if (n.items) walk(n.items, at + "[]");
    if (n.additionalProperties && typeof n.additionalProperties === "object") walk(n.additionalProperties, at + ".<value>");
    for (const b of n.anyOf ?? []) if (!isName(b)) walk(b, at);
  };
  for (const [name, def] of Object.entries(defs)) if (name !== "HeaderName") walk(def, name);
  return [...new Set(out)].sort();
}

const ORIGIN = "127.0.0.1:9";
/** Each schema place -> policies that put `n` there, with the JSON pointer the diagnostic must name. */
const PLACES: Record<string, ((n: string) => { p: Partial<Policy>; at: string })[]> = {
  "CacheBypass.headers[]": [(n) => ({ p: { cache: { bypass: { headers: [n] } } }, at: "/cache/bypass/headers/0" })],
  "Headers.cacheStatus": [(n) => ({ p: { cache: {}, headers: { cacheStatus: n } }, at: "/headers/cacheStatus" })],
  "HeaderRules.set.<key>": [
    (n) => ({ p: { headers: { request: { set: { [n]: "v" } } } }, at: `/headers/request/set/${n.replace(/~/g, "~0").replace(/\//g, "~1")}` }),
    (n) => ({ p: { headers: { response: { set: { [n]: "v" } } } }, at: `/headers/response/set/${n.replace(/~/g, "~0").replace(/\//g, "~1")}` }),
    (n) => ({ p: { rules: [{ name: "r", then: { requestHeaders: { set: { [n]: "v" } } } }] }, at: `/rules/0/then/requestHeaders/set/${n.replace(/~/g, "~0").replace(/\//g, "~1")}` }),
    (n) => ({ p: { rules: [{ name: "r", then: { responseHeaders: { set: { [n]: "v" } } } }] }, at: `/rules/0/then/responseHeaders/set/${n.replace(/~/g, "~0").replace(/\//g, "~1")}` }),
  ],
  "HeaderRules.remove[]": [
    (n) => ({ p: { headers: { request: { remove: [n] } } }, at: "/headers/request/remove/0" }),
    (n) => ({ p: { headers: { response: { remove: [n] } } }, at: "/headers/response/remove/0" }),
    (n) => ({ p: { rules: [{ name: "r", then: { requestHeaders: { remove: [n] } } }] }, at: "/rules/0/then/requestHeaders/remove/0" }),
  ],
  "HeaderCondition.name": [(n) => ({ p: { rules: [{ name: "r", when: { header: { name: n } }, then: { deny: true } }] }, at: "/rules/0/when/header/name" })],
  "CountryCondition.header": [(n) => ({ p: { rules: [{ name: "r", when: { country: { in: ["DE"], header: n } }, then: { deny: true } }] }, at: "/rules/0/when/country/header" })],
  "CacheKeyAdditions.headers[]": [(n) => ({ p: { cache: {}, rules: [{ name: "r", then: { cache: { key: { headers: [n] } } } }] }, at: "/rules/0/then/cache/key/headers/0" })],
  "GeoRoute.header": [(n) => ({ p: { origins: { app: { servers: [{ address: ORIGIN }] }, eu: { servers: [{ address: "127.0.0.1:10" }] } }, defaultOrigin: "app", rules: [{ name: "r", then: { geo: { map: { DE: "eu" }, default: "app", header: n } } }] }, at: "/rules/0/then/geo/header" })],
  "Experiment.header": [(n) => ({ p: { rules: [{ name: "r", then: { experiment: { name: "e", variants: [{ name: "a", weight: 50 }, { name: "b", weight: 50 }], header: n } } }] }, at: "/rules/0/then/experiment/header" })],
  "Jwt.forwardClaims.<value>": [(n) => ({ p: { jwt: { algorithms: ["HS256"], secret: env("S"), forwardClaims: { sub: n } } }, at: "/jwt/forwardClaims/sub" })],
  "RateLimitKey.header": [(n) => ({ p: { rateLimit: [{ name: "l", rate: "1r/s", key: { header: n } }] }, at: "/rateLimit/0/key/header" })],
  "OverrideAllow.header": [(n) => ({ p: { headers: { allowOverrides: [{ header: n }] } }, at: "/headers/allowOverrides/0/header" })],
  "OriginSecret.header": [(n) => ({ p: { originSecret: { secret: env("S"), header: n } }, at: "/originSecret/header" })],
  "ClientAddress.header": [(n) => ({ p: { clientAddress: { trustedProxies: ["10.0.0.0/8"], header: n } }, at: "/clientAddress/header" })],
  "IpRules.realIpHeader": [(n) => ({ p: { ipRules: { deny: ["10.0.0.0/8"], trustedProxies: ["10.0.0.0/8"], realIpHeader: n } }, at: "/ipRules/realIpHeader" })],
  "ComputedValue.header": [
    (n) => ({ p: { headers: { request: { set: { "X-A": { header: n } } } } }, at: "/headers/request/set/X-A/header" }),
    (n) => ({ p: { rules: [{ name: "r", then: { responseHeaders: { set: { "X-A": { header: n } } } } }] }, at: "/rules/0/then/responseHeaders/set/X-A/header" }),
  ],
  "CountrySource.header": [(n) => ({ p: { headers: { request: { set: { "X-C": { country: { header: n } } } } } }, at: "/headers/request/set/X-C/country/header" })],
  "RequestId.header": [(n) => ({ p: { requestId: { header: n } }, at: "/requestId/header" })],
  "WafRule.header": [(n) => ({ p: { waf: { rules: [{ id: "c", target: "header", header: n, pattern: "x" }] } }, at: "/waf/rules/0/header" })],
};

/** The class of names the rule refuses: "_" in every position, other token characters, empty and too long. */
const BAD = ["X_User_Id", "x_user_id", "_X", "X_", "X-User_Id", "X.Y", "X:Y", "X Y", "X$Y", "X~Y", "X'Y", "Ü-Name", "", "a".repeat(65), "X\tY"];
/** Names it accepts, boundaries included. */
const GOOD = ["X-User-Id", "x", "X-" + "a".repeat(62), "0", "A-1-b"];

describe("§4 header names: one rule, everywhere a policy names a header", () => {
  it("uses one pattern, in the schema and the compiler", () => {
    const defs = (policySchema() as { definitions: Record<string, Node> }).definitions;
    expect(defs.HeaderName!.pattern).toBe(HEADER_NAME_PATTERN);
    for (const n of BAD) expect(HEADER_NAME.test(n), n).toBe(false);
    for (const n of GOOD) expect(HEADER_NAME.test(n), n).toBe(true);
  });

  it("the table below covers every place of the schema that names a header", () => {
    expect(Object.keys(PLACES).sort()).toEqual(headerNamePlaces());
  });

  it("refuses every bad name in every place with CDN2030 at its path, and accepts the good ones", () => {
    const t = tally("header names (compile)");
    for (const [place, builders] of Object.entries(PLACES)) {
      for (const build of builders) {
        for (const name of BAD) {
          const { p, at } = build(name);
          const r = compile(policy(ORIGIN, p), { target: "openresty" });
          const ok = r.bundle === undefined && r.diagnostics.some((d) => d.code === "CDN2030" && d.path === at);
          t.refused(ok, `${place} ${JSON.stringify(name)}: ${r.diagnostics.map((d) => `${d.code} ${d.path}`).join(", ")}`);
        }
        for (const name of GOOD) {
          const { p } = build(name);
          const r = compile(policy(ORIGIN, p), { target: "openresty" });
          t.accepted(!r.diagnostics.some((d) => d.code === "CDN2030"), `${place} ${JSON.stringify(name)} refused: ${r.diagnostics.map((d) => `${d.code} ${d.path}`).join(", ")}`);
        }
      }
    }
    t.done();
  });

  it("derives default header names that follow the rule (an experiment named with '_')", () => {
    const r = compile(policy(ORIGIN, { rules: [{ name: "r", then: { experiment: { name: "ab_test", variants: [{ name: "a", weight: 50 }, { name: "b", weight: 50 }] } } }] }), { target: "openresty" });
    expect(r.bundle).toBeDefined();
    const data = r.bundle!.files.get("lua/policy_data.lua")!;
    expect(data).toContain("X-Experiment-ab-test");
    expect(data).not.toContain("X-Experiment-ab_test");
  });
});

describe("§4 header names over HTTP: no spelling of a gated or forwarded header reaches the origin from a client", () => {
  const SECRET = "edge-secret-0f3a9c";
  const JWT_SECRET = "jwt-secret-for-header-names-0123456789";
  let origin: MockOrigin;
  let edge: Edge;
  const b64u = (x: string) => Buffer.from(x).toString("base64url");
  const token = () => {
    const input = `${b64u(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${b64u(JSON.stringify({ sub: "user-7", exp: Math.floor(Date.now() / 1000) + 600 }))}`;
    return `${input}.${createHmac("sha256", JWT_SECRET).update(input).digest("base64url")}`;
  };
  /** Spellings of a header a client can send: case and "-" / "_" mixed. */
  const spellings = (name: string) => {
    const parts = name.split("-");
    const out = new Set<string>();
    for (let mask = 0; mask < 1 << (parts.length - 1); mask++) {
      const joined = parts.reduce((acc, p, i) => (i === 0 ? p : acc + ((mask >> (i - 1)) & 1 ? "_" : "-") + p), "");
      out.add(joined).add(joined.toLowerCase()).add(joined.toUpperCase());
    }
    return [...out];
  };
  /** The origin's view: header names folded the way CGI/PHP, Django and Rack fold them. */
  const folded = (h: Record<string, unknown>, name: string) => Object.keys(h).filter((k) => k.toLowerCase().replace(/_/g, "-") === name.toLowerCase());

  beforeAll(async () => {
    origin = await startMockOrigin();
    edge = await bootEdge(
      policy(origin, {
        name: "hdr-names",
        originSecret: { secret: env("HN_SECRET"), header: "X-Origin-Secret" },
        jwt: { paths: ["/private/*"], algorithms: ["HS256"], secret: env("HN_JWT"), forwardClaims: { sub: "X-User-Id" } },
      }),
      { env: { HN_SECRET: SECRET, HN_JWT: JWT_SECRET } },
    );
  });
  afterAll(async () => {
    await edge?.stop();
    await origin?.close();
  });

  it("the origin secret: a spelling with '_' never passes the gate, a '-' spelling passes and is removed", async () => {
    const t = tally("header names (origin secret over HTTP)");
    for (const name of spellings("X-Origin-Secret")) {
      origin.reset();
      const r = await http(edge, "/page", { headers: { [name]: SECRET } });
      const reached = origin.requests.flatMap((q) => folded(q.headers, "X-Origin-Secret"));
      if (name.includes("_")) t.refused(r.status === 403 && origin.hits() === 0, `${name}: ${r.status}, origin hits ${origin.hits()}`);
      else t.accepted(r.status === 200 && reached.length === 0, `${name}: ${r.status}, reached the origin as ${reached.join(", ")}`);
      // whatever the spelling, the secret itself never reaches the origin
      t.refused(!origin.requests.some((q) => JSON.stringify(q.headers).includes(SECRET)), `${name}: the secret reached the origin`);
    }
    t.done();
  });

  it("a forwarded claim: no client spelling of X-User-Id reaches the origin, in the gate's scope or not", async () => {
    const t = tally("header names (JWT claim over HTTP)");
    for (const path of ["/private/a", "/public/a"]) {
      for (const name of spellings("X-User-Id")) {
        origin.reset();
        const headers: Record<string, string> = { "x-origin-secret": SECRET, [name]: "forged-admin" };
        if (path.startsWith("/private")) headers.authorization = `Bearer ${token()}`;
        const r = await http(edge, path, { headers });
        const q = origin.requests[0];
        const values = q ? folded(q.headers, "X-User-Id").map((k) => String(q.headers[k])) : ["(no request)"];
        const want = path.startsWith("/private") ? ["user-7"] : [];
        t.refused(r.status === 200 && JSON.stringify(values) === JSON.stringify(want), `${path} ${name}: ${r.status}, origin saw ${JSON.stringify(values)}`);
      }
    }
    expect(luaErrors(await edge.errors())).toEqual([]);
    t.done();
  });
});
