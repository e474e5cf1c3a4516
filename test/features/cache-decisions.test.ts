/**
 * The cache's pure RFC 9111 arithmetic (lua-src/core/cache-rfc.ts), run in plain LuaJIT: Cache-Control
 * parsing (response and request directives), CDN-Cache-Control validity, HTTP dates, Age, freshness
 * lifetimes (explicit and heuristic), initial age, stale windows and ETag comparison.
 */
import { describe, expect, it } from "vitest";
import { compile } from "../../src/compile.js";
import { luajit } from "../support/luajit.js";
import { errors, policy } from "../support/policy.js";

/** Runs `body` with the module as `R`; `emit(...)` adds a line of output. */
function lua(body: string): Promise<string> {
  return luajit(`local R = require("core.cache-rfc")
local out = {}
local function emit(...) local t = {} for i = 1, select("#", ...) do t[#t + 1] = tostring((select(i, ...))) end out[#out + 1] = table.concat(t, " ") end
${body}
io.write(table.concat(out, "\\n"))`);
}

describe("cache decisions (LuaJIT)", () => {
  it("parses Cache-Control and computes lifetimes (s-maxage over max-age, Expires minus Date, heuristic)", async () => {
    const out = await lua(`
      R.parseCacheControl('max-age=60, s-maxage=600, stale-while-revalidate="30", Public')
      emit(R.cc.maxAge, R.cc.sMaxAge, R.cc.swr, R.cc.public, R.freshnessLifetime(nil, false, nil, 0, 5))
      R.parseCacheControl('max-age=60')
      emit(R.freshnessLifetime(nil, false, nil, 0, 5))
      R.parseCacheControl(nil)
      emit(R.freshnessLifetime(1100, true, 1000, 5000, 5), R.freshnessLifetime(nil, true, 1000, 5000, 5), R.freshnessLifetime(nil, false, nil, 0, 7), R.freshnessLifetime(nil, false, nil, 0, -1))
      R.parseCacheControl('max-age=abc, no-store, private="set-cookie"')
      emit(R.cc.maxAge, R.cc.noStore, R.cc.private)
    `);
    expect(out.split("\n")).toEqual(["60 600 30 true 600", "60", "100 0 7 -1", "0 true true"]);
  });

  it("computes the corrected initial age from Age, Date and the response delay", async () => {
    const out = await lua(`
      emit(R.initialAge(9, 1000, 1000.5, 1000.2))      -- Age 9 + 0.3 s delay
      emit(R.initialAge(nil, 990, 1000.7, 1000.7))     -- apparent age from Date, whole seconds
      emit(R.initialAge(R.ageValue("-5"), nil, 10, 10)) -- an invalid Age is ignored
    `);
    expect(out.split("\n").map(Number)).toEqual([9.3, 10, 0]);
  });

  it("parses Cache-Control strictly (RFC 9111 5.2, 4.2.1): conflicting values, whitespace around '=', quoted arguments", async () => {
    const out = await lua(`
      local function p(v) R.parseCacheControl(v) emit(R.cc.maxAge, R.cc.sMaxAge, R.cc.noStore, R.cc.noCache) end
      p('max-age=60, max-age=10')          -- conflicting: the most restrictive
      p('max-age=60')
      p('max-age =3600')                   -- not a directive: ignored
      p('max-age= 3600')
      p('max-age="3600"')                  -- quoted argument accepted
      p('max-age=3600.0')                  -- invalid delta-seconds: stale
      p('max-age=99999999999999')          -- larger than 2^31: 2^31
      p(',, no-store ,, ')                 -- empty list elements
      p('no-cache="Set-Cookie", s-maxage=5')
      p('max-age=5 junk')                  -- trailing garbage: the directive is dropped
      R.parseCacheControl('must-understand, no-store')
      emit(R.cc.mustUnderstand, R.cc.noStore)
    `);
    expect(out.split("\n")).toEqual([
      "10 -1 false false",
      "60 -1 false false",
      "-1 -1 false false",
      "-1 -1 false false",
      "3600 -1 false false",
      "0 -1 false false",
      "2147483648 -1 false false",
      "-1 -1 true false",
      "-1 5 false true",
      "-1 -1 false false",
      "true true",
    ]);
  });

  it("parses request directives (RFC 9111 5.2.1) and Pragma: no-cache only without Cache-Control (5.4)", async () => {
    const out = await lua(`
      local function q(cc, pragma) local any = R.parseRequestCacheControl(cc, pragma) local r = R.rcc emit(any, r.maxAge, r.maxStale, r.minFresh, r.noCache, r.noStore, r.onlyIfCached) end
      q('max-age=5, min-fresh=2', nil)
      q('max-stale', nil)
      q('max-stale=30, only-if-cached, no-store', nil)
      q(nil, 'no-cache')
      q('max-age=10', 'no-cache')
      q(nil, nil)
    `);
    expect(out.split("\n")).toEqual([
      "true 5 -1 2 false false false",
      "true -1 2147483648 -1 false false false",
      "true -1 30 -1 false true true",
      "true -1 -1 -1 true false false",
      "true 10 -1 -1 false false false",
      "false -1 -1 -1 false false false",
    ]);
  });

  it("tells a valid CDN-Cache-Control (a Structured Field Dictionary, RFC 9213 / 8941) from an invalid one", async () => {
    const out = await lua(`
      for _, v in ipairs({ 'max-age=60', 'max-age=60, no-store', 's-maxage=10;a=1, private', 'max-age=60,', 'Max-Age=60', 'max-age=6x0', 'garbage!', 'max-age="60"', 'no-store, ,max-age=1' }) do
        emit(R.validTargetedField(v))
      end
    `);
    expect(out.split("\n")).toEqual(["true", "true", "true", "false", "false", "false", "false", "true", "false"]);
  });

  it("parses HTTP dates strictly (GMT only; IMF-fixdate, RFC 850, asctime) and Age as a non-negative integer", async () => {
    const out = await lua(`
      emit(R.httpDate("Sun, 06 Nov 1994 08:49:37 GMT"), R.httpDate("Sunday, 06-Nov-94 08:49:37 GMT"), R.httpDate("Sun Nov  6 08:49:37 1994"))
      emit(R.httpDate("Sun, 06 Nov 1994 08:49:37 UTC"), R.httpDate("Sun, 06 Nov 1994 08:49:37 AEST"), R.httpDate("yesterday"), R.httpDate("0"))
      emit(R.ageValue("7200"), R.ageValue("7200.0"), R.ageValue("7200, 0"), R.ageValue("-1"), R.ageValue(""))
    `);
    expect(out.split("\n")).toEqual(["784111777 784111777 784111777", "nil nil nil nil", "7200 nil nil nil nil"]);
  });

  it("gives heuristic lifetimes (RFC 9111 4.2.2) only to heuristically cacheable statuses with a Last-Modified", async () => {
    const out = await lua(`
      emit(R.heuristicLifetime(200, 1000, 2000, 2000, 0.1, 86400))  -- 10% of 1000 s
      emit(R.heuristicLifetime(200, 0, 2000000, 2000000, 0.1, 86400)) -- capped
      emit(R.heuristicLifetime(302, 1000, 2000, 2000, 0.1, 86400))  -- not heuristically cacheable
      emit(R.heuristicLifetime(404, nil, 2000, 2000, 0.1, 86400))   -- no Last-Modified
    `);
    expect(out.split("\n")).toEqual(["100", "86400", "-1", "-1"]);
  });

  it("grants stale windows only when the origin does not forbid them", async () => {
    const out = await lua(`
      local function w(cc) R.parseCacheControl(cc) emit(R.staleWindows(60, 3600)) end
      w('max-age=10')                                        -- policy defaults
      w('max-age=10, stale-while-revalidate=5, stale-if-error=7')
      w('max-age=10, must-revalidate, stale-while-revalidate=5')
      w('max-age=10, proxy-revalidate')
      w('s-maxage=10')                                       -- s-maxage implies proxy-revalidate
      w('s-maxage=10, stale-while-revalidate=5')             -- an explicit stale directive still applies
      w('no-cache')
    `);
    expect(out.split("\n")).toEqual(["60 3600 0", "5 7 0", "0 0 1", "0 0 1", "0 0 1", "5 0 0", "0 0 3"]);
  });

  it("compares entity tags weakly", async () => {
    const out = await lua(`
      emit(R.etagMatches('"a", W/"b"', '"b"'), R.etagMatches('*', '"x"'), R.etagMatches('"a"', 'W/"a"'), R.etagMatches('"a"', '"b"'))
    `);
    expect(out).toBe("true true true false");
  });
});

describe("RAM tier settings", () => {
  const ramPolicy = (ram: unknown) => ({ ...policy("127.0.0.1:3000", { name: "r" }), cache: { ram } });

  it("accepts the defaults and emits the dicts (and no body filter)", () => {
    const r = compile(ramPolicy({}));
    expect(r.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
    const conf = r.bundle!.files.get("nginx.conf")!;
    expect(conf).toContain("lua_shared_dict cdn_ram 64m;");
    expect(conf).not.toContain("body_filter_by_lua"); // bodies come from the cache file, no body filter
    expect(compile({ ...ramPolicy({}), cache: {} }).bundle!.files.get("nginx.conf")).not.toContain("body_filter_by_lua");
  });

  it("refuses a dict under 1m and objects over a quarter of it", () => {
    expect(errors(ramPolicy({ size: "512k" }))).toEqual(["CDN4002 /cache/ram/size"]);
    expect(errors(ramPolicy({ size: "4m", maxObjectSize: "2m" }))).toEqual(["CDN4003 /cache/ram/maxObjectSize"]);
    expect(errors(ramPolicy({ maxObjectSize: "0" }))).toEqual(["CDN4003 /cache/ram/maxObjectSize"]);
    expect(errors(ramPolicy({ minHits: 0 })).map((e) => e.split(" ")[1])).toEqual(["/cache/ram/minHits"]);
  });
});
