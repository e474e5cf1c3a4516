import type { RulesIndexData, RulesPathIndex } from "../../../src/contract/index";
import { extension, host, method, path } from "./facts";

/**
 * The rules index at run time (built by src/features/rules/rule-index.ts): a request gets the lists of rule
 * positions its host, path, extension and method point at, and walks them merged, in rule order. A rule is
 * in at most one of the lists one request gets, so no rule is evaluated twice.
 */

/** A node of the prefix trie: children by byte (0-255), and at key RULES the rules whose prefix ends here. */
type TrieNode = LuaTable<number, TrieNode | number[]>;
const RULES = 256;

interface Share {
  exact?: LuaTable<string, number[]>;
  trie?: TrieNode;
  ext?: LuaTable<string, number[]>;
  method?: LuaTable<string, number[]>;
  rest?: number[];
}

function buildTrie(prefixes: { p: string; rules: number[] }[]): TrieNode {
  const root: TrieNode = new LuaTable();
  for (const { p, rules } of prefixes) {
    let node = root;
    for (let i = 1; i <= p.length; i++) {
      const b = string.byte(p, i);
      let child = node.get(b) as TrieNode | undefined;
      if (child === undefined) {
        child = new LuaTable();
        node.set(b, child);
      }
      node = child;
    }
    node.set(RULES, rules);
  }
  return root;
}

function toShare(d: RulesPathIndex | undefined): Share | undefined {
  if (d === undefined) return undefined;
  return {
    exact: d.exact as LuaTable<string, number[]> | undefined,
    trie: d.prefix === undefined ? undefined : buildTrie(d.prefix),
    ext: d.ext as LuaTable<string, number[]> | undefined,
    method: d.method as LuaTable<string, number[]> | undefined,
    rest: d.rest,
  };
}

function toShares(d: Record<string, RulesPathIndex> | undefined): LuaTable<string, Share> | undefined {
  if (d === undefined) return undefined;
  const out = new LuaTable<string, Share>();
  for (const [k, v] of pairs(d)) out.set(k as string, toShare(v)!);
  return out;
}

// the lists of the current request: lists[1..count], each walked from cursor[j] (0-based)
const lists = new LuaTable<number, number[]>();
const cursor = new LuaTable<number, number>();
let count = 0;

function push(l: number[] | undefined): void {
  if (l === undefined) return;
  count++;
  lists.set(count, l);
  cursor.set(count, 0);
}

function gather(s: Share): void {
  if (s.exact !== undefined) push(s.exact.get(path()));
  const trie = s.trie;
  if (trie !== undefined) {
    const p = path();
    let node: TrieNode | undefined = trie;
    for (let i = 1; i <= p.length; i++) {
      node = node.get(string.byte(p, i)) as TrieNode | undefined;
      if (node === undefined) break;
      const here = node.get(RULES) as number[] | undefined;
      if (here !== undefined) push(here);
    }
  }
  if (s.ext !== undefined) {
    const e = extension();
    if (e !== "") push(s.ext.get(e));
  }
  if (s.method !== undefined) push(s.method.get(method()));
  if (s.rest !== undefined) push(s.rest);
}

/** Gathers the lists of the current request; returns how many there are. */
export type Lookup = (this: void) => number;

/** The lookup of an index. */
export function compileLookup(data: RulesIndexData): Lookup {
  const any = toShare(data.any);
  const hosts = toShares(data.host);
  const suffixes = toShares(data.hostSuffix);
  return () => {
    count = 0;
    if (any !== undefined) gather(any);
    if (hosts !== undefined) {
      const s = hosts.get(host());
      if (s !== undefined) gather(s);
    }
    if (suffixes !== undefined) {
      // "*.example.com" is the share ".example.com": every suffix of the host that starts at a dot (not the first byte)
      const h = host();
      let from = 2;
      while (true) {
        const [dot] = string.find(h, ".", from, true);
        if (dot === undefined) break;
        const s = suffixes.get(string.sub(h, dot));
        if (s !== undefined) gather(s);
        from = dot + 1;
      }
    }
    return count;
  };
}

/**
 * Walks the gathered lists merged in rule order, calling `visit` with each rule position until it returns
 * true (the request is decided).
 */
export function walk(n: number, visit: (this: void, i: number) => boolean): void {
  if (n === 0) return;
  if (n === 1) {
    for (const i of lists.get(1)) if (visit(i)) return;
    return;
  }
  while (true) {
    let best = -1;
    let from = 0;
    for (let j = 1; j <= n; j++) {
      const l = lists.get(j);
      const k = cursor.get(j);
      if (k < l.length) {
        const i = l[k];
        if (best < 0 || i < best) {
          best = i;
          from = j;
        }
      }
    }
    if (from === 0) return;
    cursor.set(from, cursor.get(from) + 1);
    if (visit(best)) return;
  }
}
