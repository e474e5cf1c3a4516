/**
 * A small, strict, bounded JSON codec for the purge API and the fleet messages (no cjson in Debian's Lua
 * libraries). Decoding follows RFC 8259 strictly (no trailing commas, no comments, no leading zeros, no
 * lone surrogates, no duplicate object keys, no control characters in strings) and refuses inputs that are
 * too deep or have too many values. Arrays decode to Lua sequences marked with `ARRAY_MT`, objects to
 * tables, `null` to `JSON_NULL`.
 */

/** The decoded `null`. */
export const JSON_NULL: object = {};
/** Metatable marking a table as a JSON array (so an empty one encodes as `[]`). */
export const ARRAY_MT: object = {};

const MAX_DEPTH = 16;
const MAX_VALUES = 20000;

let src = "";
let pos = 1;
let budget = 0;

class JsonError {
  constructor(public readonly msg: string) {}
}

function fail(msg: string): never {
  throw new JsonError(msg + " at byte " + tostring(pos));
}

function skipWs(): void {
  const [, e] = string.find(src, "^[ \t\r\n]*", pos);
  pos = (e as number) + 1;
}

function utf8(cp: number): string {
  if (cp < 0x80) return string.char(cp);
  if (cp < 0x800) return string.char(0xc0 + Math.floor(cp / 64), 0x80 + (cp % 64));
  if (cp < 0x10000) return string.char(0xe0 + Math.floor(cp / 4096), 0x80 + (Math.floor(cp / 64) % 64), 0x80 + (cp % 64));
  return string.char(0xf0 + Math.floor(cp / 262144), 0x80 + (Math.floor(cp / 4096) % 64), 0x80 + (Math.floor(cp / 64) % 64), 0x80 + (cp % 64));
}

function hex4(): number {
  const h = string.sub(src, pos, pos + 3);
  const [s] = string.find(h, "^%x%x%x%x$");
  if (s === undefined) fail("bad \\u escape");
  pos = pos + 4;
  return tonumber(h, 16) as number;
}

const SIMPLE_ESCAPES: LuaTable<number, string> = new LuaTable();
SIMPLE_ESCAPES.set(0x22, '"');
SIMPLE_ESCAPES.set(0x5c, "\\");
SIMPLE_ESCAPES.set(0x2f, "/");
SIMPLE_ESCAPES.set(0x62, "\b");
SIMPLE_ESCAPES.set(0x66, "\f");
SIMPLE_ESCAPES.set(0x6e, "\n");
SIMPLE_ESCAPES.set(0x72, "\r");
SIMPLE_ESCAPES.set(0x74, "\t");

function parseString(): string {
  // pos is on the opening quote
  pos = pos + 1;
  const parts: string[] = [];
  for (;;) {
    const [s] = string.find(src, '["\\%z\x01-\x1f]', pos);
    if (s === undefined) fail("unterminated string");
    if (s > pos) parts.push(string.sub(src, pos, s - 1));
    const c = string.byte(src, s);
    pos = s + 1;
    if (c === 0x22) break;
    if (c !== 0x5c) fail("control character in string");
    const e = string.byte(src, pos);
    const simple = e === undefined ? undefined : SIMPLE_ESCAPES.get(e);
    if (simple !== undefined) {
      parts.push(simple);
      pos = pos + 1;
    } else if (e === 0x75) {
      pos = pos + 1;
      let cp = hex4();
      if (cp >= 0xd800 && cp <= 0xdbff) {
        if (string.sub(src, pos, pos + 1) !== "\\u") fail("lone surrogate");
        pos = pos + 2;
        const lo = hex4();
        if (lo < 0xdc00 || lo > 0xdfff) fail("lone surrogate");
        cp = 0x10000 + (cp - 0xd800) * 1024 + (lo - 0xdc00);
      } else if (cp >= 0xdc00 && cp <= 0xdfff) {
        fail("lone surrogate");
      }
      parts.push(utf8(cp));
    } else {
      fail("bad escape");
    }
  }
  return table.concat(parts);
}

function parseNumber(): number {
  const start = pos;
  const [, e1] = string.find(src, "^-?%d+", pos);
  if (e1 === undefined) fail("bad number");
  const digits = string.sub(src, string.byte(src, start) === 0x2d ? start + 1 : start, e1);
  if (digits.length > 1 && string.byte(digits, 1) === 0x30) fail("leading zero");
  pos = e1 + 1;
  const [, e2] = string.find(src, "^%.%d+", pos);
  if (e2 !== undefined) pos = e2 + 1;
  const [, e3] = string.find(src, "^[eE][-+]?%d+", pos);
  if (e3 !== undefined) pos = e3 + 1;
  const n = tonumber(string.sub(src, start, pos - 1));
  if (n === undefined || n !== n || n === math.huge || n === -math.huge) fail("bad number");
  return n as number;
}

function parseValue(depth: number): unknown {
  budget = budget - 1;
  if (budget < 0) fail("too many values");
  skipWs();
  const c = string.byte(src, pos);
  if (c === 0x7b) {
    if (depth >= MAX_DEPTH) fail("nesting too deep");
    pos = pos + 1;
    const obj = new LuaTable<string, unknown>();
    skipWs();
    if (string.byte(src, pos) === 0x7d) {
      pos = pos + 1;
      return obj;
    }
    for (;;) {
      skipWs();
      if (string.byte(src, pos) !== 0x22) fail("expected a string key");
      const k = parseString();
      if (obj.get(k) !== undefined) fail("duplicate key");
      skipWs();
      if (string.byte(src, pos) !== 0x3a) fail("expected ':'");
      pos = pos + 1;
      obj.set(k, parseValue(depth + 1));
      skipWs();
      const d = string.byte(src, pos);
      pos = pos + 1;
      if (d === 0x7d) return obj;
      if (d !== 0x2c) fail("expected ',' or '}'");
    }
  }
  if (c === 0x5b) {
    if (depth >= MAX_DEPTH) fail("nesting too deep");
    pos = pos + 1;
    const arr: unknown[] = setmetatable([], ARRAY_MT as LuaMetatable<unknown[]>);
    skipWs();
    if (string.byte(src, pos) === 0x5d) {
      pos = pos + 1;
      return arr;
    }
    for (;;) {
      arr.push(parseValue(depth + 1));
      skipWs();
      const d = string.byte(src, pos);
      pos = pos + 1;
      if (d === 0x5d) return arr;
      if (d !== 0x2c) fail("expected ',' or ']'");
    }
  }
  if (c === 0x22) return parseString();
  if (c === 0x2d || (c !== undefined && c >= 0x30 && c <= 0x39)) return parseNumber();
  if (string.sub(src, pos, pos + 3) === "true") {
    pos = pos + 4;
    return true;
  }
  if (string.sub(src, pos, pos + 4) === "false") {
    pos = pos + 5;
    return false;
  }
  if (string.sub(src, pos, pos + 3) === "null") {
    pos = pos + 4;
    return JSON_NULL;
  }
  fail(c === undefined ? "unexpected end" : "unexpected character");
}

/** Decodes one JSON text; returns the value, or undefined and an error message. */
export function jsonDecode(text: string): LuaMultiReturn<[unknown, string | undefined]> {
  src = text;
  pos = 1;
  budget = MAX_VALUES;
  const [ok, res] = pcall((): unknown => {
    const v = parseValue(0);
    skipWs();
    if (pos <= src.length) fail("trailing characters");
    return v;
  });
  src = "";
  if (ok) return $multi(res, undefined);
  const e = res as unknown;
  if (type(e) === "table" && (e as object) instanceof JsonError) return $multi(undefined, (e as JsonError).msg);
  return $multi(undefined, tostring(res));
}

function escapeChar(c: string): string {
  const b = string.byte(c);
  if (b === 0x22) return '\\"';
  if (b === 0x5c) return "\\\\";
  if (b === 0x0a) return "\\n";
  if (b === 0x0d) return "\\r";
  if (b === 0x09) return "\\t";
  return string.format("\\u%04x", b);
}

/** A JSON string literal (bytes >= 0x80 pass through: callers hand UTF-8 or URL bytes). */
export function jsonString(s: string): string {
  const [out] = string.gsub(s, '[%z\x01-\x1f\x7f"\\]', escapeChar);
  return '"' + out + '"';
}

/** Marks a Lua sequence as a JSON array (needed for empty arrays). */
export function jsonArray<T>(list: T[]): T[] {
  return setmetatable(list, ARRAY_MT as LuaMetatable<T[]>);
}

function encodeInto(v: unknown, out: string[], depth: number): void {
  if (depth > MAX_DEPTH) throw "jsonEncode: nesting too deep";
  const t = type(v);
  if (t === "string") out.push(jsonString(v as string));
  else if (t === "number") {
    const n = v as number;
    if (n !== n || n === math.huge || n === -math.huge) out.push("null");
    else if (n === Math.floor(n) && Math.abs(n) < 2 ** 53) out.push(string.format("%d", n));
    else out.push(string.format("%.17g", n));
  } else if (t === "boolean") out.push(v ? "true" : "false");
  else if (v === undefined || v === JSON_NULL) out.push("null");
  else if (t === "table") {
    const tbl = v as LuaTable<string, unknown>;
    if (getmetatable(tbl) === ARRAY_MT || (tbl as unknown as unknown[]).length > 0) {
      const arr = v as unknown[];
      out.push("[");
      for (let i = 0; i < arr.length; i++) {
        if (i > 0) out.push(",");
        encodeInto(arr[i], out, depth + 1);
      }
      out.push("]");
    } else {
      const keys: string[] = [];
      for (const [k] of pairs(tbl)) keys.push(tostring(k));
      table.sort(keys);
      out.push("{");
      for (let i = 0; i < keys.length; i++) {
        if (i > 0) out.push(",");
        out.push(jsonString(keys[i]), ":");
        encodeInto(tbl.get(keys[i]), out, depth + 1);
      }
      out.push("}");
    }
  } else {
    throw "jsonEncode: cannot encode a " + t;
  }
}

/** Encodes a value (objects with sorted keys, so output is deterministic). */
export function jsonEncode(v: unknown): string {
  const out: string[] = [];
  encodeInto(v, out, 0);
  return table.concat(out);
}
