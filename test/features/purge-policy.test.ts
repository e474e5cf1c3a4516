/** Purge policy: checks (CDN4050-4052), schema refusals and what the lowering hands nginx and Lua. */
import { describe, expect, it } from "vitest";
import { compile } from "../../src/compile.js";
import type { Policy } from "../../src/policy/types.js";
import { diagnostics, policy } from "../support/policy.js";

const base = (purge?: Policy["purge"], cache: Policy["cache"] = { ttl: { "200": "1h" }, disk: { inactive: "2d" } }) =>
  policy("127.0.0.1:3000", { name: "p", cache, ...(purge ? { purge } : {}) });
const diags = (p: unknown) => diagnostics(p, "severity code path");

describe("purge policy", () => {
  it("warns when the endpoint is configured without credentials (every purge refused)", () => {
    expect(diags(base({ allow: ["10.0.0.0/8"] }))).toEqual(["warning CDN4050 /purge"]);
    expect(diags(base({ token: { env: "T" } }))).toEqual([]);
    expect(diags(base())).toEqual([]);
  });

  it("refuses one variable for both the token and the HMAC secret", () => {
    expect(diags(base({ token: { env: "S" }, hmac: { secret: { env: "S" } } }))).toEqual(["error CDN4051 /purge/hmac/secret"]);
  });

  it("warns when index entries expire before the objects", () => {
    expect(diags(base({ token: { env: "T" }, indexTtl: "1h" }))).toEqual(["warning CDN4052 /purge/indexTtl"]);
    expect(diags(base({ token: { env: "T" }, indexTtl: "3d" }))).toEqual([]);
  });

  it("checks sizes, durations and names", () => {
    expect(diags(base({ token: { env: "T" }, indexSize: "100k" }))).toEqual(["error CDN2007 /purge/indexSize"]);
    expect(diags(base({ token: { env: "T" }, hmac: { secret: { env: "H" }, maxSkew: "1.5s" } }))).toContain("error CDN1004 /purge/hmac/maxSkew");
    expect(diags(base({ token: { env: "T" }, channel: "a b" }))).toContain("error CDN1004 /purge/channel");
    expect(diags(base({ token: { env: "1BAD" } }))).toContain("error CDN1004 /purge/token/env");
    expect(diags(base({ token: { env: "T" }, maxKeysPerTag: 0 }))).toContain("error CDN1006 /purge/maxKeysPerTag");
  });

  it("lowers to the index dict, the env directives and the Lua data", () => {
    // host: false needs an edge that serves exactly one host (CDN2060)
    const { bundle } = compile({
      ...base({ token: { env: "PURGE_T" }, hmac: { secret: { env: "PURGE_H" }, maxSkew: "2m" }, indexSize: "64m", maxKeysPerTag: 50, channel: "fleet:x" }, { disk: { path: "/var/cache/edge", inactive: "1d" }, key: { query: { allow: ["b", "a"] }, host: false } }),
      serverNames: ["shop.example.com"],
    });
    const conf = bundle!.files.get("nginx.conf")!;
    expect(conf).toContain("lua_shared_dict cdn_purge 64m;");
    expect(conf).toContain("env PURGE_H;");
    expect(conf).toContain("env PURGE_T;");
    expect(conf).toMatch(/location = "\/__purge" \{[\s\S]*?client_max_body_size 64k;[^}]*content_by_lua_file lua\/purge\.lua;/);
    const data = bundle!.files.get("lua/policy_data.lua")!;
    for (const s of ['["cachePath"] = "/var/cache/edge"', '["channel"] = "fleet:x"', '["maxSkew"] = 120', '["maxKeysPerTag"] = 50', '["host"] = false', '["query"] = "allow"', '["indexTtl"] = 86400', '["tokenEnv"] = "PURGE_T"', '["hmacEnv"] = "PURGE_H"']) {
      expect(data).toContain(s);
    }
    // the secrets themselves never enter the bundle
    expect([...bundle!.files.values()].join("\n")).not.toMatch(/PURGE_T=|secret-value/);
  });

  it("has no index dict without a cache", () => {
    const { bundle } = compile({ name: "p", origins: { app: { servers: [{ address: "127.0.0.1:3000" }] } } });
    expect(bundle!.files.get("nginx.conf")!).not.toContain("cdn_purge");
  });
});
