/**
 * The pattern dialect of cdn-build: the regular expressions a policy may contain (WAF custom rules, the rules
 * engine's path regexes, header `matches` and `userAgent` patterns). It is the part of JavaScript's and
 * PCRE's syntax that means the same thing in both, so a pattern checked here is the pattern the runtime runs;
 * anything else is refused with the construct named. docs/patterns.md documents it for users.
 *
 * Accepted: literal characters (printable ASCII except the metacharacters `\ ^ $ . | ? * + ( ) [ ] { }`, and
 * non-ASCII characters outside classes, matched as their UTF-8 bytes); `.` (any byte but a newline); escapes
 * `\` + ASCII punctuation, `\d \D \w \W \s \S`, `\b \B`, `\t \n \r \f`, `\xHH`; classes `[...]` / `[^...]` of
 * those, with ranges; anchors `^` and `$` (start and end of the value); groups `(...)` and `(?:...)`
 * (nothing is captured); lookahead `(?=...)` `(?!...)` and fixed-length lookbehind `(?<=...)` `(?<!...)`;
 * quantifiers `* + ? {n} {n,} {n,m}` (bounds up to 1000), greedy or lazy (`*?`); alternation `|`.
 * Flags are not part of a pattern: where a place matches case-insensitively, the whole pattern is.
 *
 * The parser builds the tree that src/features/shared/regex/emit.ts writes back out for PCRE and that
 * ./backtracking.ts analyses. It is iterative over sequences and recursive only over group nesting, which is
 * bounded, so no input can exhaust the stack.
 */
import { DIGIT, DOT, NON_WORD, SPACE, WORD, add, complement, emptySet, setOf, union, type ByteSet } from "./bytes.js";

export type Assertion = "start" | "end" | "word" | "notWord";

export type RegexNode =
  /** One byte out of a set; `at`: where it was written in the source (for messages). */
  | { k: "char"; set: ByteSet; at?: number }
  /** Items in order; no items: the empty pattern. */
  | { k: "seq"; items: RegexNode[] }
  | { k: "alt"; alts: RegexNode[] }
  /** `max` is Infinity for an unbounded quantifier. */
  | { k: "repeat"; body: RegexNode; min: number; max: number; lazy: boolean }
  | { k: "assert"; a: Assertion }
  | { k: "look"; behind: boolean; negative: boolean; body: RegexNode };

/** Longest pattern accepted, in characters. */
export const MAX_PATTERN_LENGTH = 1024;
/** Largest bound of a counted quantifier (`{n,m}`). */
export const MAX_REPEAT = 1000;
/** Deepest group nesting. */
export const MAX_DEPTH = 32;

export type ParseErrorKind = "syntax" | "unsupported" | "backReference" | "control" | "tooLong";

export interface ParseError {
  kind: ParseErrorKind;
  /** Offset (0-based, in UTF-16 code units) where the offending construct starts. */
  index: number;
  /** The offending text, as written. */
  construct: string;
  /** What is wrong, and what to write instead. */
  message: string;
}

export type ParseResult = { ok: true; ast: RegexNode } | { ok: false; error: ParseError };

class Fail extends Error {
  constructor(readonly detail: ParseError) {
    super(detail.message);
  }
}

/** Escaped letters that mean something in one of the two engines (or differently in each), and what to write. */
const REFUSED_LETTERS: Record<string, string> = {
  Q: "\\Q...\\E quoting is PCRE only; escape each metacharacter with \\ instead",
  E: "\\E ends PCRE's \\Q quoting, which is not supported; escape each metacharacter with \\ instead",
  A: "\\A is PCRE only; write ^",
  z: "\\z is PCRE only; write $ (it already means the end of the value)",
  Z: "\\Z is PCRE only; write $",
  G: "\\G is PCRE only",
  K: "\\K is PCRE only",
  R: "\\R is PCRE only; write (?:\\r\\n|\\n|\\r)",
  h: "\\h is PCRE only; write [ \\t]",
  H: "\\H is PCRE only; write [^ \\t]",
  v: "\\v is a vertical tab in JavaScript but any vertical space in PCRE; write \\x0b or [\\n\\x0b\\f\\r]",
  V: "\\V is PCRE only",
  N: "\\N is PCRE only; write .",
  X: "\\X is PCRE only",
  C: "\\C is PCRE only",
  p: "Unicode properties (\\p{...}) are not supported: patterns match bytes",
  P: "Unicode properties (\\P{...}) are not supported: patterns match bytes",
  e: "\\e is PCRE only; write \\x1b",
  a: "\\a is PCRE only; write \\x07",
  c: "control escapes (\\cX) are not supported; write \\xHH",
  u: "\\u escapes are JavaScript only and patterns match bytes; write the character itself, or its UTF-8 bytes as \\xHH",
  o: "\\o{...} is PCRE only; write \\xHH",
  k: "back-references are not supported",
  g: "back-references and subroutine calls are not supported",
};

function hex2(s: string): number | undefined {
  return /^[0-9a-fA-F]{2}$/.test(s) ? parseInt(s, 16) : undefined;
}

function isAlnum(c: string): boolean {
  return /^[A-Za-z0-9]$/.test(c);
}

/** UTF-8 bytes of one code point. */
function utf8(cp: number): number[] {
  return [...Buffer.from(String.fromCodePoint(cp), "utf8")];
}

function charNode(set: ByteSet, at?: number): RegexNode {
  return at === undefined ? { k: "char", set } : { k: "char", set, at };
}

/** Parses a pattern of the dialect. Never throws. */
export function parsePattern(source: string): ParseResult {
  if (source.length > MAX_PATTERN_LENGTH) {
    return {
      ok: false,
      error: { kind: "tooLong", index: MAX_PATTERN_LENGTH, construct: "", message: `the pattern is ${source.length} characters long; the limit is ${MAX_PATTERN_LENGTH}` },
    };
  }
  let i = 0;
  const n = source.length;

  function fail(kind: ParseErrorKind, index: number, construct: string, message: string): never {
    throw new Fail({ kind, index, construct, message });
  }

  /** A raw character that may not appear as itself; returns when the character is fine. */
  const checkRaw = (at: number): void => {
    const code = source.charCodeAt(at);
    if (code === 0) fail("control", at, "\\0", "a NUL character cannot be part of a pattern (it would end it early at runtime); write \\x00 to match a NUL byte");
    if (code < 0x20 || code === 0x7f) {
      const h = code.toString(16).padStart(2, "0");
      fail("control", at, `\\x${h}`, `a raw control character (0x${h}) cannot be part of a pattern; write \\x${h}`);
    }
    if (code >= 0xd800 && code <= 0xdfff) {
      const cp = source.codePointAt(at)!;
      if (cp < 0x10000) fail("syntax", at, source[at]!, "a lone UTF-16 surrogate is not a character");
    }
  };

  /** An escape after `\` at source[i] (i points past the backslash); inClass: inside [...]. */
  const escape = (inClass: boolean): { set: ByteSet; single?: number } | { assert: Assertion } => {
    const start = i - 1;
    if (i >= n) fail("syntax", start, "\\", "the pattern ends with a lone backslash");
    const c = source[i]!;
    const code = source.charCodeAt(i);
    i++;
    if (c >= "1" && c <= "9") fail("backReference", start, "\\" + c, "back-references are not supported");
    if (c === "0") fail("unsupported", start, "\\0", "octal escapes are not supported; write \\x00 for a NUL byte");
    if (c === "d") return { set: DIGIT };
    if (c === "D") return { set: complement(DIGIT) };
    if (c === "w") return { set: WORD };
    if (c === "W") return { set: NON_WORD };
    if (c === "s") return { set: SPACE };
    if (c === "S") return { set: complement(SPACE) };
    if (c === "t") return { set: setOf(9), single: 9 };
    if (c === "n") return { set: setOf(10), single: 10 };
    if (c === "r") return { set: setOf(13), single: 13 };
    if (c === "f") return { set: setOf(12), single: 12 };
    if (c === "b") {
      if (inClass) fail("unsupported", start, "\\b", "\\b inside a class is a backspace in both engines but easy to misread; write \\x08");
      return { assert: "word" };
    }
    if (c === "B") {
      if (inClass) fail("unsupported", start, "\\B", "\\B has no meaning inside a class");
      return { assert: "notWord" };
    }
    if (c === "x") {
      if (source[i] === "{") fail("unsupported", start, source.slice(start, source.indexOf("}", i) + 1 || i + 1), "\\x{...} is PCRE only; write \\xHH with exactly two hex digits");
      const v = hex2(source.slice(i, i + 2));
      if (v === undefined) fail("syntax", start, source.slice(start, i + 2), "\\x takes exactly two hex digits, e.g. \\x2f");
      i += 2;
      return { set: setOf(v!), single: v! };
    }
    if (isAlnum(c)) {
      const why = REFUSED_LETTERS[c];
      if (c === "k" || c === "g") fail("backReference", start, "\\" + c, why!);
      fail("unsupported", start, "\\" + c, why ?? `\\${c} means different things in JavaScript and PCRE (or nothing); write the character itself`);
    }
    if (code < 0x20 || code >= 0x7f) fail("unsupported", start, "\\" + c, "a backslash may only escape ASCII punctuation");
    return { set: setOf(code), single: code };
  };

  const parseClass = (): ByteSet => {
    const start = i; // at '['
    i++;
    let negated = false;
    if (source[i] === "^") {
      negated = true;
      i++;
    }
    if (source[i] === "]") fail("unsupported", start, source.slice(start, i + 1), "an empty class ([] or [^]) means different things in JavaScript and PCRE; write \\] for a literal ], or [\\x00-\\xff] for any byte");
    let set = emptySet();
    let prev: number | undefined; // the last single byte, a candidate range start
    let first = true;
    for (;;) {
      if (i >= n) fail("syntax", start, source.slice(start), "the class is not closed with ]");
      const c = source[i]!;
      if (c === "]") {
        i++;
        break;
      }
      const at = i;
      let single: number | undefined;
      let cls: ByteSet | undefined;
      if (c === "\\") {
        i++;
        const e = escape(true);
        if ("assert" in e) throw new Error("unreachable");
        if (e.single !== undefined) single = e.single;
        else cls = e.set;
      } else if (c === "[") {
        fail("unsupported", at, "[", "write \\[ for a [ inside a class ([:name:] classes are PCRE only)");
      } else if (c === "-" && !first && source[i + 1] !== "]" && prev !== undefined) {
        // a range prev-next
        i++;
        if (i >= n) fail("syntax", start, source.slice(start), "the class is not closed with ]");
        let hi: number | undefined;
        const rc = source[i]!;
        if (rc === "\\") {
          i++;
          const e = escape(true);
          if ("assert" in e || e.single === undefined) fail("unsupported", at - 1, source.slice(at - 1, i), "a range must go from one character to another; a class like \\d cannot end a range");
          hi = (e as { single: number }).single;
        } else if (rc === "[") {
          fail("unsupported", i, "[", "write \\[ for a [ inside a class");
        } else {
          checkRaw(i);
          if (source.charCodeAt(i) > 0x7e) fail("unsupported", i, rc, "classes may only hold ASCII characters; write a non-ASCII character outside a class, or list alternatives with |");
          hi = source.charCodeAt(i);
          i++;
        }
        if (hi! < prev) fail("syntax", at - 1, source.slice(at - 1, i), "the range is out of order (its end is before its start)");
        for (let b = prev + 1; b <= hi!; b++) add(set, b);
        prev = undefined;
        first = false;
        continue;
      } else {
        checkRaw(i);
        if (source.charCodeAt(i) > 0x7e) fail("unsupported", i, c, "classes may only hold ASCII characters; write a non-ASCII character outside a class, or list alternatives with |");
        single = source.charCodeAt(i);
        i++;
      }
      if (cls !== undefined) {
        set = union(set, cls);
        prev = undefined;
        if (source[i] === "-" && source[i + 1] !== "]") fail("unsupported", at, source.slice(at, i + 1), "a class like \\d cannot start a range; escape the - as \\-");
      } else {
        add(set, single!);
        prev = single;
      }
      first = false;
    }
    return negated ? complement(set) : set;
  };

  const parseAlt = (depth: number): RegexNode => {
    const alts: RegexNode[] = [parseSeq(depth)];
    while (source[i] === "|") {
      i++;
      alts.push(parseSeq(depth));
    }
    return alts.length === 1 ? alts[0]! : { k: "alt", alts };
  };

  const parseGroup = (depth: number): RegexNode => {
    const start = i; // at '('
    if (depth >= MAX_DEPTH) fail("unsupported", start, "(", `groups are nested more than ${MAX_DEPTH} deep`);
    i++;
    let look: { behind: boolean; negative: boolean } | undefined;
    if (source[i] === "*") fail("unsupported", start, source.slice(start, source.indexOf(")", start) + 1 || start + 2), "(*...) verbs are PCRE only");
    if (source[i] === "?") {
      const two = source.slice(i, i + 3);
      if (two.startsWith("?:")) i += 2;
      else if (two.startsWith("?=")) (look = { behind: false, negative: false }), (i += 2);
      else if (two.startsWith("?!")) (look = { behind: false, negative: true }), (i += 2);
      else if (two === "?<=") (look = { behind: true, negative: false }), (i += 3);
      else if (two === "?<!") (look = { behind: true, negative: true }), (i += 3);
      else {
        const construct = source.slice(start, Math.min(n, start + 4));
        if (two.startsWith("?<") || two.startsWith("?P") || two.startsWith("?'")) fail("unsupported", start, construct, "named groups are not supported; write (?:...)");
        if (two.startsWith("?#")) fail("unsupported", start, construct, "(?#...) comments are PCRE only");
        if (two.startsWith("?>")) fail("unsupported", start, construct, "atomic groups (?>...) are PCRE only");
        if (two.startsWith("?(")) fail("unsupported", start, construct, "conditional groups are PCRE only");
        if (/^\?[-+]?[0-9R&]/.test(two)) fail("unsupported", start, construct, "recursion and subroutine calls are PCRE only");
        if (/^\?[-a-zA-Z^]/.test(two)) fail("unsupported", start, construct, "inline flags like (?i) are not supported: a place that matches case-insensitively does so for the whole pattern");
        fail("syntax", start, construct, "? cannot start a group here (nothing to repeat)");
      }
    }
    const body = parseAlt(depth + 1);
    if (source[i] !== ")") fail("syntax", start, source.slice(start, Math.min(n, start + 16)), "the group is not closed with )");
    i++;
    if (look === undefined) return body;
    if (look.behind) {
      const branches = body.k === "alt" ? body.alts : [body];
      for (const b of branches) {
        if (fixedLength(b) === undefined) fail("unsupported", start, source.slice(start, i), "a lookbehind must have a fixed length (PCRE refuses variable-length lookbehind)");
      }
    }
    return { k: "look", ...look, body };
  };

  /** A quantifier at source[i], if any: [min, max, lazy]. */
  const quantifier = (): [number, number, boolean] | undefined => {
    const start = i;
    const c = source[i];
    let min: number;
    let max: number;
    if (c === "*") (min = 0), (max = Infinity), i++;
    else if (c === "+") (min = 1), (max = Infinity), i++;
    else if (c === "?") (min = 0), (max = 1), i++;
    else if (c === "{") {
      const m = /^\{([0-9]+)(,([0-9]*))?\}/.exec(source.slice(i, i + 16));
      if (!m) fail("unsupported", i, "{", "a literal { must be escaped as \\{ (a quantifier is {n}, {n,} or {n,m})");
      min = Number(m![1]);
      max = m![2] === undefined ? min : m![3] === "" ? Infinity : Number(m![3]);
      if (min > MAX_REPEAT || (max !== Infinity && max > MAX_REPEAT)) fail("unsupported", i, m![0], `counted repetition is limited to ${MAX_REPEAT}`);
      if (max < min) fail("syntax", i, m![0], "the quantifier's bounds are out of order");
      i += m![0].length;
    } else return undefined;
    let lazy = false;
    if (source[i] === "?") {
      lazy = true;
      i++;
    }
    if (source[i] === "+") fail("unsupported", start, source.slice(start, i + 1), "possessive quantifiers (*+, ++, ?+) are PCRE only");
    if (source[i] === "*" || source[i] === "+" || source[i] === "?" || (source[i] === "{" && /^\{[0-9]/.test(source.slice(i, i + 2)))) {
      fail("syntax", start, source.slice(start, i + 1), "a quantifier cannot follow another quantifier");
    }
    return [min, max, lazy];
  };

  const parseSeq = (depth: number): RegexNode => {
    const items: RegexNode[] = [];
    while (i < n) {
      const c = source[i]!;
      if (c === "|" || c === ")") break;
      const start = i;
      let atom: RegexNode;
      if (c === "(") atom = parseGroup(depth);
      else if (c === "[") atom = charNode(parseClass(), start);
      else if (c === ".") (atom = charNode(DOT, start)), i++;
      else if (c === "^") (atom = { k: "assert", a: "start" }), i++;
      else if (c === "$") (atom = { k: "assert", a: "end" }), i++;
      else if (c === "\\") {
        i++;
        const e = escape(false);
        atom = "assert" in e ? { k: "assert", a: e.assert } : charNode(e.set, start);
      } else if (c === "*" || c === "+" || c === "?") fail("syntax", i, c, `nothing to repeat before ${c}`);
      else if (c === "{") {
        if (/^\{[0-9]+(,[0-9]*)?\}/.test(source.slice(i, i + 16))) fail("syntax", i, c, "nothing to repeat before {");
        fail("unsupported", i, c, "a literal { must be escaped as \\{");
      } else if (c === "}" || c === "]") fail("unsupported", i, c, `a literal ${c} must be escaped as \\${c}`);
      else {
        checkRaw(i);
        const cp = source.codePointAt(i)!;
        i += cp > 0xffff ? 2 : 1;
        if (cp < 0x80) atom = charNode(setOf(cp), start);
        else {
          const bytes = utf8(cp).map((b) => charNode(setOf(b), start));
          atom = { k: "seq", items: bytes };
        }
      }
      const q = quantifier();
      if (q !== undefined) {
        if (atom.k === "assert" || atom.k === "look") fail("unsupported", start, source.slice(start, i), "an anchor or assertion cannot be repeated");
        atom = { k: "repeat", body: atom, min: q[0], max: q[1], lazy: q[2] };
      }
      items.push(atom);
    }
    return items.length === 1 ? items[0]! : { k: "seq", items };
  };

  try {
    const ast = parseAlt(0);
    if (i < n) fail("syntax", i, source[i]!, "unmatched )");
    return { ok: true, ast };
  } catch (e) {
    if (e instanceof Fail) return { ok: false, error: e.detail };
    throw e;
  }
}

/** Length in bytes of every string the node matches, when they all have one length. */
export function fixedLength(node: RegexNode): number | undefined {
  switch (node.k) {
    case "char":
      return 1;
    case "assert":
    case "look":
      return 0;
    case "seq": {
      let sum = 0;
      for (const it of node.items) {
        const l = fixedLength(it);
        if (l === undefined) return undefined;
        sum += l;
      }
      return sum;
    }
    case "alt": {
      const ls = node.alts.map(fixedLength);
      return ls.every((l) => l !== undefined && l === ls[0]) ? ls[0] : undefined;
    }
    case "repeat": {
      if (node.max !== node.min) return undefined;
      const l = fixedLength(node.body);
      return l === undefined ? undefined : l * node.min;
    }
  }
}

