/**
 * Multi-literal search (Aho-Corasick, compiled to a DFA at setup): one pass over the input finds which
 * groups have at least one of their literals in it. The WAF uses it to skip the regexes of rules whose
 * required literals are absent, so a clean request costs one byte loop per target instead of a regex per
 * rule. Per request nothing is allocated: candidates go into a reused list.
 */

const byte = string.byte;

export interface LiteralScanner {
  /** Scans `s`; returns how many groups matched; their ids (1-based, ascending by first hit) are in `hits`. */
  scan(this: void, s: string): number;
  hits: LuaTable<number, number>;
}

/** `groups[g]` is the literal list of group g+1. */
export function compileScanner(groups: string[][]): LiteralScanner {
  // trie: state 1 is the root
  const next: LuaTable<number, LuaTable<number, number>> = new LuaTable();
  const out: LuaTable<number, number[]> = new LuaTable();
  next.set(1, new LuaTable());
  let states = 1;
  for (let g = 0; g < groups.length; g++) {
    for (const lit of groups[g]) {
      let st = 1;
      for (let i = 1; i <= lit.length; i++) {
        const b = byte(lit, i);
        let to = next.get(st).get(b);
        if (to === undefined) {
          states++;
          to = states;
          next.set(to, new LuaTable());
          next.get(st).set(b, to);
        }
        st = to;
      }
      let o = out.get(st);
      if (o === undefined) {
        o = [];
        out.set(st, o);
      }
      o.push(g + 1);
    }
  }
  // failure links, breadth first; then complete transitions (DFA) and merged outputs
  const fail: LuaTable<number, number> = new LuaTable();
  fail.set(1, 1);
  const queue: number[] = [];
  for (const [b, to] of next.get(1)) {
    fail.set(to, 1);
    queue.push(to);
    void b;
  }
  let qi = 0;
  while (qi < queue.length) {
    const st = queue[qi];
    qi++;
    const f = fail.get(st);
    const fo = out.get(f);
    if (fo !== undefined) {
      let o = out.get(st);
      if (o === undefined) {
        o = [];
        out.set(st, o);
      }
      for (const g of fo) o.push(g);
    }
    for (const [b, to] of next.get(st)) {
      // the failure of `to`: follow the failures of `st` until a state with a `b` edge
      let x = f;
      let target: number | undefined = undefined;
      while (true) {
        const t = next.get(x).get(b);
        if (t !== undefined && t !== to) {
          target = t;
          break;
        }
        if (x === 1) break;
        x = fail.get(x);
      }
      fail.set(to, target ?? 1);
      queue.push(to);
    }
  }
  // DFA: delta(st, b) = goto(st, b) or delta(fail(st), b); states are in BFS order, so fail(st) is done
  const delta: LuaTable<number, LuaTable<number, number>> = new LuaTable();
  delta.set(1, next.get(1));
  for (const st of queue) {
    const d: LuaTable<number, number> = new LuaTable();
    for (const [b, to] of delta.get(fail.get(st))) d.set(b, to);
    for (const [b, to] of next.get(st)) d.set(b, to);
    delta.set(st, d);
  }

  const hits: LuaTable<number, number> = new LuaTable();
  const seen: LuaTable<number, number> = new LuaTable();
  let stamp = 0;
  const scan = (s: string): number => {
    stamp++;
    let n = 0;
    let st = 1;
    for (let i = 1; i <= s.length; i++) {
      st = delta.get(st).get(byte(s, i)) ?? 1;
      const o = out.get(st);
      if (o !== undefined) {
        for (const g of o) {
          if (seen.get(g) !== stamp) {
            seen.set(g, stamp);
            n++;
            hits.set(n, g);
          }
        }
      }
    }
    return n;
  };
  return { scan, hits };
}
