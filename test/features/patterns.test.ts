/**
 * The pattern dialect (src/features/shared/regex/, docs/patterns.md): what a policy's regular expressions
 * may contain, the build-time refusal of patterns that backtrack catastrophically, what the runtime's PCRE
 * does with what the compiler checked, and what the runtime does when PCRE gives up.
 */
import { execa } from "execa";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compile } from "../../src/compile.js";
import { writeBundleAtomic } from "../../src/emit/write.js";
import { freePort, startBundle } from "../../src/runtime/nginx.js";
import { compileWaf } from "../../src/features/waf.js";
import { globMatches, globToRegex } from "../../src/features/rules/conditions.js";
import { analyse, emit, parsePattern, toPcre, type RegexNode } from "../../src/features/shared/regex/index.js";
import { bootEdge, nginxBinary, projectDir, type Edge } from "../support/edge.js";
import { startMockOrigin, type MockOrigin } from "../support/mock-origin.js";
import { codes, diagnostics, policy } from "../support/policy.js";
import { http, luaErrors } from "../support/http.js";
import { waitFor } from "../support/wait.js";
import { prng } from "../support/regex-samples.js";
import { referenceFind } from "../support/regex-reference.js";
import type { Policy, Rule, WafRule } from "../../src/policy/types.js";

let origin: MockOrigin;
beforeAll(async () => {
  origin = await startMockOrigin();
});
afterAll(async () => {
  await origin?.close();
});

const ast = (p: string): RegexNode => {
  const r = parsePattern(p);
  if (!r.ok) throw new Error(`${p}: ${r.error.message}`);
  return r.ast;
};
const refusal = (p: string) => {
  const r = parsePattern(p);
  return r.ok ? undefined : r.error.construct;
};
const verdict = (p: string, ci = false) => analyse(ast(p), ci).verdict;

const wafRule = (pattern: string, extra: Partial<WafRule> = {}): Partial<Policy> => ({ waf: { ruleSets: [], rules: [{ id: "r", target: "path", pattern, ...extra }] } });
const rule = (when: Rule["when"], extra: Partial<Rule> = {}): Partial<Policy> => ({ rules: [{ name: "r", when, then: { deny: true }, ...extra }] });

describe("patterns: the dialect", () => {
  it("accepts the constructs JavaScript and PCRE read alike", () => {
    for (const p of [
      "^/wp-admin",
      "(^|&)debug=1",
      "spam\\.example",
      "^/u/[0-9]+$",
      "[^/]*\\.php",
      "\\bunion\\b",
      "a{2}b{1,3}c{0,}d*?",
      "(?:x|y)(z)",
      "[\\d\\w\\s\\-.]",
      "\\x00\\xff\\t\\n\\r\\f",
      "(?=a)b(?!c)(?<=b)(?<!zz|y)",
      "é+",
      "[\\]a-]",
    ]) {
      expect(refusal(p), p).toBeUndefined();
    }
  });

  it("refuses what the two engines read differently, or what the runtime cannot run, naming the construct", () => {
    const cases: [string, string][] = [
      ["abc\\Qdef", "\\Q"],
      ["(?<=a+)b", "(?<=a+)"],
      ["(?<=a(b|cd))e", "(?<=a(b|cd))"],
      ["\\u0062", "\\u"],
      ["[^]", "[^]"],
      ["[]", "[]"],
      ["a\u0000b", "\\0"],
      ["a\u0001b", "\\x01"],
      ["(?i)admin", "(?i)"],
      ["(?<name>x)", "(?<n"],
      ["(a)\\1", "\\1"],
      ["a*+", "*+"],
      ["(?>a)", "(?>a"],
      ["\\x{41}", "\\x{41}"],
      ["\\v", "\\v"],
      ["\\z", "\\z"],
      ["[[:alpha:]]", "["],
      ["a{,3}", "{"],
      ["a]", "]"],
      ["a**", "**"],
      ["^*", "^*"],
      ["[é]", "é"],
      ["(*UTF8)x", "(*UTF8)"],
      ["x\\", "\\"],
      ["a{1001}", "{1001}"],
    ];
    for (const [p, construct] of cases) expect(refusal(p), p).toBe(construct);
    // patterns are bounded; nesting too
    expect(parsePattern("a".repeat(1025)).ok).toBe(false);
    expect(parsePattern("(".repeat(40) + "a" + ")".repeat(40)).ok).toBe(false);
  });

  it("is written out for PCRE from the parsed form: no capture, $ is the end of the value, bytes escaped", () => {
    expect(toPcre("^/(wp-admin|xmlrpc\\.php)$")).toBe("^/(?:wp-admin|xmlrpc\\.php)\\z");
    expect(toPcre("a\\x00b")).toBe("a\\x00b");
    expect(toPcre("é+")).toBe("(?:\\xc3\\xa9)+");
    expect(toPcre("[\\w.$]+")).toBe("[\\w\\$\\.]+");
    // a custom rule can never reach into its neighbours: each is one group, joined by |
    const [t] = compileWaf({ ruleSets: [], rules: [{ id: "a", target: "path", pattern: "x|y" }, { id: "b", target: "path", pattern: "(z" + ")" }] });
    expect(t!.always).toBe("(?:x|y)|(?:z)");
  });
});

describe("patterns: catastrophic backtracking is found at build time", () => {
  it("exponential: a repetition whose body matches one input in several ways", () => {
    for (const p of ["(a|a)*b", "(a+)+b", "(a*)*b", "(\\w+\\s?)+$", "^(\\d|\\w)+x", "(a|a){0,3}b", "(?:[a-z]+\\.?)+@"]) expect(verdict(p), p).toBe("exponential");
  });

  it("polynomial: repetitions that take turns over one run, or one that can start anywhere in it", () => {
    for (const p of ["\\d+\\d+x", ".*a.*b", "^/api/.*/v1/.*$", "\\d+x", "select.+from", "<a[^>]*?x", "(?=.*x)a"]) expect(verdict(p), p).toBe("polynomial");
  });

  it("linear: anchored, bounded, or separated repetitions; word boundaries taken into account", () => {
    for (const p of ["^\\d+x", "^/api/[^/]*/v1/.*$", "\\bfoo\\w*=", "[^;]{0,60}x", "^(\\d{1,3}\\.){3}\\d{1,3}$", "(\\d+)+", "a+", "^(?=.*x)a", "\\.(casino|loans)\\.example", "<a\\b[^<>]*x"]) {
      expect(verdict(p), p).toBe("linear");
    }
  });

  it("is refused with CDN2091 unless the rule opts in; the opt-in on a safe rule is a warning", () => {
    expect(codes(policy(origin, wafRule("(a+)+b")))).toEqual(["CDN2091"]);
    expect(codes(policy(origin, wafRule("(a+)+b", { unsafeRegex: true })))).toEqual([]);
    expect(codes(policy(origin, wafRule("^/x", { unsafeRegex: true })))).toEqual(["CDN2093"]);
    expect(diagnostics(policy(origin, rule({ path: { regex: "^/a/.*/b/.*$" } })))).toEqual(["CDN2091 /rules/0/when/path/regex"]);
    expect(diagnostics(policy(origin, rule({ any: [{ userAgent: ["bot", "(x+)+y"] }] })))).toEqual(["CDN2091 /rules/0/when/any/0/userAgent/1"]);
    expect(codes(policy(origin, rule({ header: { name: "X-A", matches: "(x+)+y" } }, { unsafeRegex: true })))).toEqual([]);
    expect(codes(policy(origin, rule({ header: { name: "X-A", matches: "^x" } }, { unsafeRegex: true })))).toEqual(["CDN2093"]);
    const d = compile(policy(origin, wafRule("(\\w+\\s?)+$")), { target: "openresty" }).diagnostics[0]!;
    expect(d.message).toMatch(/exponential/);
    expect(d.hint).toMatch(/unsafeRegex/);
  });
});

describe("patterns: a policy that validates never fails open", () => {
  it("the constructs of the issue are refused with a code, the path and the construct", () => {
    const msg = (p: Partial<Policy>) => compile(policy(origin, p), { target: "openresty" }).diagnostics.map((d) => `${d.code} ${d.path} ${d.message}`);
    expect(msg(wafRule("union\\Qselect"))[0]).toMatch(/^CDN3021 \/waf\/rules\/0\/pattern .*\\Q at offset 5/);
    expect(msg(rule({ path: { regex: "(?<=/a+)b" } }))[0]).toMatch(/^CDN5002 \/rules\/0\/when\/path\/regex .*lookbehind/);
    expect(msg(rule({ header: { name: "X-A", matches: "\\u0062" } }))[0]).toMatch(/^CDN5002 \/rules\/0\/when\/header\/matches .*\\u/);
    expect(msg(rule({ userAgent: ["[^]"] }))[0]).toMatch(/^CDN5002 \/rules\/0\/when\/userAgent\/0 .*\[\^\]/);
    expect(msg(wafRule("/admin\u0000.*"))[0]).toMatch(/^CDN3021 .*NUL/);
    expect(codes(policy(origin, wafRule("(a)\\1")))).toEqual(["CDN3024"]);
  });

  it("an empty pattern, or one that matches everything, gets an error (WAF) or a warning with a hint (rules)", () => {
    for (const p of ["", "x*", "^", "$", "(api)?", ".*"]) expect(codes(policy(origin, wafRule(p))), p).toEqual(["CDN3025"]);
    const w = compile(policy(origin, rule({ path: { regex: "" } })), { target: "openresty" }).diagnostics;
    expect(w.map((d) => `${d.severity} ${d.code} ${d.path}`)).toEqual(["warning CDN2092 /rules/0/when/path/regex"]);
    expect(w[0]!.hint).toMatch(/prefix/);
    expect(codes(policy(origin, rule({ header: { name: "X-A", matches: ".*" } })))).toEqual(["CDN2092"]);
    expect(codes(policy(origin, rule({ userAgent: ["bot", "(x)?"] })))).toEqual(["CDN2092"]);
  });

  it("a 100,000-character pattern is a diagnostic, not a crash of the compiler", async () => {
    expect(codes(policy(origin, wafRule("(a|b)".repeat(20_000))))).toEqual(["CDN1006"]); // past the schema's bound
    expect(codes(policy(origin, wafRule("(a|b)".repeat(205))))).toEqual(["CDN2090"]);
    const dir = await projectDir("cdn-patterns-");
    try {
      const file = join(dir, "edge.policy.json");
      await writeFile(file, JSON.stringify(policy(origin, { name: "big", ...wafRule("(a|b)".repeat(20_000)) })));
      const r = await execa("node", [join(import.meta.dirname, "..", "..", "bin", "cdn-build.js"), "validate", file], { reject: false });
      expect(r.exitCode).toBe(1);
      expect(r.stdout + r.stderr).toMatch(/CDN1006 .*\(100000 characters\)/);
      expect(r.stdout + r.stderr).not.toMatch(/internal error|stack/i);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("a custom user-agent rule next to the built-in scanner rule leaves both working (the old \\Q case)", async () => {
    const edge = await bootEdge(policy(origin, { name: "pat", waf: { ruleSets: ["scanners"], rules: [{ id: "old-app", target: "userAgent", pattern: "oldapp/1\\.[0-9]" }, { id: "q", target: "userAgent", pattern: "x\\\\Qy" }] } }));
    try {
      const ua = (v: string) => http(edge, "/x", { headers: { "user-agent": v } }).then((r) => r.status);
      expect(await ua("sqlmap/1.7")).toBe(403);
      expect(await ua("OldApp/1.2")).toBe(403);
      expect(await ua("x\\qy")).toBe(403); // a literal backslash, escaped
      expect(await ua("Mozilla/5.0")).toBe(200);
      expect(luaErrors(await edge.errors())).toEqual([]);
    } finally {
      await edge.stop();
    }
  });

  it("a pattern the runtime's PCRE refuses stops nginx from starting, naming the rule", async () => {
    const port = await freePort();
    const { bundle } = compile(policy(origin, { name: "pat", listen: { http: port, address: "127.0.0.1" }, ...wafRule("^/admin") }), { target: (await nginxBinary()).kind });
    const data = bundle!.files.get("lua/policy_data.lua")!;
    expect(data).toContain('["re"] = "^/admin"');
    // as if the data were edited by hand, or the PCRE were older than the dialect assumes: an unclosed group
    bundle!.files.set("lua/policy_data.lua", data.replace('["re"] = "^/admin"', '["re"] = "^/(admin"'));
    const project = await projectDir("cdn-patterns-");
    try {
      const dir = join(project, "edge");
      await writeBundleAtomic(bundle!, dir);
      // (nginx -t does not run init_by_lua; starting, and so a reload, does)
      const started = startBundle(dir, { port, bin: await nginxBinary(), readyTimeoutMs: 5000 });
      await expect(started).rejects.toThrow(/waf rule r \(path\): the pattern does not compile \(pcre_compile\(\) failed: missing \)/);
      const running = await started.catch(() => undefined);
      await running?.stop();
    } finally {
      await rm(project, { recursive: true, force: true });
    }
  });
});

/** Random patterns of the dialect over a small alphabet, for comparing the runtime with the definition. */
function randomPattern(rnd: () => number, depth = 0): string {
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const atom = (): string => {
    const r = rnd();
    if (r < 0.35) return pick(["a", "b", "A", "-", " ", "_", "é"]);
    if (r < 0.5) return pick([".", "\\d", "\\w", "\\s", "\\W", "\\S", "\\x0b", "\\n", "\\r", "\\.", "\\xe9"]);
    if (r < 0.62) return pick(["[ab]", "[^a]", "[a-c_]", "[\\s\\d]", "[^\\w]", "[\\-.]", "[A-Z]"]);
    if (r < 0.72 && depth < 2) return pick(["(", "(?:"]) + randomPattern(rnd, depth + 1) + ")";
    if (r < 0.8) return pick(["^", "$", "\\b", "\\B"]);
    if (r < 0.86 && depth < 2) return pick(["(?=", "(?!"]) + randomPattern(rnd, depth + 1) + ")";
    if (r < 0.9) return pick(["(?<=a)", "(?<!b)", "(?<=ab|c)", "(?<=\\w)"]);
    return pick(["a", "b"]);
  };
  const quant = () => pick(["", "", "", "*", "+", "?", "{2}", "{1,2}", "{0,}", "*?", "+?", "??"]);
  const seq = () => {
    let s = "";
    const len = 1 + Math.floor(rnd() * 4);
    for (let i = 0; i < len; i++) {
      const a = atom();
      s += a + (/^(\^|\$|\\b|\\B|\(\?[=!<])/.test(a) ? "" : quant());
    }
    return s;
  };
  return rnd() < 0.2 ? seq() + "|" + seq() : seq();
}

const MATCH_LOCATION = `
location = /__regex_find {
  client_body_buffer_size 4m;
  client_max_body_size 4m;
  content_by_lua_block {
    ngx.req.read_body()
    local out = {}
    for line in string.gmatch(ngx.req.get_body_data() or "", "[^\\n]+") do
      local re, subject, opts = line:match("^([^ ]*) ([^ ]*) ([^ ]*)$")
      local from, _, err = ngx.re.find(ngx.decode_base64(subject), ngx.decode_base64(re), opts)
      out[#out + 1] = err and ("error " .. err) or (from and "1" or "0")
    end
    ngx.say(table.concat(out, "\\n"))
  }
}
`;

describe("patterns: the runtime's PCRE runs what the compiler checked", () => {
  let edge: Edge;
  beforeAll(async () => {
    edge = await bootEdge(policy(origin, { name: "pat" }), { patchConf: (conf) => conf.replace(/\n(\s*)location \/ \{/, (m) => `\n${MATCH_LOCATION}${m}`) });
  });
  afterAll(async () => {
    await edge?.stop();
  });

  async function pcreFind(cases: { re: string; subject: Buffer; opts: string }[]): Promise<string[]> {
    const b64 = (b: Buffer | string) => (typeof b === "string" ? Buffer.from(b, "latin1") : b).toString("base64") || "=";
    const res = await http(edge, "/__regex_find", { method: "POST", body: cases.map((c) => `${b64(c.re)} ${b64(c.subject)} ${c.opts}`).join("\n") });
    expect(res.status).toBe(200);
    return res.body.trim().split("\n");
  }

  it("1,000 random patterns on 4 random values each: PCRE finds a match exactly when the dialect's definition does", async () => {
    const rnd = prng(7);
    const alphabet = [..."aabbAB-_ .\n\r\t"].map((c) => c.charCodeAt(0)).concat([0x0b, 0xc3, 0xa9, 0x00]);
    const cases: { re: string; subject: Buffer; opts: string; ast: RegexNode; ci: boolean; source: string }[] = [];
    while (cases.length < 4000) {
      const source = randomPattern(rnd);
      const p = parsePattern(source);
      if (!p.ok) continue; // e.g. a lookbehind that is not fixed-length
      const ci = rnd() < 0.3;
      for (let i = 0; i < 4; i++) {
        const len = Math.floor(rnd() * 8);
        const subject = Buffer.from(Array.from({ length: len }, () => alphabet[Math.floor(rnd() * alphabet.length)]!));
        cases.push({ re: emit(p.ast), subject, opts: ci ? "ijo" : "jo", ast: p.ast, ci, source });
      }
    }
    const got = await pcreFind(cases);
    const wrong = cases
      .map((c, i) => ({ c, pcre: got[i], ref: referenceFind(c.ast, c.subject, c.ci) ? "1" : "0" }))
      .filter((x) => x.pcre !== x.ref)
      .map((x) => `${JSON.stringify(x.c.source)} (${x.c.opts}) on ${JSON.stringify(x.c.subject.toString("latin1"))}: pcre ${x.pcre}, definition ${x.ref}`);
    expect(wrong).toEqual([]);
  });

  it("globs: the linear-time regex matches exactly when the glob does, newlines and any byte included", async () => {
    const rnd = prng(11);
    const cases: { re: string; subject: Buffer; opts: string; glob: string; path: string }[] = [];
    const parts = ["/", "a", "b", "ab", ".", "\n", "é", "%"];
    for (let i = 0; i < 400; i++) {
      let glob = "/";
      for (let k = 0; k < 1 + Math.floor(rnd() * 5); k++) glob += rnd() < 0.35 ? "*" : parts[Math.floor(rnd() * parts.length)];
      let path = "/";
      for (let k = 0; k < Math.floor(rnd() * 8); k++) path += parts[Math.floor(rnd() * parts.length)];
      cases.push({ re: globToRegex(glob).regex, subject: Buffer.from(path, "utf8"), opts: "jo", glob, path });
    }
    const got = await pcreFind(cases);
    const wrong = cases.filter((c, i) => got[i] !== (globMatches(c.glob, c.path) ? "1" : "0")).map((c) => `${JSON.stringify(c.glob)} on ${JSON.stringify(c.path)}`);
    expect(wrong).toEqual([]);
  });

  it("a glob with many stars on a long path costs linear time", async () => {
    const { regex } = globToRegex("/*a*a*a*a*a*b");
    const res = await pcreFind([{ re: regex, subject: Buffer.from("/" + "a".repeat(7000)), opts: "jo" }]);
    expect(res).toEqual(["0"]); // answered at all: a .* per star would be O(n^6) here
  });
});

describe("patterns: when PCRE gives up at runtime (an opted-in pattern hits the match limit)", () => {
  const bomb = "/" + "a".repeat(40) + "!";
  const exponential = "^/(a|aa)+$";

  it("WAF in block mode: the request is refused, one line says so, and a rule that does match still wins", async () => {
    const edge = await bootEdge(
      // one worker: the line is throttled per worker
      policy(origin, { name: "pat", workers: { processes: 1 }, waf: { ruleSets: [], rules: [{ id: "bomb", target: "path", pattern: exponential, unsafeRegex: true }, { id: "marker", target: "path", pattern: "evil" }] } }),
    );
    try {
      origin.reset();
      expect((await http(edge, bomb + "evil")).status).toBe(403);
      await waitFor(async () => (await edge.errorLog()).includes("waf: rule marker matched the path (blocked)"), { what: "the match line" });
      expect((await http(edge, bomb)).status).toBe(403);
      for (let i = 0; i < 4; i++) expect((await http(edge, bomb)).status).toBe(403);
      expect((await http(edge, "/aaaa")).status).toBe(403); // decided quickly: a match
      expect((await http(edge, "/ok")).status).toBe(200);
      const lines = await waitFor(async () => {
        const l = (await edge.errorLog()).split("\n").filter((x) => x.includes("could not be evaluated"));
        return l.length >= 1 && l;
      }, { what: "the undecided line" });
      expect(lines[0]).toMatch(/waf: rule bomb could not be evaluated on the path \(pcre_exec\(\) failed: -8\) \(blocked\), client 127\.0\.0\.1/);
      expect(lines[0]).not.toContain("aaaaaaaaaa"); // never the value
      await new Promise((r) => setTimeout(r, 200));
      expect((await edge.errorLog()).split("\n").filter((x) => x.includes("could not be evaluated")).length).toBe(1); // throttled
      expect(origin.hits("/ok")).toBe(1);
      expect(luaErrors(await edge.errors())).toEqual([]);
    } finally {
      await edge.stop();
    }
  });

  it("WAF in log mode: the request passes and is logged", async () => {
    const edge = await bootEdge(policy(origin, { name: "pat", waf: { mode: "log", ruleSets: [], rules: [{ id: "bomb", target: "path", pattern: exponential, unsafeRegex: true }] } }));
    try {
      expect((await http(edge, bomb)).status).toBe(200);
      await waitFor(async () => (await edge.errorLog()).includes("waf: rule bomb could not be evaluated on the path (pcre_exec() failed: -8) (logged)"), { what: "the undecided line" });
    } finally {
      await edge.stop();
    }
  });

  it("rules engine: a condition PCRE gives up on refuses the request instead of skipping the rule", async () => {
    const edge = await bootEdge(policy(origin, { name: "pat", rules: [{ name: "no-bombs", when: { path: { regex: exponential } }, then: { deny: true }, unsafeRegex: true }] }));
    try {
      const r = await http(edge, bomb);
      expect(r.status).toBe(403);
      expect(r.body).toContain("forbidden by rules");
      expect((await http(edge, "/aaa")).status).toBe(403); // the deny itself
      expect((await http(edge, "/b")).status).toBe(200);
      await waitFor(async () => (await edge.errorLog()).includes("rules: a pattern of rule no-bombs could not be evaluated (pcre_exec() failed: -8), request refused"), { what: "the line" });
      expect(luaErrors(await edge.errors())).toEqual([]);
    } finally {
      await edge.stop();
    }
  });
});

describe("patterns: PCRE's JIT stack", () => {
  it("is large enough for a group repeated 30,000 times over a 60 KB body (the default stops at a few thousand)", async () => {
    const edge = await bootEdge(policy(origin, { name: "pat", workers: { processes: 1 }, waf: { mode: "log", ruleSets: [], body: { maxSize: "64k" }, rules: [{ id: "csv", target: "body", pattern: "^(?:[a-z]+,)+x$" }] } }));
    try {
      expect((await http(edge, "/p", { method: "POST", body: "ab,".repeat(20_000) + "x" })).status).toBe(200);
      await waitFor(async () => (await edge.errorLog()).includes("waf: rule csv matched the body (logged)"), { what: "the match line" });
      expect(await edge.errorLog()).not.toContain("could not be evaluated");
    } finally {
      await edge.stop();
    }
  });
});

describe("waf: the inspection budget", () => {
  it("a request with more bytes to inspect than the budget is decided by the mode", async () => {
    const block = await bootEdge(policy(origin, { name: "pat", waf: { budget: "2k" } }));
    const log = await bootEdge(policy(origin, { name: "pat", waf: { budget: "2k", mode: "log" } }));
    try {
      const q = "/s?q=" + "x".repeat(3000);
      expect((await http(block, "/s?q=" + "x".repeat(1500))).status).toBe(200);
      expect((await http(block, q)).status).toBe(403);
      expect((await http(log, q)).status).toBe(200);
      await waitFor(async () => (await block.errorLog()).includes("waf: inspection budget of 2048 bytes exceeded at the query (blocked)"), { what: "the budget line" });
      await waitFor(async () => (await log.errorLog()).includes("waf: inspection budget of 2048 bytes exceeded at the query (logged)"), { what: "the budget line" });
    } finally {
      await block.stop();
      await log.stop();
    }
  });

  it("is checked: bounds, and below the body cap", () => {
    expect(codes(policy(origin, { waf: { budget: "512" } }))).toEqual(["CDN3029"]);
    expect(codes(policy(origin, { waf: { budget: "3m" } }))).toEqual(["CDN3029"]);
    expect(codes(policy(origin, { waf: { budget: "32k", body: { maxSize: "64k" } } }))).toEqual(["CDN3030"]);
    expect(codes(policy(origin, { waf: { budget: "128k", body: { maxSize: "64k" } } }))).toEqual([]);
  });
});
