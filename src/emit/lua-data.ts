/**
 * Serialises plain data (the policy as the Lua runtime sees it) into a Lua chunk that returns it.
 * Deterministic: object keys are sorted. Strings are escaped byte by byte, so any value is safe.
 *
 * LuaJIT limits what one function may hold: 65,536 constants (each string, each table constructor, each
 * nested function counts), about 200 levels of nested syntax and 250 registers. A policy of a few thousand
 * rules is past the first limit when written as one `return { ... }`, so large or deep data is split: a table
 * that does not fit in the function being written is filled by functions of its own ("fillers", each holding
 * at most MAX_CONSTANTS constants and MAX_DEPTH levels of nesting), which the chunk calls while it builds the
 * value. Data that fits is written exactly as a single `return { ... }`.
 */

/** Constants one generated function may hold (LuaJIT: 65,536; counted generously, see `cost`). */
export const MAX_CONSTANTS = 20_000;
/** Levels of nested tables one generated function may hold (LuaJIT: about 200 levels of syntax). */
export const MAX_DEPTH = 32;

export function toLuaModule(value: unknown, header: string): string {
  const w = new ChunkWriter();
  const body = w.expr(value, "", { left: MAX_CONSTANTS }, 0);
  if (w.fillers.length === 0) return `${header}\nreturn ${body}\n`;
  return [
    header,
    "-- large data: tables filled by functions of their own, so that no function exceeds LuaJIT's limits",
    "local F = {}",
    "local function fill(t, first, last)",
    "  for i = first, last do F[i](t) end",
    "  return t",
    "end",
    ...w.fillers.map((f, i) => `F[${i + 1}] = ${f}`),
    `return ${body}`,
    "",
  ].join("\n");
}

export function toLua(value: unknown, indent = ""): string {
  const out: string[] = [];
  writeLua(value, indent, out);
  return out.join("");
}

function writeLua(value: unknown, indent: string, out: string[]): void {
  if (value === null || value === undefined) out.push("nil");
  else if (typeof value === "boolean") out.push(value ? "true" : "false");
  else if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Error(`lua-data: non-finite number ${value}`);
    out.push(String(value));
  } else if (typeof value === "string") out.push(luaString(value));
  else if (typeof value === "object") {
    const next = indent + "  ";
    let empty = true;
    if (Array.isArray(value)) {
      for (const v of value) {
        out.push(empty ? "{\n" : "\n", next);
        writeLua(v, next, out);
        out.push(",");
        empty = false;
      }
    } else {
      const o = value as Record<string, unknown>;
      for (const k of Object.keys(o).sort()) {
        if (o[k] === undefined) continue;
        out.push(empty ? "{\n" : "\n", next, "[", luaString(k), "] = ");
        writeLua(o[k], next, out);
        out.push(",");
        empty = false;
      }
    }
    out.push(empty ? "{}" : `\n${indent}}`);
  } else throw new Error(`lua-data: cannot serialise ${typeof value}`);
}

/** Strings written as they are: printable ASCII but `"` and `\`. */
const PLAIN = /^[ !#-[\]-~]*$/;

/** A double-quoted Lua string; every byte outside printable ASCII, and `"` `\`, becomes a \ddd escape. */
export function luaString(s: string): string {
  if (PLAIN.test(s)) return `"${s}"`;
  let out = '"';
  for (const byte of Buffer.from(s, "utf8")) {
    if (byte >= 0x20 && byte < 0x7f && byte !== 0x22 && byte !== 0x5c) out += String.fromCharCode(byte);
    else out += "\\" + String(byte).padStart(3, "0");
  }
  return out + '"';
}

/** An object's defined entries, sorted by key. */
function tableEntries(value: object): [string, unknown][] {
  const o = value as Record<string, unknown>;
  return Object.keys(o)
    .sort()
    .filter((k) => o[k] !== undefined)
    .map((k) => [k, o[k]]);
}

/** The function being written: how many constants it may still take. */
interface FunctionBudget {
  left: number;
}

/** What a table needs in the function that writes it inline. */
interface Size {
  /** Constants: one per table constructor, key, string and number (LuaJIT shares repeated strings: an upper bound). */
  cost: number;
  /** Levels of nested tables, this one included. */
  depth: number;
}

class ChunkWriter {
  /** Filler functions, `F[i]` in the chunk (index i-1 here). */
  readonly fillers: string[] = [];
  private readonly sizes = new WeakMap<object, Size>();

  private size(v: unknown): Size {
    if (v === null || typeof v !== "object") return { cost: v === null || v === undefined || typeof v === "boolean" ? 0 : 1, depth: 0 };
    const known = this.sizes.get(v);
    if (known) return known;
    let cost = 1;
    let depth = 0;
    const add = (x: unknown, key: number) => {
      const s = this.size(x);
      cost += s.cost + key;
      if (s.depth > depth) depth = s.depth;
    };
    if (Array.isArray(v)) for (const x of v) add(x, 0);
    else for (const x of Object.values(v)) if (x !== undefined) add(x, 1);
    const s = { cost, depth: depth + 1 };
    this.sizes.set(v, s);
    return s;
  }

  /** The expression of `v` inside a function with `fn` left, at nesting `level` of that function. */
  expr(v: unknown, indent: string, fn: FunctionBudget, level: number): string {
    if (v === null || typeof v !== "object") {
      fn.left -= this.size(v).cost;
      return toLua(v, indent);
    }
    const s = this.size(v);
    if (s.cost <= fn.left && level + s.depth <= MAX_DEPTH) {
      fn.left -= s.cost;
      return toLua(v, indent);
    }
    return this.split(v, fn);
  }

  /** `fill({}, first, last)`: the table built by fillers of its own, each within the limits. */
  private split(v: object, fn: FunctionBudget): string {
    const entries: [string, unknown][] = Array.isArray(v) ? v.map((x, i) => [String(i + 1), x]) : tableEntries(v).map(([k, x]) => [`[${luaString(k)}]`, x]);
    const groups: [string, unknown][][] = [];
    let room = 0;
    for (const e of entries) {
      const c = this.size(e[1]).cost + 1;
      if (groups.length === 0 || c > room) {
        groups.push([]);
        room = MAX_CONSTANTS;
      }
      groups[groups.length - 1]!.push(e);
      room -= c;
    }
    if (groups.length === 0) groups.push([]);
    // reserve the group's numbers first: the fillers of nested tables are numbered after them
    const first = this.fillers.length + 1;
    this.fillers.push(...groups.map(() => ""));
    groups.forEach((group, g) => {
      const own: FunctionBudget = { left: MAX_CONSTANTS };
      const lines = group.map(([key, x]) => `  t${key.startsWith("[") ? key : `[${key}]`} = ${this.expr(x, "  ", own, 1)}`);
      this.fillers[first - 1 + g] = `function(t)\n${lines.join("\n")}\nend`;
    });
    fn.left -= 3;
    return `fill({}, ${first}, ${first + groups.length - 1})`;
  }
}
