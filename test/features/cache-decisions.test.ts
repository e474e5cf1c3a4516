/**
 * The cache's pure RFC 9111 arithmetic (lua-src/core/cache-rfc.ts), run in plain LuaJIT: the purge marker
 * decision the purge feature relies on (no endpoint is needed to test it), Cache-Control parsing,
 * freshness lifetime, initial age, stale windows and ETag comparison.
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
  it("decides purge markers: hard, soft, purge-all, and markers older than the object", async () => {
    const out = await lua(`
      emit(R.purgeDecision(100, nil, nil, nil, nil))            -- no markers
      emit(R.purgeDecision(100, 150, 1, nil, nil))              -- hard purge after store
      emit(R.purgeDecision(100, 50, 1, nil, nil))               -- purge before the object was stored
      emit(R.purgeDecision(100, 100, 1, nil, nil))              -- same instant counts (t >= stored-at)
      emit(R.purgeDecision(100, 150, 2, nil, nil))   -- soft: stale as of 150
      emit(R.purgeDecision(100, nil, nil, 120, 2))   -- soft purge-all
      emit(R.purgeDecision(100, 150, 2, 120, 2))     -- two soft markers: the earlier wins
      emit(R.purgeDecision(100, 150, 2, 130, 1))                -- hard purge-all beats a soft key marker
      emit(R.purgeDecision(100, 90, 1, 130, 2))      -- old hard marker, new soft purge-all
    `);
    expect(out.split("\n")).toEqual(["0 0", "1 0", "0 0", "1 0", "2 150", "2 120", "2 120", "1 0", "2 130"]);
  });

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
      emit(R.initialAge("9", 1000, 1000.5, 1000.2))   -- Age 9 + 0.3 s delay
      emit(R.initialAge(nil, 990, 1000.7, 1000.7))    -- apparent age from Date, whole seconds
      emit(R.initialAge("-5", nil, 10, 10))
    `);
    expect(out.split("\n").map(Number)).toEqual([9.3, 10, 0]);
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

  it("accepts the defaults and emits the dicts and the body filter", () => {
    const r = compile(ramPolicy({}));
    expect(r.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
    const conf = r.bundle!.files.get("nginx.conf")!;
    expect(conf).toContain("lua_shared_dict cdn_ram 64m;");
    expect(conf).toContain("body_filter_by_lua_file lua/body.lua;");
    expect(compile({ ...ramPolicy({}), cache: {} }).bundle!.files.get("nginx.conf")).not.toContain("body_filter_by_lua_file");
  });

  it("refuses a dict under 1m and objects over a quarter of it", () => {
    expect(errors(ramPolicy({ size: "512k" }))).toEqual(["CDN4002 /cache/ram/size"]);
    expect(errors(ramPolicy({ size: "4m", maxObjectSize: "2m" }))).toEqual(["CDN4003 /cache/ram/maxObjectSize"]);
    expect(errors(ramPolicy({ maxObjectSize: "0" }))).toEqual(["CDN4003 /cache/ram/maxObjectSize"]);
    expect(errors(ramPolicy({ minHits: 0 })).map((e) => e.split(" ")[1])).toEqual(["/cache/ram/minHits"]);
  });
});
