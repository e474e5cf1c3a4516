/**
 * The rules index (src/features/rules/rule-index.ts, lua-src/features/rules/lookup.ts): it only narrows the
 * rules a request evaluates; which rules match, and in which order, is what a linear first-match scan in
 * declaration order gives. Proven over HTTP against a reference evaluator written from docs/rules.md.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compile } from "../../src/compile.js";
import { CoverCandidates, covers, prepare } from "../../src/features/rules/analysis.js";
import { conjuncts } from "../../src/features/rules/conditions.js";
import { buildRulesIndex, regexLiteralPrefix, residual, ruleKeys } from "../../src/features/rules/rule-index.js";
import { parsePattern } from "../../src/features/shared/regex/index.js";
import type { Condition, Policy, Rule } from "../../src/policy/types.js";
import { bootEdge, type Edge } from "../support/edge.js";
import { http, luaErrors } from "../support/http.js";
import { startMockOrigin, type MockOrigin } from "../support/mock-origin.js";
import { referenceFind } from "../support/regex-reference.js";

let origin: MockOrigin;
beforeAll(async () => {
  origin = await startMockOrigin();
});
afterAll(async () => {
  await origin?.close();
});

const keysOf = (when: Condition) => ruleKeys(conjuncts(when));

describe("rules index: what each rule is filed under", () => {
  it("files by host first, then by path, keeping each kind's keys disjoint", () => {
    const k = keysOf({ host: ["a.example.test", "*.example.test", "*.x.example.test", "B.test"], path: ["/a/b", { prefix: "/a/" }, { prefix: "/a/c/" }, "/z"] });
    expect(k.hosts).toEqual({ exact: ["b.test"], suffix: [".example.test"] });
    expect(k.lookup).toEqual({ kind: "path", exact: ["/z"], prefix: ["/a/"] });
    // exact paths and prefixes are all the path condition says: nothing left to evaluate
    const conj = conjuncts({ host: ["a.test"], path: { prefix: "/a/" }, header: { name: "X-A" } });
    expect(residual(conj, ruleKeys(conj)).map((c) => c.t)).toEqual(["header"]);
  });

  it("files globs and ^-anchored regexes by their literal start, and still evaluates them", () => {
    const glob = conjuncts({ path: "/img/*.png" });
    expect(ruleKeys(glob).lookup).toEqual({ kind: "path", exact: [], prefix: ["/img/"] });
    expect(residual(glob, ruleKeys(glob))).toHaveLength(1);
    expect(keysOf({ path: { regex: "^/u/[0-9]+$" } }).lookup).toEqual({ kind: "path", exact: [], prefix: ["/u/"] });
    expect(regexLiteralPrefix("^(?:/api)/v[12]/")).toBe("/api/v");
    expect(regexLiteralPrefix("^/a\\.b")).toBe("/a.b");
    expect(regexLiteralPrefix("/api")).toBe("");
    expect(regexLiteralPrefix("^/(a|b)")).toBe("/");
    // an unanchored regex can match anywhere: nothing to look up
    expect(keysOf({ path: { regex: "[0-9]{3}" } }).lookup).toEqual({ kind: "rest" });
  });

  it("prefers an extension or a method to a prefix that matches nearly every path", () => {
    expect(keysOf({ path: "/*.png" }).lookup).toEqual({ kind: "ext", keys: ["png"] });
    expect(keysOf({ path: { prefix: "/" }, extension: ["PDF"] }).lookup).toEqual({ kind: "ext", keys: ["pdf"] });
    expect(keysOf({ path: { prefix: "/" }, method: ["POST"] }).lookup).toEqual({ kind: "method", keys: ["POST"] });
    expect(keysOf({ path: { prefix: "/" } }).lookup).toEqual({ kind: "path", exact: [], prefix: ["/"] });
    expect(keysOf({ header: { name: "X-A" } }).lookup).toEqual({ kind: "rest" });
    expect(keysOf({ any: [{ path: "/a" }, { path: "/b" }] }).lookup).toEqual({ kind: "rest" });
  });

  it("builds one share per host and one for every host, each list in rule order", () => {
    const when: Condition[] = [{ path: "/a" }, { host: ["h.test"], path: "/a" }, { extension: ["png"] }, { header: { name: "X" } }, { path: "/a" }, { method: ["GET"] }, { host: ["*.w.test"] }];
    expect(buildRulesIndex(when.map(keysOf))).toEqual({
      any: { exact: { "/a": [0, 4] }, ext: { png: [2] }, method: { GET: [5] }, rest: [3] },
      host: { "h.test": { exact: { "/a": [1] } } },
      hostSuffix: { ".w.test": { rest: [6] } },
    });
  });
});

describe("rules analysis: compares a rule only with the rules that may cover it", () => {
  it("finds the same covering rules as comparing every pair", () => {
    const seg = fc.constantFrom("a", "b", "api", "x.png");
    const cond: fc.Arbitrary<Condition> = fc.record(
      {
        path: fc.oneof(
          seg.map((s) => `/${s}`),
          seg.map((s) => ({ prefix: `/${s}` })),
          seg.map((s) => `/${s}/*.png`),
          fc.constant({ regex: "^/a/[0-9]+$" }),
          fc.array(seg.map((s) => `/${s}/x`), { minLength: 1, maxLength: 2 }),
        ),
        extension: fc.uniqueArray(fc.constantFrom("png", "jpg"), { minLength: 1 }),
        method: fc.uniqueArray(fc.constantFrom("GET", "POST"), { minLength: 1 }),
        host: fc.uniqueArray(fc.constantFrom("a.test", "*.a.test", "b.a.test", "*.test"), { minLength: 1 }),
        header: fc.record({ name: fc.constantFrom("X-A", "X-B") }),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.array(cond, { maxLength: 30 }), (conds) => {
        const prepared = conds.map((c) => prepare(conjuncts(c)));
        const finder = new CoverCandidates(prepared);
        prepared.forEach((b, j) => {
          const all = prepared.slice(0, j).flatMap((a, i) => (covers(a, b) ? [i] : []));
          const found = finder.candidates(b).filter((i) => covers(prepared[i]!, b));
          expect(found).toEqual(all);
          finder.add(j, b);
        });
      }),
      { numRuns: 300 },
    );
  });
});

// ---------------------------------------------------------------------------------------------------------
// over HTTP

interface Req {
  path: string;
  method: "GET" | "POST" | "HEAD";
  host: string;
  header?: string;
}

/** A glob as docs/rules.md defines it: `*` is any bytes, the rest is literal. */
function globHolds(glob: string, path: string): boolean {
  const re = glob
    .split("*")
    .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
    .join("[\\s\\S]*");
  return new RegExp(`^${re}$`).test(path);
}

function pathHolds(p: NonNullable<Condition["path"]>, path: string): boolean {
  if (Array.isArray(p)) return p.some((x) => pathHolds(x, path));
  if (typeof p === "string") return p.includes("*") ? globHolds(p, path) : p === path;
  if (p.exact !== undefined) return p.exact === path;
  if (p.prefix !== undefined) return path.startsWith(p.prefix);
  if (p.glob !== undefined) return globHolds(p.glob, path);
  const parsed = parsePattern(p.regex!);
  if (!parsed.ok) throw new Error("bad pattern in a test");
  return referenceFind(parsed.ast, Buffer.from(path), false);
}

/** The reference: docs/rules.md's conditions, evaluated directly on a request. */
function holds(c: Condition | undefined, r: Req): boolean {
  if (!c) return true;
  const host = r.host.toLowerCase();
  const ext = /\.([^./]+)$/.exec(r.path)?.[1]?.toLowerCase();
  if (c.path !== undefined && !pathHolds(c.path, r.path)) return false;
  if (c.extension && !c.extension.some((e) => e.toLowerCase() === ext)) return false;
  if (c.method && !c.method.includes(r.method)) return false;
  if (c.host && !c.host.some((h) => (h.startsWith("*.") ? host.endsWith(h.slice(1).toLowerCase()) : host === h.toLowerCase()))) return false;
  if (c.header) {
    const v = r.header;
    if (c.header.equals !== undefined ? v !== c.header.equals : c.header.exists === false ? v !== undefined : v === undefined) return false;
  }
  if (c.all && !c.all.every((x) => holds(x, r))) return false;
  if (c.any && !c.any.some((x) => holds(x, r))) return false;
  if (c.not && holds(c.not, r)) return false;
  return true;
}

/** The rules that apply to a request: first match in declaration order, `continue` going on. */
function reference(rules: Rule[], r: Req): string[] {
  const out: string[] = [];
  for (const rule of rules) {
    if (!holds(rule.when, r)) continue;
    out.push(rule.name);
    if (!rule.continue) break;
  }
  return out;
}

/** Each rule marks the response with `X-R-<name>`; the reply says which rules applied. */
function marking(name: string, when: Condition | undefined, cont = false): Rule {
  return { name, ...(when ? { when } : {}), then: { responseHeaders: { set: { [`X-R-${name}`]: "1" } } }, ...(cont ? { continue: true } : {}) };
}

async function applied(edge: Edge, r: Req): Promise<string[]> {
  const res = await http(edge, r.path, { method: r.method, headers: { host: r.host, ...(r.header !== undefined ? { "x-t": r.header } : {}) } });
  return Object.keys(res.headers)
    .filter((h) => h.startsWith("x-r-"))
    .map((h) => h.slice(4))
    .sort();
}

function edgePolicy(rules: Rule[]): Omit<Policy, "listen"> {
  return { name: "rules-index", origins: { app: { servers: [{ address: origin.address }], retries: 0 } }, rules };
}

describe("rules index over HTTP: the order of declaration decides", () => {
  let edge: Edge;
  const rules: Rule[] = [
    // a rule the index cannot narrow (header) before an exact path, and an exact path before a header rule
    { name: "hdr-first", when: { header: { name: "X-T", equals: "1" } }, then: { respond: { status: 200, body: "hdr-first" } } },
    { name: "exact-o", when: { path: "/o" }, then: { respond: { status: 200, body: "exact-o" } } },
    { name: "exact-p", when: { path: "/p" }, then: { respond: { status: 200, body: "exact-p" } } },
    { name: "hdr-after", when: { header: { name: "X-T", equals: "2" } }, then: { respond: { status: 200, body: "hdr-after" } } },
    // a path regex (filed under its literal start "/r/") before an exact path it also matches
    { name: "regex-r", when: { path: { regex: "^/r/[0-9]+$" } }, then: { respond: { status: 200, body: "regex-r" } } },
    { name: "exact-r1", when: { path: ["/r/1", "/r/abc"] }, then: { respond: { status: 200, body: "exact-r" } } },
    // an unanchored regex (not indexed) before an exact path
    { name: "regex-any", when: { path: { regex: "[0-9]{3}" } }, then: { respond: { status: 200, body: "regex-any" } } },
    { name: "exact-n", when: { path: ["/n/123", "/n/12"] }, then: { respond: { status: 200, body: "exact-n" } } },
    // nested prefixes, both orders
    { name: "short-first", when: { path: { prefix: "/s/" } }, then: { respond: { status: 200, body: "short" } } },
    { name: "long-after", when: { path: { prefix: "/s/long/" } }, then: { respond: { status: 200, body: "long" } } },
    { name: "long-first", when: { path: { prefix: "/l/long/" } }, then: { respond: { status: 200, body: "long" } } },
    { name: "short-after", when: { path: { prefix: "/l/" } }, then: { respond: { status: 200, body: "short" } } },
    // host, method and prefix combinations
    { name: "a-api", when: { host: ["a.test"], path: { prefix: "/api/" } }, then: { respond: { status: 200, body: "a-api" } } },
    { name: "b-post", when: { host: ["*.b.test"], method: ["POST"] }, then: { respond: { status: 200, body: "b-post" } } },
    { name: "delete", when: { method: ["DELETE"] }, then: { respond: { status: 200, body: "delete" } } },
    { name: "api", when: { path: { prefix: "/api/" }, method: ["GET"] }, then: { respond: { status: 200, body: "api" } } },
    { name: "b-any", when: { host: ["b.test", "*.b.test"] }, then: { respond: { status: 200, body: "b-any" } } },
    // case: paths are case-sensitive, extensions and hosts are not
    { name: "page", when: { path: "/Page/1" }, then: { respond: { status: 200, body: "page" } } },
    { name: "pdf", when: { extension: ["pdf"] }, then: { respond: { status: 200, body: "pdf" } } },
    { name: "png-glob", when: { path: "/*.png" }, then: { respond: { status: 200, body: "png-glob" } } },
    // continue chains across indexed and unindexed rules
    { name: "c1", when: { path: { prefix: "/c/" } }, then: { responseHeaders: { set: { "X-1": "1", "X-Last": "c1" } } }, continue: true },
    { name: "c2", when: { header: { name: "X-T", equals: "c" } }, then: { responseHeaders: { set: { "X-2": "1", "X-Last": "c2" } } }, continue: true },
    { name: "c3", when: { path: "/c/x" }, then: { responseHeaders: { set: { "X-3": "1", "X-Last": "c3" } } } },
    { name: "c4", when: { path: { prefix: "/c/" } }, then: { responseHeaders: { set: { "X-4": "1" } } } },
  ];

  beforeAll(async () => {
    edge = await bootEdge(edgePolicy(rules));
  });
  afterAll(async () => {
    await edge?.stop();
  });

  const body = async (path: string, opts: { method?: "GET" | "POST" | "DELETE"; headers?: Record<string, string> } = {}) => (await http(edge, path, opts)).body;

  it("an unindexed rule before an indexed one wins, and the other way round", async () => {
    expect(await body("/o", { headers: { "x-t": "1" } })).toBe("hdr-first");
    expect(await body("/o")).toBe("exact-o");
    expect(await body("/p", { headers: { "x-t": "2" } })).toBe("exact-p");
    expect(await body("/q", { headers: { "x-t": "2" } })).toBe("hdr-after");
  });

  it("a path regex before an exact path: the regex wins where it matches", async () => {
    expect(await body("/r/1")).toBe("regex-r");
    expect(await body("/r/abc")).toBe("exact-r");
    expect(await body("/n/123")).toBe("regex-any");
    expect(await body("/n/12")).toBe("exact-n");
  });

  it("nested prefixes apply in the order they are declared", async () => {
    expect(await body("/s/long/x")).toBe("short");
    expect(await body("/l/long/x")).toBe("long");
    expect(await body("/l/other")).toBe("short");
  });

  it("combines host, method and path", async () => {
    expect(await body("/api/x", { headers: { host: "a.test" } })).toBe("a-api");
    expect(await body("/api/x", { headers: { host: "c.test" } })).toBe("api");
    expect(await body("/api/x", { method: "POST", headers: { host: "x.b.test" } })).toBe("b-post");
    expect(await body("/api/x", { headers: { host: "x.b.test" } })).toBe("api");
    expect(await body("/other", { headers: { host: "x.y.b.test" } })).toBe("b-any");
    expect(await body("/other", { headers: { host: "b.test" } })).toBe("b-any");
    expect(await body("/other", { method: "POST", headers: { host: "b.test" } })).toBe("b-any");
    expect(await body("/api/x", { method: "DELETE", headers: { host: "a.test" } })).toBe("a-api");
    expect(await body("/other", { method: "DELETE" })).toBe("delete");
  });

  it("paths are case-sensitive; extensions and hosts are not", async () => {
    expect(await body("/Page/1")).toBe("page");
    expect((await http(edge, "/page/1")).body).not.toBe("page");
    expect(await body("/doc/x.PDF")).toBe("pdf");
    expect(await body("/api/x", { headers: { host: "A.Test" } })).toBe("a-api");
    expect(await body("/other", { headers: { host: "X.B.TEST" } })).toBe("b-any");
    // the extension index finds "/x.PNG" for a "/*.png" glob, and the glob (case-sensitive) says no
    expect(await body("/d/x.png")).toBe("png-glob");
    expect(await body("/d/x.PNG")).not.toBe("png-glob");
  });

  it("applies continue rules across indexed and unindexed rules, in order", async () => {
    const r = await http(edge, "/c/x", { headers: { "x-t": "c" } });
    expect([r.headers["x-1"], r.headers["x-2"], r.headers["x-3"], r.headers["x-4"], r.headers["x-last"]]).toEqual(["1", "1", "1", undefined, "c3"]);
    const s = await http(edge, "/c/y");
    expect([s.headers["x-1"], s.headers["x-2"], s.headers["x-3"], s.headers["x-4"], s.headers["x-last"]]).toEqual(["1", undefined, undefined, "1", "c1"]);
    expect(luaErrors(await edge.errors())).toEqual([]);
  });
});

describe("rules index over HTTP: random rule sets agree with a linear first-match scan", () => {
  it("for every request, the rules applied are the reference's", async () => {
    const segs = ["a", "b", "api", "r"];
    const seg = fc.constantFrom(...segs);
    const pathCond: fc.Arbitrary<NonNullable<Condition["path"]>> = fc.oneof(
      seg.map((s) => `/${s}`),
      seg.map((s) => `/${s}/x.png`),
      seg.map((s) => ({ prefix: `/${s}/` })),
      seg.map((s) => ({ prefix: `/${s}` })),
      fc.constant({ prefix: "/" }),
      seg.map((s) => `/${s}/*.png`),
      fc.constant("/*.jpg"),
      seg.map((s) => `/${s}/*`),
      fc.constant({ regex: "^/r/[0-9]+$" }),
      fc.constant({ regex: "[0-9]{2}" }),
      fc.array(seg.map((s) => `/${s}/x.png`), { minLength: 2, maxLength: 3 }).map((l) => [...new Set(l)]),
    );
    const base = {
      path: pathCond,
      extension: fc.uniqueArray(fc.constantFrom("png", "JPG", "pdf"), { minLength: 1, maxLength: 2 }),
      method: fc.uniqueArray(fc.constantFrom("GET", "POST"), { minLength: 1 }),
      host: fc.uniqueArray(fc.constantFrom("a.test", "*.b.test", "c.b.test", "B.test"), { minLength: 1, maxLength: 2 }),
      header: fc.oneof(fc.constant({ name: "X-T" }), fc.constant({ name: "X-T", equals: "1" }), fc.constant({ name: "X-T", exists: false })),
    };
    const simple = fc.record(base, { requiredKeys: [] });
    const cond: fc.Arbitrary<Condition> = fc.oneof(
      { weight: 6, arbitrary: simple },
      { weight: 1, arbitrary: fc.record({ any: fc.array(simple, { minLength: 1, maxLength: 2 }) }) },
      { weight: 1, arbitrary: fc.record({ path: pathCond, not: simple }) },
    );
    const ruleSet = fc.array(fc.tuple(fc.option(cond, { nil: undefined, freq: 10 }), fc.boolean()), { minLength: 1, maxLength: 25 });
    const request: fc.Arbitrary<Req> = fc.record({
      path: fc.constantFrom("/", "/a", "/a/", "/a/x.png", "/a/x.PNG", "/b/x.png", "/api/v/x.jpg", "/api", "/apix", "/r/12", "/r/ab", "/x.pdf", "/b/c/d.JPG", "/r/x.png"),
      method: fc.constantFrom("GET", "POST", "HEAD"),
      host: fc.constantFrom("a.test", "x.b.test", "c.b.test", "b.test", "B.TEST", "other.test", "A.test"),
      header: fc.constantFrom(undefined, "1", "2"),
    });

    const samples = fc.sample(fc.tuple(ruleSet, fc.array(request, { minLength: 40, maxLength: 40 })), { numRuns: 8, seed: 1414 });
    let compared = 0;
    for (const [set, requests] of samples) {
      const rules = set.map(([when, cont], i) => marking(`r${i}`, when, cont));
      const { bundle } = compile({ ...edgePolicy(rules), listen: { http: 8080 } });
      if (!bundle) continue;
      const edge = await bootEdge(edgePolicy(rules));
      try {
        for (const r of requests) {
          const want = reference(rules, r).sort();
          expect({ request: r, applied: await applied(edge, r) }).toEqual({ request: r, applied: want });
          compared++;
        }
        expect(luaErrors(await edge.errors())).toEqual([]);
      } finally {
        await edge.stop();
      }
    }
    expect(compared).toBeGreaterThanOrEqual(200);
  }, 120_000);
});
