/** The Lua JSON codec (lua-dist/core/json.lua) as the purge API uses it (64 KiB bodies, depth 8), run in LuaJIT. */
import { describe, expect, it } from "vitest";
import { luajit } from "../support/luajit.js";

/** Decodes each input in LuaJIT and re-encodes it: "ok <json>" or "err <message>" per input. */
async function roundTrip(inputs: string[]): Promise<string[]> {
  const script = `
local json = require("core.json")
for line in io.lines() do
  local input = line:gsub("\\\\n", "\\n")
  local v = json.decodeJson(input, 8, 65536)
  if v == nil then print("err") else print("ok " .. json.encodeJson(v)) end
end`;
  const out = await luajit(script, { input: inputs.map((s) => s.replace(/\n/g, "\\n")).join("\n") + "\n" });
  return out.split("\n");
}

describe("JSON codec (Lua), purge API bounds", () => {
  it("decodes and re-encodes valid JSON (objects with sorted keys)", async () => {
    const cases: [string, string][] = [
      ['{"urls":["http://h/a?x=1"],"soft":true}', '{"soft":true,"urls":["http://h/a?x=1"]}'],
      ['{"b":[],"a":{}}', '{"a":{},"b":[]}'],
      [" [1, -2.5, 1e3, 0, null, false] ", "[1,-2.5,1000,0,null,false]"],
      ['"tab\\there \\u00e9 \\ud83d\\ude00 \\/ \\""', '"tab\\there é 😀 / \\""'],
      ['{"deep":[[[[1]]]]}', '{"deep":[[[[1]]]]}'],
    ];
    const out = await roundTrip(cases.map(([i]) => i));
    cases.forEach(([, expected], i) => expect(out[i]).toBe("ok " + expected));
  });

  it("refuses what strict JSON refuses, and oversized inputs", async () => {
    const bad = [
      "",
      "{",
      '{"a":1,}',
      "[1,]",
      '{"a":1,"a":2}',
      "01",
      "1.",
      ".5",
      "+1",
      "NaN",
      "'x'",
      '{a:1}',
      '"\\x"',
      '"\\ud800"',
      '"\\udc00x"',
      '"a\tb"',
      "[1] [2]",
      "// c\n{}",
      "tru",
      "[".repeat(9) + "]".repeat(9),
      "[" + Array.from({ length: 40000 }, () => "0").join(",") + "]",
    ];
    const out = await roundTrip(bad);
    bad.forEach((b, i) => expect(out[i], JSON.stringify(b).slice(0, 60)).toBe("err"));
  });
});
