import { createHmac, createSign, generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { toLua } from "../../src/emit/lua-data.js";
import { luajit } from "../support/luajit.js";

/**
 * Unit tests of lua-src/core/json.ts and lua-src/core/crypto.ts in a bare LuaJIT (the compiled lua-dist/),
 * against Node's JSON.parse and node:crypto. One LuaJIT process per test; cases go in as Lua data.
 */
/** Output lines of a script run in LuaJIT. */
const luajitLines = async (script: string) => (await luajit(script)).split("\n");

// A canonical text form of decoded JSON (sorted keys), the same in Lua and in TypeScript.
const LUA_CANON = `
local json = require("core.json")
local function q(s)
  return '"' .. s:gsub('[%z\\1-\\31"\\\\\\127-\\255]', function(c) return string.format("\\\\x%02x", c:byte()) end) .. '"'
end
local function canon(v)
  if v == nil then return "<invalid>" end
  if v == json.jsonNull then return "null" end
  local t = type(v)
  if t == "string" then return q(v) end
  if t == "number" then return string.format("%.17g", v) end
  if t == "boolean" then return tostring(v) end
  if json.isJsonArray(v) then
    local parts = {}
    for i = 1, #v do parts[i] = canon(v[i]) end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for i, k in ipairs(keys) do parts[i] = q(k) .. ":" .. canon(v[k]) end
  return "{" .. table.concat(parts, ",") .. "}"
end
`;

function luaQuoted(s: string): string {
  // the Lua side's q(): bytes outside printable ASCII, " and \\ as \\xHH
  let out = '"';
  for (const b of Buffer.from(s, "utf8")) out += b < 0x20 || b >= 0x7f || b === 0x22 || b === 0x5c ? "\\x" + b.toString(16).padStart(2, "0") : String.fromCharCode(b);
  return out + '"';
}

function canon(v: unknown): string {
  if (v === null) return "null";
  if (typeof v === "string") return luaQuoted(v);
  if (typeof v === "number") return fmt17g(v);
  if (typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return "[" + v.map(canon).join(",") + "]";
  const o = v as Record<string, unknown>;
  return "{" + Object.keys(o).sort().map((k) => luaQuoted(k) + ":" + canon(o[k])).join(",") + "}";
}

function fmt17g(n: number): string {
  if (Number.isInteger(n) && Math.abs(n) < 1e17) return String(n);
  let s = n.toPrecision(17);
  if (s.includes("e")) {
    const [m, e] = s.split("e");
    const mm = m!.includes(".") ? m!.replace(/0+$/, "").replace(/\.$/, "") : m!;
    const ee = Number(e);
    s = `${mm}e${ee < 0 ? "-" : "+"}${String(Math.abs(ee)).padStart(2, "0")}`;
  } else if (s.includes(".")) s = s.replace(/0+$/, "").replace(/\.$/, "");
  return s;
}

describe("lua-src/core/json.ts in LuaJIT", () => {
  const valid = [
    "{}",
    "[]",
    ' { "a" : [ 1 , 2 ] } ',
    '{"sub":"user-1","exp":1764395651,"aud":["a","b"],"admin":true,"x":null,"n":-0.5e-3}',
    '"esc \\" \\\\ \\/ \\b \\f \\n \\r \\t"',
    '"\\u00e9\\u4e2d\\ud83d\\ude00 raw é"',
    "[[[[1]]]]",
    "0",
    "-12.5E+2",
    '{"a":{"b":{"c":[true,false,null]}}}',
    '"\x7f"',
  ];
  const invalid = [
    "",
    " ",
    "{",
    '{"a":1,}',
    "[1,]",
    "[,1]",
    '{"a" 1}',
    '{a:1}',
    "{'a':1}",
    '{"a":1}{}',
    '{"a":1,"a":2}',
    "01",
    "1.",
    ".5",
    "-",
    "1e",
    "+1",
    "NaN",
    "Infinity",
    "tru",
    "nul",
    '"abc',
    '"a\tb"',
    '"a\nb"',
    '"\\x41"',
    '"\\u12"',
    '"\\ud800"',
    '"\\udc00"',
    '"\\ud800\\u0041"',
    "[1] x",
    "\u00a0[]",
  ];

  it("decodes valid JSON like JSON.parse does", async () => {
    const lines = await luajitLines(`${LUA_CANON}\nfor _, s in ipairs(${toLua(valid)}) do print(canon(json.decodeJson(s))) end`);
    valid.forEach((s, i) => expect(lines[i], s).toBe(canon(JSON.parse(s))));
  });

  it("refuses malformed JSON, duplicate keys and lone surrogates", async () => {
    const lines = await luajitLines(`${LUA_CANON}\nfor _, s in ipairs(${toLua(invalid)}) do print(canon(json.decodeJson(s))) end`);
    invalid.forEach((s, i) => expect(lines[i], JSON.stringify(s)).toBe("<invalid>"));
  });

  it("bounds nesting depth and input size", async () => {
    const deep = (n: number) => "[".repeat(n) + "]".repeat(n);
    const lines = await luajitLines(
      `${LUA_CANON}
print(canon(json.decodeJson(${toLua(deep(16))})))
print(canon(json.decodeJson(${toLua(deep(17))})))
print(canon(json.decodeJson(${toLua(deep(100000))})))
print(canon(json.decodeJson(${toLua('"' + "x".repeat(20000) + '"')})))
print(canon(json.decodeJson(${toLua('"' + "x".repeat(20000) + '"')}, 16, 30000)) == ${toLua(luaQuoted("x".repeat(20000)))})
print(canon(json.decodeJson("[1]")))`,
    );
    expect(lines.slice(0, 6)).toEqual([canon(JSON.parse(deep(16))), "<invalid>", "<invalid>", "<invalid>", "true", "[1]"]);
  });
});

describe("lua-src/core/crypto.ts in LuaJIT (libcrypto over FFI)", () => {
  it("computes HMAC-SHA256/384/512 like node:crypto", async () => {
    const cases: [string, string, string][] = [
      ["sha256", "key", "The quick brown fox jumps over the lazy dog"],
      ["sha384", "k".repeat(200), ""],
      ["sha512", "\u0000bin\u00ffary", "a.b\nc"],
    ];
    const lines = await luajitLines(
      `local c = require("core.crypto")
for _, t in ipairs(${toLua(cases)}) do
  print((c.hmac(t[1], t[2], t[3]):gsub(".", function(ch) return string.format("%02x", ch:byte()) end)))
end`,
    );
    cases.forEach(([md, key, msg], i) => expect(lines[i]).toBe(createHmac(md, Buffer.from(key, "utf8")).update(msg, "utf8").digest("hex")));
  });

  it("compares in constant time, length first", async () => {
    const lines = await luajitLines(`local c = require("core.crypto")
print(c.constantTimeEquals("abc", "abc"), c.constantTimeEquals("abc", "abd"), c.constantTimeEquals("abc", "ab"), c.constantTimeEquals("", ""), c.constantTimeEquals("a\\0b", "a\\0c"))`);
    expect(lines[0]).toBe("true\tfalse\tfalse\ttrue\tfalse");
  });

  it("parses RSA public keys, refuses other key types and garbage, and verifies RS256/384/512", async () => {
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const pem = rsa.publicKey.export({ type: "spki", format: "pem" }).toString();
    const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "pem" }).toString();
    const msg = "header.payload";
    const sig = (md: string) => createSign(md).update(msg).sign(rsa.privateKey).toString("latin1");
    const lines = await luajitLines(
      `local c = require("core.crypto")
local key, err = c.parseRsaPublicKey(${toLua(pem)})
print(key ~= nil, key and key.bits)
print(select(2, c.parseRsaPublicKey(${toLua(ec)})))
print(select(2, c.parseRsaPublicKey("not a pem")))
local function bytes(s) return (s:gsub("\\\\x(%x%x)", function(h) return string.char(tonumber(h, 16)) end)) end
print(c.rsaVerify(key, "sha256", ${toLua(msg)}, bytes(${toLua(hexEsc(sig("RSA-SHA256")))})))
print(c.rsaVerify(key, "sha384", ${toLua(msg)}, bytes(${toLua(hexEsc(sig("RSA-SHA384")))})))
print(c.rsaVerify(key, "sha512", ${toLua(msg)}, bytes(${toLua(hexEsc(sig("RSA-SHA512")))})))
print(c.rsaVerify(key, "sha256", ${toLua(msg + "x")}, bytes(${toLua(hexEsc(sig("RSA-SHA256")))})))
print(c.rsaVerify(key, "sha256", ${toLua(msg)}, "short"))
print(c.rsaVerify(key, "sha512", ${toLua(msg)}, bytes(${toLua(hexEsc(sig("RSA-SHA256")))})))`,
    );
    expect(lines.slice(0, 9)).toEqual(["true\t2048", "not an RSA key", "not a PEM public key (-----BEGIN PUBLIC KEY-----)", "true", "true", "true", "false", "false", "false"]);
  });
});

function hexEsc(latin1: string): string {
  return [...Buffer.from(latin1, "latin1")].map((b) => "\\x" + b.toString(16).padStart(2, "0")).join("");
}
