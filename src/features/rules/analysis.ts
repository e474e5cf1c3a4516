/**
 * Compile-time reasoning over rule conditions in normal form:
 * - `covers(a, b)`: every request b matches is also matched by a (sound, not complete: when in doubt, false);
 * - `staticEval(cond, req)`: three-valued evaluation for a request of which only some facts are known.
 */
import { globMatches, type CondNode, type PathAlt } from "./conditions.js";

/** The extension of a path's last segment (lower case), or undefined. */
export function extensionOf(path: string): string | undefined {
  const slash = path.lastIndexOf("/");
  const dot = path.lastIndexOf(".");
  return dot > slash && dot < path.length - 1 ? path.slice(dot + 1).toLowerCase() : undefined;
}

/** Is every path b's alternative matches also matched by alternative a? */
function altCovers(a: PathAlt, b: PathAlt): boolean {
  if (a.kind === "regex" || b.kind === "regex") return a.kind === b.kind && a.value === b.value;
  switch (b.kind) {
    case "exact":
      if (a.kind === "exact") return a.value === b.value;
      if (a.kind === "prefix") return b.value.startsWith(a.value);
      return globMatches(a.value, b.value);
    case "prefix":
      if (a.kind === "prefix") return b.value.startsWith(a.value);
      return false;
    case "glob":
      if (a.kind === "prefix") return b.literal.startsWith(a.value);
      if (a.kind === "glob") return a.value === b.value;
      return false;
  }
}

/** Extensions a path alternative is restricted to (undefined when it is not restricted). */
function altExtensions(alt: PathAlt): string[] | undefined {
  if (alt.kind === "exact") {
    const e = extensionOf(alt.value);
    return e === undefined ? [] : [e];
  }
  if (alt.kind === "glob") {
    // "/img/*.png": the part after the last "*" fixes the extension when it has a dot and no slash
    const tail = alt.value.slice(alt.value.lastIndexOf("*") + 1);
    const m = /^[^/]*\.([A-Za-z0-9_-]+)$/.exec(tail);
    return m ? [m[1]!.toLowerCase()] : undefined;
  }
  return undefined;
}

function subset(b: readonly string[], a: readonly string[]): boolean {
  const s = new Set(a);
  return b.every((x) => s.has(x));
}

function hostCovered(h: string, a: Extract<CondNode, { t: "host" }>): boolean {
  return a.exact.includes(h) || a.suffix.some((s) => h.endsWith(s));
}

/** Does conjunct `a` hold for every request for which all of `b`'s conjuncts hold? */
function conjunctCovers(a: CondNode, b: Prepared): boolean {
  const bs = b.conj;
  switch (a.t) {
    case "path":
      return bs.some((x) => x.t === "path" && x.alts.every((balt) => a.alts.some((aalt) => altCovers(aalt, balt))));
    case "ext":
      return bs.some((x) => {
        if (x.t === "ext") return subset(x.set, a.set);
        if (x.t === "path") {
          return x.alts.every((alt) => {
            const e = altExtensions(alt);
            return e !== undefined && e.length > 0 && subset(e, a.set);
          });
        }
        return false;
      });
    case "method":
      return bs.some((x) => x.t === "method" && subset(x.set, a.set));
    case "host":
      return bs.some(
        (x) => x.t === "host" && x.exact.every((h) => hostCovered(h, a)) && x.suffix.every((s) => a.suffix.some((as) => s.endsWith(as))),
      );
    default:
      return b.keys.has(jsonOf(a));
  }
}

const json = new WeakMap<CondNode, string>();
function jsonOf(n: CondNode): string {
  let k = json.get(n);
  if (k === undefined) json.set(n, (k = JSON.stringify(n)));
  return k;
}

const PATH = 1;
const EXT = 2;
const METHOD = 4;
const HOST = 8;
const OTHER = 16;

/** A conjunction with what `covers` needs precomputed (once per rule, not once per pair). */
export interface Prepared {
  conj: CondNode[];
  /** Kinds of conjuncts present. */
  mask: number;
  /** Kinds of conjuncts of another rule this one can satisfy (a path may satisfy an extension test). */
  cap: number;
  /** The conditions the analysis does not reason about, as JSON. */
  keys: Set<string>;
}

export function prepare(conj: CondNode[]): Prepared {
  let mask = 0;
  const keys = new Set<string>();
  for (const c of conj) {
    if (c.t === "path") mask |= PATH;
    else if (c.t === "ext") mask |= EXT;
    else if (c.t === "method") mask |= METHOD;
    else if (c.t === "host") mask |= HOST;
    else {
      mask |= OTHER;
      keys.add(jsonOf(c));
    }
  }
  return { conj, mask, cap: mask & PATH ? mask | EXT : mask, keys };
}

/**
 * True when every request matched by the conjunction `b` is matched by the conjunction `a`. An empty
 * `a` matches everything. Conditions the analysis does not understand only cover identical conditions.
 */
export function covers(a: Prepared, b: Prepared): boolean {
  if ((a.mask & ~b.cap) !== 0) return false;
  return a.conj.every((c) => conjunctCovers(c, b));
}

/** What is known about a request in `staticEval`. */
export interface StaticRequest {
  path: string;
  method: string;
  host?: string;
}

/** Three-valued: true, false, or undefined (depends on facts not known at compile time). */
export function staticEval(n: CondNode, req: StaticRequest): boolean | undefined {
  switch (n.t) {
    case "and": {
      let r: boolean | undefined = true;
      for (const c of n.c) {
        const v = staticEval(c, req);
        if (v === false) return false;
        if (v === undefined) r = undefined;
      }
      return r;
    }
    case "or": {
      let r: boolean | undefined = false;
      for (const c of n.c) {
        const v = staticEval(c, req);
        if (v === true) return true;
        if (v === undefined) r = undefined;
      }
      return r;
    }
    case "not": {
      const v = staticEval(n.c, req);
      return v === undefined ? undefined : !v;
    }
    case "path": {
      let r: boolean | undefined = false;
      for (const alt of n.alts) {
        let v: boolean | undefined;
        if (alt.kind === "exact") v = req.path === alt.value;
        else if (alt.kind === "prefix") v = req.path.startsWith(alt.value);
        else if (alt.kind === "glob") v = globMatches(alt.value, req.path);
        else v = undefined; // PCRE and JS regexes differ: do not guess
        if (v === true) return true;
        if (v === undefined) r = undefined;
      }
      return r;
    }
    case "ext": {
      const e = extensionOf(req.path);
      return e !== undefined && n.set.includes(e);
    }
    case "method":
      return n.set.includes(req.method);
    case "host":
      if (req.host === undefined) return undefined;
      return hostCovered(req.host.toLowerCase(), n);
    default:
      return undefined;
  }
}

// ---- which earlier rules may cover a rule -------------------------------------------------------------

/** The start positions of every "." in `s`: the suffixes a `*.suffix` host may be. */
function dotSuffixes(s: string): string[] {
  const out: string[] = [];
  for (let i = s.indexOf("."); i >= 0; i = s.indexOf(".", i + 1)) out.push(s.slice(i));
  return out;
}

/**
 * The keys under which a rule whose conjunct is `c` can be found by a rule it covers: that rule must have a
 * conjunct under one of these keys (see conjunctCovers).
 */
function fileKeys(c: CondNode): string[] {
  switch (c.t) {
    case "path":
      return c.alts.map((a) => (a.kind === "exact" ? "x:" + a.value : a.kind === "prefix" ? "p:" + a.value : a.kind === "glob" ? "p:" + a.literal : "r:" + a.value));
    case "ext":
      return c.set.map((e) => "e:" + e);
    case "method":
      return c.set.map((m) => "m:" + m);
    case "host":
      return [...c.exact.map((h) => "h:" + h), ...c.suffix.map((s) => "s:" + s)];
    default:
      return ["o:" + jsonOf(c)];
  }
}

/**
 * Finds, for a rule, the earlier rules that may cover it: a superset of those `covers` accepts, without
 * comparing every pair (policies have tens of thousands of rules). Each rule is filed under the keys of one
 * of its conjuncts, the one whose keys the fewest rules share; a rule it covers must then have a conjunct
 * that leads to one of those keys.
 */
export class CoverCandidates {
  private readonly filed = new Map<string, number[]>();
  private readonly prefixLengths: number[] = [];
  private readonly everything: number[] = [];
  private readonly frequency = new Map<string, number>();

  /** `all`: every rule of the policy, so that each is filed under its most selective conjunct. */
  constructor(all: readonly Prepared[]) {
    for (const p of all) for (const c of p.conj) for (const k of fileKeys(c)) this.frequency.set(k, (this.frequency.get(k) ?? 0) + 1);
  }

  /** Files rule `i` (call in rule order, after asking for its candidates). */
  add(i: number, p: Prepared): void {
    if (p.conj.length === 0) {
      this.everything.push(i);
      return;
    }
    let best: string[] = [];
    let bestCount = Infinity;
    for (const c of p.conj) {
      const keys = fileKeys(c);
      const count = keys.reduce((s, k) => s + (this.frequency.get(k) ?? 0), 0);
      if (count < bestCount) [best, bestCount] = [keys, count];
    }
    for (const k of new Set(best)) {
      const l = this.filed.get(k);
      if (l) l.push(i);
      else this.filed.set(k, [i]);
      if (k.startsWith("p:") && !this.prefixLengths.includes(k.length - 2)) {
        this.prefixLengths.push(k.length - 2);
        this.prefixLengths.sort((x, y) => x - y);
      }
    }
  }

  /** Rules filed so far that may cover `p`, ascending. */
  candidates(p: Prepared): number[] {
    const lists: number[][] = [this.everything];
    const look = (k: string) => {
      const l = this.filed.get(k);
      if (l) lists.push(l);
    };
    const prefixesOf = (s: string) => {
      for (const n of this.prefixLengths) {
        if (n > s.length) break;
        look("p:" + s.slice(0, n));
      }
    };
    for (const c of p.conj) {
      switch (c.t) {
        case "path": {
          const a = c.alts[0]!;
          if (a.kind === "regex") look("r:" + a.value);
          else prefixesOf(a.kind === "glob" ? a.literal : a.value);
          if (a.kind === "exact") look("x:" + a.value);
          const e = altExtensions(a);
          if (e && e.length > 0) look("e:" + e[0]);
          break;
        }
        case "ext":
          look("e:" + c.set[0]);
          break;
        case "method":
          look("m:" + c.set[0]);
          break;
        case "host":
          for (const s of c.exact.length > 0 ? dotSuffixes(c.exact[0]!) : dotSuffixes(c.suffix[0]!)) look("s:" + s);
          if (c.exact.length > 0) look("h:" + c.exact[0]);
          break;
        default:
          look("o:" + jsonOf(c));
      }
    }
    const out = [...new Set(lists.flat())];
    return out.sort((x, y) => x - y);
  }
}
