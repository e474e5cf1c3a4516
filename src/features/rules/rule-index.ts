/**
 * The rules index, decided at compile time: for each rule, the facts of a request that a lookup can check
 * (host, then path, extension or method) and the conditions such a lookup already guarantees.
 *
 * A request only evaluates the rules its lookups point at, in declaration order (every list of the index is
 * in rule order, and the runtime merges the lists it gets). A rule appears at most once among the lists one
 * request gets: its keys of one kind are made disjoint here (a prefix drops the longer prefixes and exact
 * paths it covers, a `*.example.com` the hosts under it), and a rule is filed under one kind only.
 *
 * - Host (`host` condition): exact hosts and `*.suffix` wildcards each get their own share of the index; rules
 *   without a host condition are in the share every request looks at.
 * - Inside a share: exact paths in a hash, path prefixes (also the literal start of a glob, and of a path
 *   regex anchored with `^`) in a byte trie, extensions in a hash, methods in a hash, and the rest (rules whose
 *   conditions cannot be looked up: headers, cookies, query, country, CIDR, user agent, `any`, `not`, an
 *   unanchored path regex) in one list.
 */
import type { RulesIndexData, RulesPathIndex } from "../../contract/index.js";
import { members, size } from "../shared/regex/bytes.js";
import { parsePattern, type RegexNode } from "../shared/regex/index.js";
import { extensionOf } from "./analysis.js";
import type { CondNode, PathAlt } from "./conditions.js";

type PathNode = Extract<CondNode, { t: "path" }>;
type HostNode = Extract<CondNode, { t: "host" }>;

/** How a rule is found inside its host's share of the index. */
export type RuleLookup =
  | { kind: "path"; exact: string[]; prefix: string[] }
  | { kind: "ext" | "method"; keys: string[] }
  | { kind: "rest" };

export interface RuleKeys {
  /** Exact hosts and `.suffix`es (for `*.suffix`), disjoint; undefined: the rule is for every host. */
  hosts?: { exact: string[]; suffix: string[] };
  lookup: RuleLookup;
  /** Conjuncts that hold whenever a lookup finds the rule: the runtime does not evaluate them again. */
  implied: Set<CondNode>;
}

/** Items of a sequence, nested sequences (groups) flattened. */
function seqItems(n: RegexNode): RegexNode[] {
  if (n.k !== "seq") return [n];
  return n.items.flatMap(seqItems);
}

/**
 * The literal text every path a regex matches starts with ("" when there is none): the printable ASCII bytes
 * right after a leading `^`, up to the first item that is not one fixed byte. Path regexes match
 * case-sensitively, so a one-byte class is that byte.
 */
export function regexLiteralPrefix(source: string): string {
  let out = literalPrefixes.get(source);
  if (out !== undefined) return out;
  out = "";
  const parsed = parsePattern(source);
  const items = parsed.ok ? seqItems(parsed.ast) : [];
  if (items[0]?.k === "assert" && items[0].a === "start") {
    for (const n of items.slice(1)) {
      if (n.k !== "char" || size(n.set) !== 1) break;
      const b = members(n.set)[0]!;
      if (b < 0x20 || b > 0x7e) break;
      out += String.fromCharCode(b);
    }
  }
  literalPrefixes.set(source, out);
  return out;
}

/** Patterns are parsed once per process for this (the analysis and the lowering both ask). */
const literalPrefixes = new Map<string, string>();

/** The start every path an alternative matches begins with, and whether it is the whole path. */
function altKey(alt: PathAlt): { key: string; exact: boolean } {
  switch (alt.kind) {
    case "exact":
      return { key: alt.value, exact: true };
    case "prefix":
      return { key: alt.value, exact: false };
    case "glob":
      return { key: alt.literal, exact: false };
    case "regex":
      return { key: regexLiteralPrefix(alt.value), exact: false };
  }
}

/** Prefixes with those that start with another one removed, sorted, and the exact paths none of them covers. */
function disjointPaths(exact: string[], prefix: string[]): { exact: string[]; prefix: string[] } {
  const sorted = [...new Set(prefix)].sort();
  const kept: string[] = [];
  // sorted, a prefix comes right before the strings it starts; keep the first of each run
  for (const p of sorted) if (kept.length === 0 || !p.startsWith(kept[kept.length - 1]!)) kept.push(p);
  const covered = (s: string) => kept.some((p) => s.startsWith(p));
  return { exact: [...new Set(exact)].filter((e) => !covered(e)).sort(), prefix: kept };
}

function disjointHosts(h: HostNode): { exact: string[]; suffix: string[] } {
  const suffix = [...new Set(h.suffix)].filter((s) => !h.suffix.some((o) => o !== s && s.endsWith(o))).sort();
  const exact = [...new Set(h.exact)].filter((e) => !suffix.some((s) => e.endsWith(s))).sort();
  return { exact, suffix };
}

/** The index keys of a rule (its conjuncts in normal form). */
export function ruleKeys(conj: CondNode[]): RuleKeys {
  const implied = new Set<CondNode>();
  const host = conj.find((c): c is HostNode => c.t === "host");
  let hosts: RuleKeys["hosts"];
  if (host) {
    hosts = disjointHosts(host);
    implied.add(host);
  }
  const path = conj.find((c): c is PathNode => c.t === "path");
  const ext = conj.find((c): c is Extract<CondNode, { t: "ext" }> => c.t === "ext");
  const method = conj.find((c): c is Extract<CondNode, { t: "method" }> => c.t === "method");

  let byPath: Extract<RuleLookup, { kind: "path" }> | undefined;
  if (path) {
    const keys = path.alts.map(altKey);
    // a path any alternative of which can start anywhere ("" prefix) tells the index nothing
    if (keys.every((k) => k.exact || k.key !== "")) {
      byPath = { kind: "path", ...disjointPaths(keys.filter((k) => k.exact).map((k) => k.key), keys.filter((k) => !k.exact).map((k) => k.key)) };
    }
  }
  // "/" (or a glob like "/*.png") matches nearly every path: an extension or a method narrows more
  const weak = byPath === undefined || byPath.prefix.some((p) => p.length <= 1);
  if (byPath && !weak) {
    if (path!.alts.every((a) => a.kind === "exact" || a.kind === "prefix")) implied.add(path!);
    return { hosts, lookup: byPath, implied };
  }
  if (ext) {
    implied.add(ext);
    return { hosts, lookup: { kind: "ext", keys: [...ext.set] }, implied };
  }
  const pathExts = path?.alts.map(fixedExtension);
  if (pathExts && pathExts.every((e) => e !== undefined)) return { hosts, lookup: { kind: "ext", keys: [...new Set(pathExts)].sort() }, implied };
  if (method) {
    implied.add(method);
    return { hosts, lookup: { kind: "method", keys: [...method.set] }, implied };
  }
  if (byPath) {
    if (path!.alts.every((a) => a.kind === "exact" || a.kind === "prefix")) implied.add(path!);
    return { hosts, lookup: byPath, implied };
  }
  return { hosts, lookup: { kind: "rest" }, implied };
}

/**
 * The extension every path an alternative matches has (lower case, as the runtime computes it), if any:
 * an exact path's, or a glob's whose text after the last `*` is `<no slash>.<ext>`.
 */
function fixedExtension(alt: PathAlt): string | undefined {
  // ASCII only: the runtime lower-cases bytes, JavaScript lower-cases characters
  const ascii = (e: string | undefined) => (e !== undefined && /^[\x21-\x7e]+$/.test(e) ? e : undefined);
  if (alt.kind === "exact") return ascii(extensionOf(alt.value));
  if (alt.kind !== "glob") return undefined;
  const tail = alt.value.slice(alt.value.lastIndexOf("*") + 1);
  const m = /^[^/]*\.([^./]+)$/.exec(tail);
  return m ? ascii(m[1]!.toLowerCase()) : undefined;
}

/** The conjuncts a lookup does not guarantee: what the runtime still evaluates for a candidate. */
export function residual(conj: CondNode[], keys: RuleKeys): CondNode[] {
  return conj.filter((c) => !keys.implied.has(c));
}

// ---- the index as the runtime gets it -------------------------------------------------------------------

function add(m: Record<string, number[]>, key: string, i: number): void {
  (m[key] ??= []).push(i);
}

class ShareBuilder {
  exact: Record<string, number[]> = {};
  prefix = new Map<string, number[]>();
  ext: Record<string, number[]> = {};
  method: Record<string, number[]> = {};
  rest: number[] = [];

  add(lookup: RuleLookup, i: number): void {
    switch (lookup.kind) {
      case "path":
        for (const e of lookup.exact) add(this.exact, e, i);
        for (const p of lookup.prefix) {
          const l = this.prefix.get(p);
          if (l) l.push(i);
          else this.prefix.set(p, [i]);
        }
        return;
      case "ext":
        for (const e of lookup.keys) add(this.ext, e, i);
        return;
      case "method":
        for (const m of lookup.keys) add(this.method, m, i);
        return;
      case "rest":
        this.rest.push(i);
    }
  }

  data(): RulesPathIndex {
    const nonEmpty = (m: Record<string, number[]>) => (Object.keys(m).length > 0 ? m : undefined);
    return {
      exact: nonEmpty(this.exact),
      prefix: this.prefix.size > 0 ? [...this.prefix].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([p, rules]) => ({ p, rules })) : undefined,
      ext: nonEmpty(this.ext),
      method: nonEmpty(this.method),
      rest: this.rest.length > 0 ? this.rest : undefined,
    };
  }
}

/** The index the runtime looks rules up in; rule positions are 0-based, every list in rule order. */
export function buildRulesIndex(keys: RuleKeys[]): RulesIndexData {
  let any: ShareBuilder | undefined;
  const hosts = new Map<string, ShareBuilder>();
  const suffixes = new Map<string, ShareBuilder>();
  const share = (m: Map<string, ShareBuilder>, k: string) => {
    let s = m.get(k);
    if (!s) m.set(k, (s = new ShareBuilder()));
    return s;
  };
  keys.forEach((k, i) => {
    if (!k.hosts) (any ??= new ShareBuilder()).add(k.lookup, i);
    else {
      for (const h of k.hosts.exact) share(hosts, h).add(k.lookup, i);
      for (const s of k.hosts.suffix) share(suffixes, s).add(k.lookup, i);
    }
  });
  const shares = (m: Map<string, ShareBuilder>) => (m.size > 0 ? Object.fromEntries([...m].map(([k, s]) => [k, s.data()])) : undefined);
  return { any: any?.data(), host: shares(hosts), hostSuffix: shares(suffixes) };
}

// ---- compile-time lookups -------------------------------------------------------------------------------

/**
 * The rules that may match a request for a path, whatever its host (the analysis evaluates hosts itself):
 * the same lookups as the runtime's, over every host's share at once. Candidates come out in rule order.
 */
export class PathLookup {
  private readonly exact = new Map<string, number[]>();
  private readonly prefix = new Map<string, number[]>();
  private readonly prefixLengths: number[];
  private readonly ext = new Map<string, number[]>();
  private readonly method = new Map<string, number[]>();
  private readonly rest: number[] = [];

  constructor(keys: RuleKeys[]) {
    const push = (m: Map<string, number[]>, k: string, i: number) => {
      const l = m.get(k);
      if (!l) m.set(k, [i]);
      else if (l[l.length - 1] !== i) l.push(i);
    };
    keys.forEach((k, i) => {
      const l = k.lookup;
      if (l.kind === "path") {
        for (const e of l.exact) push(this.exact, e, i);
        for (const p of l.prefix) push(this.prefix, p, i);
      } else if (l.kind === "ext") for (const e of l.keys) push(this.ext, e, i);
      else if (l.kind === "method") for (const m of l.keys) push(this.method, m, i);
      else this.rest.push(i);
    });
    this.prefixLengths = [...new Set([...this.prefix.keys()].map((p) => p.length))].sort((a, b) => a - b);
  }

  /** Candidate rules for `path` and `method`, in rule order (each once). */
  *candidates(path: string, method: string): Generator<number> {
    const lists: number[][] = [];
    const push = (l: number[] | undefined) => l && lists.push(l);
    push(this.exact.get(path));
    for (const n of this.prefixLengths) {
      if (n > path.length) break;
      push(this.prefix.get(path.slice(0, n)));
    }
    const e = extensionOf(path);
    if (e !== undefined) push(this.ext.get(e));
    push(this.method.get(method));
    push(this.rest);
    yield* mergeInOrder(lists);
  }
}

/** The union of ascending lists, ascending, each value once. */
export function* mergeInOrder(lists: number[][]): Generator<number> {
  const at = lists.map(() => 0);
  let last = -1;
  for (;;) {
    let best = -1;
    let from = -1;
    for (let j = 0; j < lists.length; j++) {
      const v = lists[j]![at[j]!];
      if (v !== undefined && (best < 0 || v < best)) {
        best = v;
        from = j;
      }
    }
    if (from < 0) return;
    at[from]!++;
    if (best !== last) yield best;
    last = best;
  }
}
