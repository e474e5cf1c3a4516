/**
 * A small strict JSON codec (RFC 8259) for token payloads, the purge API and fleet messages: no cjson exists
 * on the target. Decoding: Objects become
 * Lua tables keyed by string, arrays become sequences marked with a metatable (`isJsonArray`), `null`
 * becomes the `jsonNull` sentinel. Malformed input, duplicate object keys, lone surrogates, nesting deeper
 * than `maxDepth` or input longer than `maxSize` give undefined. Strings are not checked for valid UTF-8.
 */

/** Stands for JSON `null` (Lua tables cannot hold nil). */
export const jsonNull: object = setmetatable({}, { __tostring: () => "null" });
const arrayMeta = {};

export function isJsonArray(v: unknown): v is unknown[] {
  return type(v) === "table" && getmetatable(v as object) === arrayMeta;
}

export function isJsonObject(v: unknown): v is LuaTable<string, unknown> {
  return type(v) === "table" && v !== jsonNull && getmetatable(v as object) === undefined;
}

let src = "";
let pos = 1;
let depth = 0;
let limit = 0;
let failed = false;

const ESCAPES = new LuaTable<number, string>();
ESCAPES.set(0x22, '"');
ESCAPES.set(0x5c, "\\");
ESCAPES.set(0x2f, "/");
ESCAPES.set(0x62, "\b");
ESCAPES.set(0x66, "\f");
ESCAPES.set(0x6e, "\n");
ESCAPES.set(0x72, "\r");
ESCAPES.set(0x74, "\t");

function fail(): undefined {
  failed = true;
  return undefined;
}

function skipWs(): void {
  const [, e] = string.find(src, "^[ \t\n\r]*", pos);
  pos = e! + 1;
}

function utf8(cp: number): string {
  if (cp < 0x80) return string.char(cp);
  if (cp < 0x800) return string.char(0xc0 + math.floor(cp / 0x40), 0x80 + (cp % 0x40));
  if (cp < 0x10000) return string.char(0xe0 + math.floor(cp / 0x1000), 0x80 + (math.floor(cp / 0x40) % 0x40), 0x80 + (cp % 0x40));
  return string.char(0xf0 + math.floor(cp / 0x40000), 0x80 + (math.floor(cp / 0x1000) % 0x40), 0x80 + (math.floor(cp / 0x40) % 0x40), 0x80 + (cp % 0x40));
}

function hex4(at: number): number | undefined {
  const h = string.sub(src, at, at + 3);
  if (string.find(h, "^%x%x%x%x$")[0] === undefined) return undefined;
  return tonumber(h, 16);
}

/** A string starting at `pos` (which is on the opening quote). */
function parseString(): string | undefined {
  pos = pos + 1;
  let out: string[] | undefined;
  for (;;) {
    const [s] = string.find(src, '[%z\x01-\x1f"\\]', pos);
    if (s === undefined) return fail();
    const c = string.byte(src, s);
    if (c === 0x22) {
      const piece = string.sub(src, pos, s - 1);
      pos = s + 1;
      if (out === undefined) return piece;
      out.push(piece);
      return table.concat(out);
    }
    if (c !== 0x5c) return fail(); // raw control character
    out ??= [];
    out.push(string.sub(src, pos, s - 1));
    const e = string.byte(src, s + 1);
    if (e === undefined) return fail();
    const simple = ESCAPES.get(e);
    if (simple !== undefined) {
      out.push(simple);
      pos = s + 2;
    } else if (e === 0x75) {
      let cp = hex4(s + 2);
      if (cp === undefined) return fail();
      pos = s + 6;
      if (cp >= 0xd800 && cp <= 0xdbff) {
        if (string.sub(src, pos, pos + 1) !== "\\u") return fail();
        const lo = hex4(pos + 2);
        if (lo === undefined || lo < 0xdc00 || lo > 0xdfff) return fail();
        cp = 0x10000 + (cp - 0xd800) * 0x400 + (lo - 0xdc00);
        pos = pos + 6;
      } else if (cp >= 0xdc00 && cp <= 0xdfff) return fail();
      out.push(utf8(cp));
    } else return fail();
  }
}

function parseNumber(): number | undefined {
  const start = pos;
  let [, e] = string.find(src, "^-?", pos);
  let p = e! + 1;
  if (string.byte(src, p) === 0x30) p = p + 1;
  else {
    [, e] = string.find(src, "^[1-9]%d*", p);
    if (e === undefined) return fail();
    p = e + 1;
  }
  if (string.byte(src, p) === 0x2e) {
    [, e] = string.find(src, "^%d+", p + 1);
    if (e === undefined) return fail();
    p = e + 1;
  }
  const x = string.byte(src, p);
  if (x === 0x65 || x === 0x45) {
    [, e] = string.find(src, "^[-+]?%d+", p + 1);
    if (e === undefined) return fail();
    p = e + 1;
  }
  pos = p;
  return tonumber(string.sub(src, start, p - 1));
}

function parseValue(): unknown {
  skipWs();
  const c = string.byte(src, pos);
  if (c === 0x7b) return parseObject();
  if (c === 0x5b) return parseArray();
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
    return jsonNull;
  }
  return fail();
}

function parseObject(): unknown {
  depth = depth + 1;
  if (depth > limit) return fail();
  pos = pos + 1;
  const obj = new LuaTable<string, unknown>();
  skipWs();
  if (string.byte(src, pos) === 0x7d) {
    pos = pos + 1;
    depth = depth - 1;
    return obj;
  }
  for (;;) {
    skipWs();
    if (string.byte(src, pos) !== 0x22) return fail();
    const key = parseString();
    if (key === undefined) return undefined;
    if (obj.get(key) !== undefined) return fail(); // duplicate key
    skipWs();
    if (string.byte(src, pos) !== 0x3a) return fail();
    pos = pos + 1;
    const v = parseValue();
    if (failed) return undefined;
    obj.set(key, v);
    skipWs();
    const c = string.byte(src, pos);
    pos = pos + 1;
    if (c === 0x7d) break;
    if (c !== 0x2c) return fail();
  }
  depth = depth - 1;
  return obj;
}

function parseArray(): unknown {
  depth = depth + 1;
  if (depth > limit) return fail();
  pos = pos + 1;
  const arr = setmetatable(new LuaTable<number, unknown>(), arrayMeta);
  skipWs();
  if (string.byte(src, pos) === 0x5d) {
    pos = pos + 1;
    depth = depth - 1;
    return arr;
  }
  let n = 0;
  for (;;) {
    const v = parseValue();
    if (failed) return undefined;
    n = n + 1;
    arr.set(n, v);
    skipWs();
    const c = string.byte(src, pos);
    pos = pos + 1;
    if (c === 0x5d) break;
    if (c !== 0x2c) return fail();
  }
  depth = depth - 1;
  return arr;
}

/** Decodes one JSON text; undefined when it is not valid JSON within the bounds. */
export function decodeJson(text: string, maxDepth = 16, maxSize = 16384): unknown {
  if (text.length > maxSize) return undefined;
  src = text;
  pos = 1;
  depth = 0;
  limit = maxDepth;
  failed = false;
  const v = parseValue();
  if (failed) {
    src = "";
    return undefined;
  }
  skipWs();
  const complete = pos === text.length + 1;
  src = "";
  return complete ? v : undefined;
}

const MAX_ENCODE_DEPTH = 16;

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

/** Marks a Lua sequence as a JSON array (needed for empty arrays to encode as `[]`). */
export function jsonArray<T>(list: T[]): T[] {
  return setmetatable(list, arrayMeta as LuaMetatable<T[]>);
}

function encodeInto(v: unknown, out: string[], level: number): void {
  if (level > MAX_ENCODE_DEPTH) throw "encodeJson: nesting too deep";
  const t = type(v);
  if (t === "string") out.push(jsonString(v as string));
  else if (t === "number") {
    const n = v as number;
    if (n !== n || n === math.huge || n === -math.huge) out.push("null");
    else if (n === Math.floor(n) && Math.abs(n) < 2 ** 53) out.push(string.format("%d", n));
    else out.push(string.format("%.17g", n));
  } else if (t === "boolean") out.push(v ? "true" : "false");
  else if (v === undefined || v === jsonNull) out.push("null");
  else if (t === "table") {
    const tbl = v as LuaTable<string, unknown>;
    if (getmetatable(tbl) === arrayMeta || (tbl as unknown as unknown[]).length > 0) {
      const arr = v as unknown[];
      out.push("[");
      for (let i = 0; i < arr.length; i++) {
        if (i > 0) out.push(",");
        encodeInto(arr[i], out, level + 1);
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
        encodeInto(tbl.get(keys[i]), out, level + 1);
      }
      out.push("}");
    }
  } else {
    throw "encodeJson: cannot encode a " + t;
  }
}

/** Encodes a value as JSON (object keys sorted, so output is deterministic). */
export function encodeJson(v: unknown): string {
  const out: string[] = [];
  encodeInto(v, out, 0);
  return table.concat(out);
}
