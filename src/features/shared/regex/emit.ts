/**
 * Writes a parsed pattern (./parse.ts) out as the PCRE text the runtime compiles. The output is rebuilt from
 * the tree, never copied from the source, so it holds exactly the constructs the dialect defines: bytes
 * outside printable ASCII become `\xHH`, groups become `(?:...)` (nothing is captured), `$` becomes `\z`
 * (PCRE's `$` would also match before a final newline), and the result is a self-contained expression
 * that can be wrapped in `(?:...)` and joined with others without changing its meaning.
 */
import { DIGIT, DOT, NON_WORD, SPACE, WORD, complement, equals, has, intersect, members, size, type ByteSet } from "./bytes.js";
import type { RegexNode } from "./parse.js";

/** Printable characters written as themselves outside a class (the rest of ASCII punctuation gets a `\`). */
const PLAIN = /^[A-Za-z0-9 _/,:;=@'"<>!%&~#`-]$/;

const hex = (b: number) => "\\x" + b.toString(16).padStart(2, "0");

function literal(b: number): string {
  const c = String.fromCharCode(b);
  if (b >= 0x20 && b <= 0x7e) return PLAIN.test(c) ? c : "\\" + c;
  return hex(b);
}

function classMember(b: number): string {
  const c = String.fromCharCode(b);
  if (/^[A-Za-z0-9_]$/.test(c)) return c;
  return b > 0x20 && b <= 0x7e ? "\\" + c : hex(b);
}

function ranges(set: ByteSet): string {
  const bytes = members(set);
  let out = "";
  for (let i = 0; i < bytes.length; ) {
    let j = i;
    while (j + 1 < bytes.length && bytes[j + 1] === bytes[j]! + 1) j++;
    const lo = bytes[i]!;
    const hi = bytes[j]!;
    if (hi === lo) out += classMember(lo);
    else if (hi === lo + 1) out += classMember(lo) + classMember(hi);
    else out += classMember(lo) + "-" + classMember(hi);
    i = j + 1;
  }
  return out;
}

/** The members of a class: \\w and \\d where the set holds all of them, then ranges. */
function members_(set: ByteSet): string {
  for (const [named, text] of [[WORD, "\\w"], [DIGIT, "\\d"], [SPACE, "\\s"]] as const) {
    if (equals(intersect(set, named), named)) return text + ranges(intersect(set, complement(named)));
  }
  return ranges(set);
}

const NAMED: [ByteSet, string][] = [
  [DOT, "."],
  [DIGIT, "\\d"],
  [complement(DIGIT), "\\D"],
  [WORD, "\\w"],
  [NON_WORD, "\\W"],
  [SPACE, "\\s"],
  [complement(SPACE), "\\S"],
];

export function emitSet(set: ByteSet): string {
  const count = size(set);
  if (count === 1) {
    for (let b = 0; b < 256; b++) if (has(set, b)) return literal(b);
  }
  for (const [s, text] of NAMED) if (equals(s, set)) return text;
  if (count === 0) return "[^\\x00-\\xff]";
  if (count > 128) return "[^" + members_(complement(set)) + "]";
  return "[" + members_(set) + "]";
}

function quant(min: number, max: number, lazy: boolean): string {
  let q: string;
  if (min === 0 && max === Infinity) q = "*";
  else if (min === 1 && max === Infinity) q = "+";
  else if (min === 0 && max === 1) q = "?";
  else if (max === Infinity) q = `{${min},}`;
  else if (min === max) q = `{${min}}`;
  else q = `{${min},${max}}`;
  return lazy ? q + "?" : q;
}

/** The node as an item of a sequence: alternations are grouped. */
function item(n: RegexNode): string {
  return n.k === "alt" ? `(?:${emit(n)})` : emit(n);
}

/** The PCRE text of a parsed pattern. */
export function emit(n: RegexNode): string {
  switch (n.k) {
    case "char":
      return emitSet(n.set);
    case "seq":
      return n.items.map(item).join("");
    case "alt":
      return n.alts.map(emit).join("|");
    case "repeat": {
      const body = n.body.k === "char" ? emitSet(n.body.set) : `(?:${emit(n.body)})`;
      return body + quant(n.min, n.max, n.lazy);
    }
    case "assert":
      return n.a === "start" ? "^" : n.a === "end" ? "\\z" : n.a === "word" ? "\\b" : "\\B";
    case "look":
      return `(?${n.behind ? "<" : ""}${n.negative ? "!" : "="}${emit(n.body)})`;
  }
}
