import { foldCase, has, WORD } from "../../src/features/shared/regex/bytes.js";
import { fixedLength, type RegexNode } from "../../src/features/shared/regex/parse.js";

/**
 * A reference matcher for the pattern dialect, written from its definition (docs/patterns.md) and nothing
 * else: bytes in, "is there a match anywhere" out. Slow (plain backtracking with continuations) and only
 * for tests, which compare it with what the runtime's PCRE does with the compiler's output.
 */
export function referenceFind(ast: RegexNode, subject: Buffer, ci: boolean): boolean {
  const n = subject.length;
  const word = (i: number) => i >= 0 && i < n && has(WORD, subject[i]!);
  const m = (node: RegexNode, i: number, k: (j: number) => boolean): boolean => {
    switch (node.k) {
      case "char": {
        const set = ci ? foldCase(node.set) : node.set;
        return i < n && has(set, subject[i]!) && k(i + 1);
      }
      case "seq": {
        const go = (idx: number, j: number): boolean => (idx === node.items.length ? k(j) : m(node.items[idx]!, j, (j2) => go(idx + 1, j2)));
        return go(0, i);
      }
      case "alt":
        return node.alts.some((a) => m(a, i, k));
      case "repeat": {
        // greedy and lazy find the same "is there a match"; an iteration must consume (as in PCRE)
        const rep = (count: number, j: number): boolean => {
          if (count < node.max && m(node.body, j, (j2) => (j2 === j && count >= node.min ? false : rep(count + 1, j2)))) return true;
          return count >= node.min && k(j);
        };
        return rep(0, i);
      }
      case "assert":
        if (node.a === "start") return i === 0 && k(i);
        if (node.a === "end") return i === n && k(i);
        if (node.a === "word") return word(i - 1) !== word(i) && k(i);
        return word(i - 1) === word(i) && k(i);
      case "look": {
        let found: boolean;
        if (!node.behind) found = m(node.body, i, () => true);
        else {
          const branches = node.body.k === "alt" ? node.body.alts : [node.body];
          found = branches.some((b) => {
            const len = fixedLength(b)!;
            return i - len >= 0 && m(b, i - len, (j) => j === i);
          });
        }
        return found !== node.negative && k(i);
      }
    }
  };
  for (let start = 0; start <= n; start++) if (m(ast, start, () => true)) return true;
  return false;
}
