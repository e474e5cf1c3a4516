import { describe, expect, it } from "vitest";
import { compile } from "../src/compile.js";
import { errors, policy } from "./support/policy.js";

const base = () => policy("127.0.0.1:3000", { name: "v", cache: {} });

describe("invalid policies", () => {
  const cases: [string, (p: any) => void, string][] = [
    ["missing name", (p) => delete p.name, "CDN1001 /name"],
    ["unknown property", (p) => (p.cache.ttls = {}), "CDN1002 /cache/ttls"],
    ["wrong type", (p) => (p.origins.app.servers[0].weight = "three"), "CDN1003 /origins/app/servers/0/weight"],
    ["duration nginx cannot parse", (p) => (p.origins.app.readTimeout = "5 minutes"), "CDN1004 /origins/app/readTimeout"],
    ["size nginx cannot parse", (p) => (p.cache.disk = { size: "10 GB" }), "CDN1004 /cache/disk/size"],
    ["enum", (p) => (p.origins.app.scheme = "ftp"), "CDN1005 /origins/app/scheme"],
    ["port out of range", (p) => (p.listen = { http: 70000 }), "CDN1006 /listen/http"],
    ["no origin", (p) => (p.origins = {}), "CDN2001 /origins"],
    ["unknown origin referenced", (p) => (p.defaultOrigin = "api"), "CDN2002 /defaultOrigin"],
    ["several origins, no default", (p) => (p.origins.img = { servers: [{ address: "127.0.0.1:3001" }] }), "CDN2003 /defaultOrigin"],
    ["only backup servers", (p) => (p.origins.app.servers[0].backup = true), "CDN2004 /origins/app/servers"],
    ["duplicate server", (p) => p.origins.app.servers.push({ address: "127.0.0.1:3000" }), "CDN2005 /origins/app/servers/1/address"],
    ["timeout too large", (p) => (p.origins.app.connectTimeout = "999999999d"), "CDN2006 /origins/app/connectTimeout"],
    ["zero duration", (p) => (p.cache.staleIfError = "0s"), "CDN2006 /cache/staleIfError"],
    ["keys zone too small", (p) => (p.cache.disk = { keysZone: "1k" }), "CDN2007 /cache/disk/keysZone"],
    ["empty bypass cookie list", (p) => (p.cache.bypass = { cookies: [] }), "CDN2008 /cache/bypass/cookies"],
    ["bad TTL status", (p) => (p.cache.ttl = { "2xx": "1h" }), "CDN2009 /cache/ttl/2xx"],
    ["duplicate header names", (p) => (p.cache.bypass = { headers: ["X-A", "x-a"] }), "CDN2010 /cache/bypass/headers/1"],
    ["health on the purge path", (p) => (p.health = { path: "/__purge" }), "CDN2011 /health/path"],
    ["bad CIDR", (p) => (p.purge = { allow: ["10.0.0.0/33"] }), "CDN2012 /purge/allow/0"],
    ["newline in a header value", (p) => (p.headers = { response: { set: { "X-A": "a\r\nSet-Cookie: x=1" } } }), "CDN2013 /headers/response/set/X-A"],
    ["bad query parameter name", (p) => (p.cache.key = { query: { allow: ["a=b"] } }), "CDN2014 /cache/key/query/allow/0"],
    ["bad origin name", (p) => (p.origins = { "my app": { servers: [{ address: "127.0.0.1:1" }] } }), "CDN2020 /origins/my app"],
    ["header set and removed", (p) => (p.headers = { response: { set: { "X-A": "1" }, remove: ["x-a"] } }), "CDN2032 /headers/response/remove/0"],
    ["protected header", (p) => (p.headers = { response: { remove: ["Content-Length"] } }), "CDN2031 /headers/response/remove/0"],
    ["cache path leaving the bundle", (p) => (p.cache.disk = { path: "../cache" }), "CDN2025 /cache/disk/path"],
    ["log path leaving the bundle", (p) => (p.accessLog = { path: "logs/../../access.log" }), "CDN2026 /accessLog/path"],
    ["not an object", (p) => Object.keys(p).forEach((k) => delete p[k]), "CDN1001 /name"],
  ];
  for (const [what, mutate, expected] of cases) {
    it(`reports ${what} as ${expected}`, () => {
      const p = structuredClone(base()) as any;
      mutate(p);
      expect(errors(p)).toContain(expected);
    });
  }

  it("reports every semantic problem at once", () => {
    const p = structuredClone(base()) as any;
    p.defaultOrigin = "nope";
    p.cache.bypass = { cookies: [] };
    p.cache.ttl = { abc: "1h" };
    p.purge = { allow: ["300.1.1.1"] };
    const c = errors(p).map((s) => s.split(" ")[0]);
    expect(c).toEqual(expect.arrayContaining(["CDN2002", "CDN2008", "CDN2009", "CDN2012"]));
  });

  it("gives every diagnostic a message and a hint", () => {
    const p = structuredClone(base()) as any;
    p.origins.app.readTimeout = "soon";
    p.cache.bypass = { cookies: [] };
    const r = compile(p);
    for (const d of r.diagnostics) {
      expect(d.message.length).toBeGreaterThan(5);
      expect(d.hint).toBeTruthy();
    }
  });

  it("rejects non-objects without crashing", () => {
    for (const v of [null, 42, "x", [], undefined]) expect(compile(v).bundle).toBeUndefined();
  });

  it("accepts the base policy", () => {
    const r = compile(base());
    expect(r.diagnostics).toEqual([]);
    expect(r.bundle?.files.has("nginx.conf")).toBe(true);
  });
});
