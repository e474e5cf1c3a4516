/**
 * How long a backtracking matcher (PCRE, as ngx.re runs it) can take on a pattern, decided on the parsed
 * pattern before it ever reaches the runtime.
 *
 * A backtracking matcher that fails explores every way the pattern can match a prefix of the input, at every
 * start position. Its worst case follows from the ambiguity of the pattern's automaton (Weideman, van der
 * Merwe, Berglund, Watson: "Analyzing matching time behavior of backtracking regular expression matchers by
 * using ambiguity of NFA", 2016):
 *
 * - exponential when some state q can go back to itself over one input w along two different paths (a
 *   repeated group whose body can match the same text in two ways, `(a|a)*`, `(a+)+`, `(\w+\s?)*`);
 * - polynomial (quadratic or worse) when two different states p and q and one input w have p -> p, p -> q
 *   and q -> q: two repetitions that can take turns over the same run of input (`\d+\d+x`, `.*a.*b`), or
 *   one repetition that can start at every offset of a long run (the search tries every start position,
 *   modelled here as a repeated "skip one byte" state in front of the pattern, so `<a[^>]*?x` on
 *   `<a<a<a...` is quadratic);
 * - linear otherwise.
 *
 * The automaton is the position (Glushkov) automaton over bytes, with the multiplicity of its transitions
 * kept (`(a*)*` has two a -> a transitions). Anchors and word boundaries are guards on transitions: `^`
 * only holds before the first byte, `$` only after the last, `\b` / `\B` between bytes of different / equal
 * "wordness", which the product automata track. Lookarounds count as always true (their bodies are checked on
 * their own). States from which the rest of the pattern matches the empty string with no condition are left
 * out: reaching one means the search succeeds, so no failing work goes through them. For the exponential
 * check every counted repetition `{n,m}` (m > 1) counts as unbounded, since a bounded repetition of an
 * ambiguous body is exponential in its bound; for the polynomial check bounded repetitions are expanded (a
 * bounded scan like `[^;]{0,60}` is linear), up to a size beyond which they count as unbounded too.
 *
 * The checks are exact for the automaton but conservative for the engine: PCRE's own optimisations (first
 * byte, required byte, auto-possessification) may make a flagged pattern fast in practice; an author who
 * knows that opts in with `unsafeRegex: true`.
 */
import { ANY, NON_WORD, WORD, emptySet, foldCase, intersect, isEmpty, overlaps, type ByteSet } from "./bytes.js";
import type { RegexNode } from "./parse.js";

const START = 1;
const END = 2;
const WB = 4;
const NWB = 8;
const LOOK = 16;

export type Verdict = "linear" | "polynomial" | "exponential" | "tooComplex";

export interface Analysis {
  verdict: Verdict;
  /** The pattern matches (the empty string at some offset of) every value. */
  matchesEverything: boolean;
  /** Where in the source (offsets of the repeated parts involved), for the message. */
  offsets: number[];
  /** One sentence on what was found. */
  detail: string;
}

/** Bounded repetitions are expanded for the polynomial check up to this many positions each. */
const EXPAND_LIMIT = 512;
/** States of the whole expanded automaton above which bounded repetitions count as unbounded. */
const STATE_LIMIT = 4096;
/** Transitions explored by the product searches before giving up with `tooComplex`. */
const WORK_LIMIT = 4_000_000;

class TooComplex extends Error {}

interface Entry {
  pos: number;
  g: number;
}
interface Frag {
  first: Entry[];
  last: Entry[];
  nullable: number[];
}
interface Edge {
  from: number;
  to: number;
  g: number;
  id: number;
}

function feasibleGuard(g: number): boolean {
  return !((g & WB) !== 0 && (g & NWB) !== 0);
}

function combine(a: number[], b: number[]): number[] {
  const out = new Set<number>();
  for (const x of a) for (const y of b) if (feasibleGuard(x | y)) out.add(x | y);
  return [...out];
}

function withGuard(list: Entry[], g: number): Entry[] {
  return list.filter((e) => feasibleGuard(e.g | g)).map((e) => ({ pos: e.pos, g: e.g | g }));
}

function hasUnbounded(n: RegexNode): boolean {
  switch (n.k) {
    case "char":
    case "assert":
      return false;
    case "seq":
      return n.items.some(hasUnbounded);
    case "alt":
      return n.alts.some(hasUnbounded);
    case "repeat":
      return n.max === Infinity || hasUnbounded(n.body);
    case "look":
      return hasUnbounded(n.body);
  }
}

/** Positions the exact expansion of a node creates. */
function positions(n: RegexNode): number {
  switch (n.k) {
    case "char":
      return 1;
    case "assert":
    case "look":
      return 0;
    case "seq":
      return n.items.reduce((s, it) => s + positions(it), 0);
    case "alt":
      return n.alts.reduce((s, it) => s + positions(it), 0);
    case "repeat": {
      const body = positions(n.body);
      return body * (n.max === Infinity ? n.min + 1 : n.max);
    }
  }
}

/** The position automaton of a pattern (state 0 is the start). */
class Automaton {
  sets: ByteSet[] = [emptySet()];
  at: number[] = [-1];
  edges: Edge[] = [];
  /** Lookaround bodies with an unbounded repetition, not at the anchored start of the pattern. */
  loopyLooks: RegexNode[] = [];
  private expandBudget: boolean;

  constructor(
    private readonly exact: boolean,
    private readonly ci: boolean,
    root: RegexNode,
  ) {
    this.expandBudget = positions(root) <= STATE_LIMIT;
  }

  private edge(from: number, to: number, g: number): void {
    if (!feasibleGuard(g)) return;
    this.edges.push({ from, to, g, id: this.edges.length });
  }

  private link(last: Entry[], first: Entry[]): void {
    for (const l of last) for (const f of first) this.edge(l.pos, f.pos, l.g | f.g);
  }

  private star(body: Frag, min1: boolean): Frag {
    this.link(body.last, body.first);
    return { first: body.first, last: body.last, nullable: min1 ? body.nullable : [...new Set([0, ...body.nullable])] };
  }

  private optional(body: Frag): Frag {
    return { first: body.first, last: body.last, nullable: [...new Set([0, ...body.nullable])] };
  }

  private seq(frags: Frag[]): Frag {
    let acc: Frag = { first: [], last: [], nullable: [0] };
    for (const f of frags) {
      this.link(acc.last, f.first);
      acc = {
        first: [...acc.first, ...acc.nullable.flatMap((g) => withGuard(f.first, g))],
        last: [...f.last, ...f.nullable.flatMap((g) => withGuard(acc.last, g))],
        nullable: combine(acc.nullable, f.nullable),
      };
    }
    return acc;
  }

  build(n: RegexNode): Frag {
    switch (n.k) {
      case "char": {
        const pos = this.sets.length;
        this.sets.push(this.ci ? foldCase(n.set) : n.set);
        this.at.push(n.at ?? -1);
        return { first: [{ pos, g: 0 }], last: [{ pos, g: 0 }], nullable: [] };
      }
      case "assert": {
        const g = n.a === "start" ? START : n.a === "end" ? END : n.a === "word" ? WB : NWB;
        return { first: [], last: [], nullable: [g] };
      }
      case "look":
        if (hasUnbounded(n.body)) this.loopyLooks.push(n.body);
        return { first: [], last: [], nullable: [LOOK] };
      case "seq":
        return this.seq(n.items.map((it) => this.build(it)));
      case "alt": {
        const fs = n.alts.map((a) => this.build(a));
        return { first: fs.flatMap((f) => f.first), last: fs.flatMap((f) => f.last), nullable: [...new Set(fs.flatMap((f) => f.nullable))] };
      }
      case "repeat": {
        const { min, max } = n;
        if (max === 0) return { first: [], last: [], nullable: [0] };
        if (min === 1 && max === 1) return this.build(n.body);
        if (max === 1) return this.optional(this.build(n.body));
        const expand = this.exact && this.expandBudget && positions(n) <= EXPAND_LIMIT;
        if (!expand) {
          // unbounded, or a bounded repetition counted as unbounded
          return this.star(this.build(n.body), min >= 1);
        }
        const copies: Frag[] = [];
        for (let i = 0; i < min; i++) copies.push(this.build(n.body));
        if (max === Infinity) copies.push(this.star(this.build(n.body), false));
        else if (max > min) {
          // nested optional copies: x{0,3} = (x(x(x)?)?)?, one path per length
          let tail: Frag | undefined;
          for (let i = 0; i < max - min; i++) {
            const body = this.build(n.body);
            tail = this.optional(tail === undefined ? body : this.seq([body, tail]));
          }
          copies.push(tail!);
        }
        return this.seq(copies);
      }
    }
  }
}

interface Graph {
  sets: ByteSet[];
  /** Outgoing edges per state, guards only WB/NWB/LOOK left. */
  out: Edge[][];
  /** States taking part (not final, not the start state). */
  live: boolean[];
}

const WORDNESS = [NON_WORD, WORD];

function guardOk(g: number, prevWord: number, nextWord: number): boolean {
  if ((g & WB) !== 0 && prevWord === nextWord) return false;
  if ((g & NWB) !== 0 && prevWord !== nextWord) return false;
  return true;
}

/** Tarjan's strongly connected components, iterative; `succ` lists a vertex's successors. */
function scc(count: number, succ: (v: number) => number[]): number[] {
  const index = new Int32Array(count).fill(-1);
  const low = new Int32Array(count);
  const comp = new Int32Array(count).fill(-1);
  const onStack = new Uint8Array(count);
  const stack: number[] = [];
  let next = 0;
  let comps = 0;
  for (let root = 0; root < count; root++) {
    if (index[root] !== -1) continue;
    const work: [number, number[], number][] = [[root, succ(root), 0]];
    index[root] = low[root] = next++;
    stack.push(root);
    onStack[root] = 1;
    while (work.length > 0) {
      const top = work[work.length - 1]!;
      const [v, ss] = top;
      if (top[2] < ss.length) {
        const w = ss[top[2]++]!;
        if (index[w] === -1) {
          index[w] = low[w] = next++;
          stack.push(w);
          onStack[w] = 1;
          work.push([w, succ(w), 0]);
        } else if (onStack[w]) low[v] = Math.min(low[v]!, index[w]!);
      } else {
        work.pop();
        if (work.length > 0) {
          const u = work[work.length - 1]![0];
          low[u] = Math.min(low[u]!, low[v]!);
        }
        if (low[v] === index[v]) {
          for (;;) {
            const w = stack.pop()!;
            onStack[w] = 0;
            comp[w] = comps;
            if (w === v) break;
          }
          comps++;
        }
      }
    }
  }
  return [...comp];
}

/** Builds the graph of live states: final states removed, impossible guards dropped. */
function graphOf(a: Automaton, finals: Set<number>, extra: Edge[]): Graph {
  const n = a.sets.length;
  const live = a.sets.map((_, i) => i !== 0 && !finals.has(i));
  const out: Edge[][] = a.sets.map(() => []);
  for (const e of [...a.edges, ...extra]) {
    if (e.from === 0 || !live[e.from] || !live[e.to]) continue;
    if ((e.g & (START | END)) !== 0) continue; // ^ after a byte, or $ before one: never
    out[e.from]!.push(e);
  }
  void n;
  return { sets: a.sets, out, live };
}

/** Components with a cycle: lists of states. */
function cycles(g: Graph): number[][] {
  const n = g.sets.length;
  const comp = scc(n, (v) => (g.live[v] ? g.out[v]!.map((e) => e.to) : []));
  const groups = new Map<number, number[]>();
  for (let v = 0; v < n; v++) {
    if (!g.live[v]) continue;
    const c = comp[v]!;
    if (!groups.has(c)) groups.set(c, []);
    groups.get(c)!.push(v);
  }
  return [...groups.values()].filter((states) => states.length > 1 || g.out[states[0]!]!.some((e) => e.to === states[0]));
}

class Work {
  n = 0;
  tick(k = 1): void {
    this.n += k;
    if (this.n > WORK_LIMIT) throw new TooComplex();
  }
}

/** Exponential ambiguity inside one cycle component: two different paths from q back to q over one input. */
function exponentialIn(g: Graph, states: number[], work: Work): boolean {
  const m = states.length;
  const idx = new Map(states.map((s, i) => [s, i]));
  const inner = states.map((s) => g.out[s]!.filter((e) => idx.has(e.to)));
  const V = m * m * 2;
  if (V > 2_000_000) throw new TooComplex();
  const id = (a: number, b: number, w: number) => (a * m + b) * 2 + w;
  const splits: [number, number][] = [];
  const succ = (v: number): number[] => {
    const w = v & 1;
    const ab = v >> 1;
    const a = Math.floor(ab / m);
    const b = ab % m;
    const out: number[] = [];
    for (const e1 of inner[a]!) {
      for (const e2 of inner[b]!) {
        work.tick();
        const both = intersect(g.sets[e1.to]!, g.sets[e2.to]!);
        if (isEmpty(both)) continue;
        for (let cw = 0; cw < 2; cw++) {
          if (!overlaps(both, WORDNESS[cw]!)) continue;
          if (!guardOk(e1.g, w, cw) || !guardOk(e2.g, w, cw)) continue;
          const t = id(idx.get(e1.to)!, idx.get(e2.to)!, cw);
          out.push(t);
          if (a === b && e1.to === e2.to && e1.id !== e2.id) splits.push([v, t]);
        }
      }
    }
    return out;
  };
  const adj: number[][] = new Array(V);
  const comp = scc(V, (v) => (adj[v] ??= succ(v)));
  const diag = (v: number) => {
    const ab = v >> 1;
    return Math.floor(ab / m) === ab % m;
  };
  const hasDiag = new Set<number>();
  const hasOff = new Set<number>();
  for (let v = 0; v < V; v++) {
    if (!adj[v] || adj[v]!.length === 0) continue;
    (diag(v) ? hasDiag : hasOff).add(comp[v]!);
  }
  // a diagonal vertex on a cycle through an off-diagonal one
  for (const c of hasDiag) if (hasOff.has(c) && cycleThrough(comp, adj, c, V)) return true;
  // or two parallel transitions between diagonal vertices of one component
  for (const [v, t] of splits) if (comp[v] === comp[t]) return true;
  return false;
}

/** True when component c has a cycle (more than one vertex, or a self-loop). */
function cycleThrough(comp: number[], adj: number[][], c: number, V: number): boolean {
  let count = 0;
  for (let v = 0; v < V; v++) {
    if (comp[v] !== c) continue;
    count++;
    if (count > 1) return true;
    if (adj[v]?.includes(v)) return true;
  }
  return false;
}

/**
 * Polynomial ambiguity between two cycle components A and B (B reachable from A): p in A, q in B and one
 * input w with p -> p, p -> q and q -> q.
 */
function polynomialBetween(g: Graph, A: number[], B: number[], mid: Set<number>, work: Work): boolean {
  const inA = new Set(A);
  const inB = new Set(B);
  for (const p of A) {
    for (const q of B) {
      for (let w0 = 0; w0 < 2; w0++) {
      // w0: the wordness of the byte read before w, which is also w's last byte (w repeats)
      const seen = new Set<string>();
      const queue: [number, number, number, number][] = [[p, p, q, w0]];
      for (let head = 0; head < queue.length; head++) {
        const [x, y, z, w] = queue[head]!;
        for (const e1 of g.out[x]!) {
          if (!inA.has(e1.to)) continue;
          for (const e2 of g.out[y]!) {
            if (!mid.has(e2.to)) continue;
            const xy = intersect(g.sets[e1.to]!, g.sets[e2.to]!);
            if (isEmpty(xy)) continue;
            for (const e3 of g.out[z]!) {
              if (!inB.has(e3.to)) continue;
              work.tick();
              const all = intersect(xy, g.sets[e3.to]!);
              if (isEmpty(all)) continue;
              for (let cw = 0; cw < 2; cw++) {
                if (!overlaps(all, WORDNESS[cw]!)) continue;
                if (!guardOk(e1.g, w, cw) || !guardOk(e2.g, w, cw) || !guardOk(e3.g, w, cw)) continue;
                if (e1.to === p && e2.to === q && e3.to === q && cw === w0) return true;
                const key = `${e1.to},${e2.to},${e3.to},${cw}`;
                if (seen.has(key)) continue;
                seen.add(key);
                queue.push([e1.to, e2.to, e3.to, cw]);
              }
            }
          }
        }
      }
      }
    }
  }
  return false;
}

function reach(g: Graph, from: number[], forward: boolean): Set<number> {
  const seen = new Set<number>(from);
  const back: number[][] = g.sets.map(() => []);
  if (!forward) for (const list of g.out) for (const e of list) back[e.to]!.push(e.from);
  const todo = [...from];
  while (todo.length > 0) {
    const v = todo.pop()!;
    const next = forward ? g.out[v]!.map((e) => e.to) : back[v]!;
    for (const w of next) {
      if (!seen.has(w) && g.live[w]) {
        seen.add(w);
        todo.push(w);
      }
    }
  }
  return seen;
}

function offsetsOf(a: Automaton, states: number[]): number[] {
  return [...new Set(states.map((s) => a.at[s]!).filter((o) => o >= 0))].sort((x, y) => x - y);
}

function finalsOf(f: Frag): Set<number> {
  return new Set(f.last.filter((e) => e.g === 0).map((e) => e.pos));
}

function analyseNode(root: RegexNode, ci: boolean, anchoredLooks: boolean): Analysis {
  const work = new Work();
  // matches everything: an empty match with no condition, or only ^ (offset 0) or only $ (the end)
  const top = new Automaton(false, ci, root);
  const topFrag = top.build(root);
  const matchesEverything = topFrag.nullable.some((g) => g === 0 || g === START || g === END);

  // 1. exponential: counted repetitions as unbounded
  const finals1 = finalsOf(topFrag);
  const g1 = graphOf(top, finals1, []);
  for (const states of cycles(g1)) {
    if (exponentialIn(g1, states, work)) {
      return { verdict: "exponential", matchesEverything, offsets: offsetsOf(top, states), detail: "a repetition can match the same input in more than one way, so a failing match tries exponentially many combinations" };
    }
  }

  // lookaround bodies: the ones at the anchored start run once and are checked on their own; a repetition in
  // any other runs at many offsets
  let lookVerdict: Analysis | undefined;
  const leading = new Set<RegexNode>();
  if (anchoredLooks && root.k === "seq" && root.items[0]?.k === "assert" && root.items[0].a === "start") {
    for (const it of root.items.slice(1)) {
      if (it.k !== "look") break;
      leading.add(it.body);
    }
  }
  for (const body of top.loopyLooks) {
    if (leading.has(body)) {
      const sub = analyseNode({ k: "seq", items: [{ k: "assert", a: "start" }, body] }, ci, false);
      if (sub.verdict !== "linear") return { ...sub, matchesEverything };
    } else {
      lookVerdict = { verdict: "polynomial", matchesEverything, offsets: [], detail: "a lookaround with an unbounded repetition runs again at each offset of the value" };
    }
  }

  // 2. polynomial: bounded repetitions expanded, plus the search's "skip one byte" state in front
  const exact = new Automaton(true, ci, root);
  const f2 = exact.build(root);
  const P = exact.sets.length;
  exact.sets.push(ANY);
  exact.at.push(-1);
  const extra: Edge[] = [{ from: P, to: P, g: 0, id: -1 }];
  let nextId = -2;
  for (const e of f2.first) if ((e.g & START) === 0) extra.push({ from: P, to: e.pos, g: e.g, id: nextId-- });
  const g2 = graphOf(exact, finalsOf(f2), extra);
  g2.live[P] = true;
  const comps = cycles(g2);
  for (const A of comps) {
    const fromA = reach(g2, A, true);
    for (const B of comps) {
      if (A === B || !B.some((q) => fromA.has(q))) continue;
      const toB = reach(g2, B, false);
      const mid = new Set([...fromA].filter((v) => toB.has(v)));
      if (polynomialBetween(g2, A, B, mid, work)) {
        const involved = [...A, ...B].filter((s) => s !== P);
        const detail = A.includes(P)
          ? "a repetition can start at every offset of a long run of matching input, so the search rescans the run from each offset (quadratic)"
          : "two repetitions can take turns consuming the same run of input, so a failing match tries every split (quadratic or worse)";
        return { verdict: "polynomial", matchesEverything, offsets: offsetsOf(exact, involved), detail };
      }
    }
  }
  return lookVerdict ?? { verdict: "linear", matchesEverything, offsets: [], detail: "" };
}

/** Analyses a parsed pattern. `ci`: matched case-insensitively. */
export function analyse(root: RegexNode, ci: boolean): Analysis {
  try {
    return analyseNode(root, ci, true);
  } catch (e) {
    if (e instanceof TooComplex) {
      return { verdict: "tooComplex", matchesEverything: false, offsets: [], detail: "the pattern is too complex to prove that it runs in linear time" };
    }
    throw e;
  }
}
