import { has, members } from "../../src/features/shared/regex/bytes.js";
import { parsePattern, type RegexNode } from "../../src/features/shared/regex/index.js";

/** A small deterministic PRNG (mulberry32), so adversarial inputs are the same on every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PREFERRED = [..."abcdefghijklmnopqrstuvwxyz0123456789 ._-/<>'\"=(),;:"].map((c) => c.charCodeAt(0));

/** One string (as latin1 bytes) the node matches, choosing branches and repetition counts at random. */
function sample(n: RegexNode, rnd: () => number, out: number[]): void {
  switch (n.k) {
    case "char": {
      const preferred = PREFERRED.filter((b) => has(n.set, b));
      const pool = preferred.length > 0 && rnd() < 0.9 ? preferred : members(n.set);
      out.push(pool[Math.floor(rnd() * pool.length)]!);
      return;
    }
    case "seq":
      for (const it of n.items) sample(it, rnd, out);
      return;
    case "alt":
      sample(n.alts[Math.floor(rnd() * n.alts.length)]!, rnd, out);
      return;
    case "repeat": {
      const extra = Math.floor(rnd() * 4);
      const count = Math.min(n.min + extra, n.max === Infinity ? n.min + 3 : n.max);
      for (let i = 0; i < count; i++) sample(n.body, rnd, out);
      return;
    }
    case "assert":
    case "look":
      return;
  }
}

/** `count` strings the pattern's parts can produce (not every one is a match: assertions are ignored). */
export function samples(pattern: string, count: number, seed = 1): string[] {
  const p = parsePattern(pattern);
  if (!p.ok) throw new Error(`not in the dialect: ${pattern}`);
  const rnd = prng(seed);
  const out = new Set<string>();
  for (let i = 0; i < count * 4 && out.size < count; i++) {
    const bytes: number[] = [];
    sample(p.ast, rnd, bytes);
    if (bytes.length > 0) out.add(Buffer.from(bytes).toString("latin1"));
  }
  return [...out];
}

/**
 * Seeds of adversarial inputs for a pattern: strings that, repeated to fill an input, make a backtracking
 * matcher start many attempts that get far before failing. The rule's literals, proper prefixes of strings
 * the pattern produces (a match that is almost there, again and again), and `extra` (known attack shapes).
 */
export function adversarialSeeds(pattern: string, literals: string[] = [], extra: string[] = []): string[] {
  const seeds = new Set<string>([...literals, ...extra]);
  for (const s of samples(pattern, 16)) {
    for (const cut of [1, Math.floor(s.length / 3), Math.floor(s.length / 2), Math.floor((2 * s.length) / 3), s.length - 1]) {
      if (cut >= 1 && cut < s.length) seeds.add(s.slice(0, cut));
    }
  }
  return [...seeds].filter((s) => s.length > 0);
}
