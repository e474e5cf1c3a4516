import * as net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootEdge, type Edge } from "../support/edge.js";
import { startMockOrigin, type MockOrigin } from "../support/mock-origin.js";
import { codes, policy } from "../support/policy.js";
import { http, luaErrors } from "../support/http.js";
import { waitFor } from "../support/wait.js";
import { compileWaf } from "../../src/features/waf.js";
import { BUILTIN_RULES } from "../../src/features/waf/builtin-rules.js";
import type { Policy, Waf } from "../../src/policy/types.js";
import { env } from "../../src/policy/env.js";
import { attackCorpus, benignCorpus, type CorpusRequest } from "../fixtures/waf/corpus.js";

let origin: MockOrigin;
beforeAll(async () => {
  origin = await startMockOrigin();
});
afterAll(async () => {
  await origin?.close();
});

const wafPolicy = (gate: Waf, extra: Partial<Policy> = {}) => policy(origin, { name: "waf", health: { path: "/health" }, waf: gate, ...extra });


/** One request sent byte for byte (no client-side URL normalisation); resolves to the status and body. */
function raw(edge: Edge, target: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(edge.port, edge.host);
    const chunks: Buffer[] = [];
    let head = `GET ${target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n`;
    for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
    sock.on("connect", () => sock.write(Buffer.from(head + "\r\n", "latin1")));
    sock.on("data", (c) => chunks.push(c));
    sock.on("error", reject);
    sock.on("end", () => {
      const text = Buffer.concat(chunks).toString("latin1");
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (!m) return reject(new Error(`no status line for ${target}: ${text.slice(0, 80)}`));
      resolve({ status: Number(m[1]), body: text.slice(text.indexOf("\r\n\r\n") + 4) });
    });
  });
}

async function sendAll(edge: Edge, reqs: CorpusRequest[], concurrency = 8) {
  const results: { req: CorpusRequest; status: number; body: string }[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < reqs.length) {
        const req = reqs[next++]!;
        const r = await raw(edge, req.target, req.headers);
        results.push({ req, ...r });
      }
    }),
  );
  return results;
}

const pctOf = (n: number, d: number) => ((100 * n) / d).toFixed(1) + "%";

describe("waf: detection and false positives over HTTP", () => {
  let edge: Edge;
  beforeAll(async () => {
    edge = await bootEdge(wafPolicy({}));
  });
  afterAll(async () => {
    await edge?.stop();
  });

  it("blocks >= 97% of the attack corpus in every encoding, and every category >= 95%", async () => {
    const corpus = attackCorpus();
    expect(corpus.length).toBeGreaterThan(500);
    const results = await sendAll(edge, corpus);
    const blocked = (r: (typeof results)[number]) => r.status === 403 && r.body.includes("waf");
    const by = (key: (r: (typeof results)[number]) => string) => {
      const m = new Map<string, [number, number]>();
      for (const r of results) {
        const k = key(r);
        const [hit, all] = m.get(k) ?? [0, 0];
        m.set(k, [hit + (blocked(r) ? 1 : 0), all + 1]);
      }
      return m;
    };
    // nginx refuses some targets itself (400: a null byte in the path) before any gate runs; they are
    // reported apart and left out of the WAF's rate
    const byNginx = results.filter((r) => r.status === 400 && !r.body.includes("forbidden by"));
    const inspected = results.filter((r) => !byNginx.includes(r));
    const misses = inspected.filter((r) => !blocked(r));
    const total = inspected.length - misses.length;
    console.log(`[waf] attack corpus: ${results.length} requests; refused by nginx itself (400) before the gates: ${byNginx.length}`);
    console.log(`[waf] detection: ${total}/${inspected.length} = ${pctOf(total, inspected.length)}`);
    for (const [k, [h, a]] of by((r) => r.req.category)) console.log(`[waf]   category ${k}: ${h}/${a} = ${pctOf(h, a)} (incl. nginx 400s as misses)`);
    for (const [k, [h, a]] of by((r) => r.req.encoding)) console.log(`[waf]   encoding ${k}: ${h}/${a} = ${pctOf(h, a)} (incl. nginx 400s as misses)`);
    for (const m of misses) console.log(`[waf]   missed (${m.status}) ${m.req.category}/${m.req.encoding}: ${m.req.target} ${JSON.stringify(m.req.headers)}`);
    for (const m of byNginx) console.log(`[waf]   nginx 400 ${m.req.category}/${m.req.encoding}: ${m.req.target}`);
    expect(results.filter((r) => r.status === 200)).toEqual([]); // nothing reaches the origin
    expect(byNginx.every((r) => r.req.encoding === "null-byte" && r.req.target.startsWith("/files/"))).toBe(true);
    expect(total / inspected.length).toBeGreaterThanOrEqual(0.97);
    for (const [k, [h, a]] of by((r) => r.req.category)) expect(h / a, k).toBeGreaterThanOrEqual(0.95);
  });

  it("passes all of the benign corpus (no false positives)", async () => {
    const corpus = benignCorpus();
    expect(corpus.length).toBeGreaterThan(150);
    const results = await sendAll(edge, corpus);
    const fps = results.filter((r) => r.status !== 200);
    console.log(`[waf] false positives: ${fps.length}/${results.length} = ${pctOf(fps.length, results.length)}`);
    for (const f of fps) console.log(`[waf]   false positive (${f.status}): ${f.req.target} ${JSON.stringify(f.req.headers)}`);
    expect(fps.map((f) => f.req.target)).toEqual([]);
    expect(luaErrors(await edge.errors())).toEqual([]);
  });

  it("held-out corpora (never used to tune the rules): detection >= 85%, at most 2 false positives", async () => {
    const attacks = await sendAll(edge, attackCorpus("attacks-holdout.json"));
    const inspected = attacks.filter((r) => !(r.status === 400 && !r.body.includes("forbidden by")));
    const caught = inspected.filter((r) => r.status === 403 && r.body.includes("waf"));
    const benign = await sendAll(edge, benignCorpus("benign-holdout.txt"));
    const fps = benign.filter((r) => r.status !== 200);
    console.log(`[waf] held-out detection: ${caught.length}/${inspected.length} = ${pctOf(caught.length, inspected.length)} (${attacks.length - inspected.length} refused by nginx itself)`);
    for (const m of inspected.filter((r) => !caught.includes(r))) console.log(`[waf]   held-out missed (${m.status}) ${m.req.category}/${m.req.encoding}: ${m.req.target} ${JSON.stringify(m.req.headers)}`);
    console.log(`[waf] held-out false positives: ${fps.length}/${benign.length} = ${pctOf(fps.length, benign.length)}`);
    for (const f of fps) console.log(`[waf]   held-out false positive (${f.status}): ${f.req.target}`);
    expect(attacks.filter((r) => r.status === 200).length).toBe(inspected.length - caught.length);
    expect(caught.length / inspected.length).toBeGreaterThanOrEqual(0.85);
    expect(fps.length).toBeLessThanOrEqual(2);
  });

  it("values with many literal occurrences are still checked by every relevant rule", async () => {
    const many = encodeURIComponent("it's a 'quoted' (word); ".repeat(20));
    expect((await raw(edge, `/s?q=${many}`)).status).toBe(200);
    expect((await raw(edge, `/s?q=${many}${encodeURIComponent("x' union select password from users--")}`)).status).toBe(403);
    expect((await raw(edge, `/s?q=${encodeURIComponent("$$$$ $(id)")}`)).status).toBe(403); // "$(" is found behind its prefix "$"
  });

  it("logs one line per blocked request naming the rule and the target, never the payload", async () => {
    const before = (await edge.errorLog()).split("\n").length;
    const r = await raw(edge, "/search?q=%2527%2520UNION%2520SELECT%2520secret_col_xyz%2520FROM%2520users--");
    expect(r.status).toBe(403);
    expect(r.body).toContain("forbidden by waf");
    const wafLines = async () => (await edge.errorLog()).split("\n").slice(before - 1).filter((l) => l.includes("waf:"));
    // the line is written from a zero-delay timer
    let lines = await waitFor(async () => { const l = await wafLines(); return l.length >= 1 && l; }, { what: "the waf log line" });
    expect(lines.length).toBe(1);
    expect(lines[0]).toContain("client 127.0.0.1");
    expect(lines[0]).toMatch(/waf: rule sqli-union matched the query \(blocked\)/);
    expect(lines[0]).not.toMatch(/secret_col_xyz/i);
    // the same value again: answered from the worker's memo of verdicts, still refused and logged
    const again = await raw(edge, "/search?q=%2527%2520UNION%2520SELECT%2520secret_col_xyz%2520FROM%2520users--");
    expect(again.status).toBe(403);
    lines = await waitFor(async () => { const l = await wafLines(); return l.length >= 2 && l; }, { what: "the second waf log line" });
    expect(lines.length).toBe(2);
  });
});

describe("waf: custom rules, modes, exclusions, body", () => {
  it("custom rules on path, query, a header and the user agent", async () => {
    const edge = await bootEdge(
      wafPolicy({
        ruleSets: [],
        rules: [
          { id: "old-admin", target: "path", pattern: "^/wp-admin" },
          { id: "debug-param", target: "query", pattern: "(^|&)debug=1" },
          { id: "bad-referer", target: "header", header: "Referer", pattern: "spam\\.example" },
          { id: "old-client", target: "userAgent", pattern: "^legacyclient/1\\." },
        ],
      }),
    );
    try {
      origin.reset();
      const blocked = async (path: string, headers: Record<string, string> = {}) => (await http(edge, path, { headers })).status;
      expect(await blocked("/wp-admin/setup.php")).toBe(403);
      expect(await blocked("/%77p-admin/")).toBe(403); // encoded
      expect(await blocked("/WP-ADMIN/")).toBe(403); // case
      expect(await blocked("/blog/wp-admin-tips")).toBe(200);
      expect(await blocked("/x?a=2&debug=1")).toBe(403);
      expect(await blocked("/x?nodebug=1")).toBe(200);
      expect(await blocked("/x", { referer: "https://SPAM.example/page" })).toBe(403);
      expect(await blocked("/x", { referer: "https://ok.example/" })).toBe(200);
      expect(await blocked("/x", { "user-agent": "LegacyClient/1.4" })).toBe(403);
      expect(await blocked("/x", { "user-agent": "LegacyClient/2.0" })).toBe(200);
      // built-in rule sets are off here
      expect(await blocked("/x?q=%3Cscript%3E")).toBe(200);
      expect(luaErrors(await edge.errors())).toEqual([]);
    } finally {
      await edge.stop();
    }
  });

  it("log mode lets matches through and logs them", async () => {
    const edge = await bootEdge(wafPolicy({ mode: "log" }));
    try {
      origin.reset();
      const r = await http(edge, "/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E");
      expect(r.status).toBe(200);
      expect(origin.hits("/search")).toBe(1);
      const log = await waitFor(async () => { const l = await edge.errorLog(); return l.includes("waf: rule") && l; }, { what: "the waf log line" });
      expect(log).toMatch(/waf: rule xss-script matched the query \(logged\)/);
    } finally {
      await edge.stop();
    }
  });

  it("exclude turns a built-in rule off; ruleSets picks sets", async () => {
    const edge = await bootEdge(wafPolicy({ ruleSets: ["sqli"], exclude: ["sqli-union"] }));
    try {
      expect((await http(edge, "/s?q=1+union+select+2")).status).toBe(200);
      expect((await http(edge, "/s?q=%27+or+%271%27%3D%271")).status).toBe(403);
      expect((await http(edge, "/s?q=%3Cscript%3E")).status).toBe(200); // xss set not enabled
    } finally {
      await edge.stop();
    }
  });

  it("inspects bodies up to the cap", async () => {
    const edge = await bootEdge(wafPolicy({ body: { maxSize: "8k" }, rules: [{ id: "body-marker", target: "body", pattern: "forbidden-marker" }] }));
    try {
      origin.reset();
      const post = (body: string, type = "application/x-www-form-urlencoded") => http(edge, "/submit", { method: "POST", body, headers: { "content-type": type } });
      expect((await post("name=O%27Brien&comment=I+love+it")).status).toBe(200);
      expect((await post("name=x&comment=%27+UNION+SELECT+password+FROM+users--")).status).toBe(403);
      expect((await post('{"comment":"<script>alert(1)</script>"}', "application/json")).status).toBe(403);
      expect((await post("a=forbidden-marker")).status).toBe(403);
      const big = "pad=" + "x".repeat(9000) + "&c=%27+UNION+SELECT+1--";
      expect((await post(big)).status).toBe(200); // over the cap: not inspected
      expect(origin.hits("/submit")).toBe(2);
      const last = origin.requests[origin.requests.length - 1]!;
      expect(last.body.length).toBe(big.length); // the body still reaches the origin whole
      expect(luaErrors(await edge.errors())).toEqual([]);
    } finally {
      await edge.stop();
    }
  });

  it("applies only to its scope", async () => {
    const edge = await bootEdge(wafPolicy({ exceptPaths: ["/cms/*"] }));
    try {
      expect((await http(edge, "/cms/save?html=%3Cscript%3Ex%3C%2Fscript%3E")).status).toBe(200);
      expect((await http(edge, "/page?html=%3Cscript%3Ex%3C%2Fscript%3E")).status).toBe(403);
    } finally {
      await edge.stop();
    }
  });
});

describe("access gates: order", () => {
  const SECRET = "order-secret-1";
  let edge: Edge;
  beforeAll(async () => {
    edge = await bootEdge(
      wafPolicy(
        {},
        {
          originSecret: { secret: env("EDGE_SECRET") },
          ipRules: { deny: ["203.0.113.0/24"], trustedProxies: ["127.0.0.1"] },
          cache: { disk: { size: "10m", keysZone: "1m" } },
        },
      ),
      { env: { EDGE_SECRET: SECRET } },
    );
  });
  afterAll(async () => {
    await edge?.stop();
  });
  const attack = "/s?q=%27+or+%271%27%3D%271";

  it("a request without the secret is refused by the secret gate before the IP and WAF gates", async () => {
    const r = await http(edge, attack, { headers: { "x-forwarded-for": "203.0.113.7" } });
    expect(r.status).toBe(403);
    expect(r.body).toContain("origin-secret");
  });

  it("a WAF-matching request from a denied IP is refused by the IP gate", async () => {
    const r = await http(edge, attack, { headers: { "x-origin-secret": SECRET, "x-forwarded-for": "203.0.113.7" } });
    expect(r.status).toBe(403);
    expect(r.body).toContain("ip-rules");
    expect(await edge.errorLog()).not.toMatch(/waf: rule/);
  });

  it("the same request from an allowed IP is refused by the WAF; a clean one passes", async () => {
    const r = await http(edge, attack, { headers: { "x-origin-secret": SECRET, "x-forwarded-for": "198.51.100.7" } });
    expect(r.status).toBe(403);
    expect(r.body).toContain("waf");
    origin.reset();
    const ok = await http(edge, "/s?q=o%27brien", { headers: { "x-origin-secret": SECRET, "x-forwarded-for": "198.51.100.7" } });
    expect(ok.status).toBe(200);
    expect(origin.requests[0]!.headers["x-origin-secret"]).toBeUndefined();
  });

  it("no gate runs on the health and purge endpoints", async () => {
    expect((await http(edge, "/health", { headers: { "x-forwarded-for": "203.0.113.7" } })).status).toBe(200);
    // the purge handler answers (and refuses: no purge credentials in this policy), not the WAF
    const p = await http(edge, "/__purge?x=%27+or+%271%27%3D%271", { method: "POST" });
    expect(p.status).toBe(403);
    expect(JSON.parse(p.body)).toEqual({ ok: false, error: "forbidden" });
    expect(luaErrors(await edge.errors())).toEqual([]);
  });
});

describe("waf: compiled form and checks", () => {
  it("groups rules by target; rules without literals become one alternation per target", () => {
    const t = compileWaf({ rules: [{ id: "x", target: "header", header: "Referer", pattern: "a" }, { id: "y", target: "query", pattern: "b" }, { id: "z", target: "query", pattern: "c" }] });
    expect(t.map((x) => x.label)).toEqual(["path", "query", "user-agent", "header:referer"]);
    expect(t[0]!.always).toBeUndefined(); // built-in rules all have literals
    expect(t[1]!.always).toBe("(?:b)|(?:c)");
    expect(t[1]!.ci).toBe(true);
    expect(t[0]!.ci).toBe(false);
    expect(t[1]!.rules.filter((r) => r.lits).length).toBeGreaterThan(10);
    expect(compileWaf({ body: {} }).map((x) => x.label)).toContain("body");
  });

  it("every built-in match contains one of the rule's literals (checked over both corpora, normalised)", () => {
    // a port of the runtime's normalisation (lua-src/features/waf.ts) on bytes
    const unescape = (s: string) => s.replace(/%([0-9a-fA-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
    const normalise = (wire: string) => {
      let s = wire;
      for (let i = 0; i < 4; i++) {
        const d = unescape(s);
        if (d === s) break;
        s = d;
      }
      return s.replace(/[A-Z]/g, (c) => c.toLowerCase()).replace(/\0/g, "").replace(/\/\*.*?\*\//g, " ").replace(/[ \t\n\r\v\f+]+/g, " ");
    };
    const lit = (l: string) => l.replace(/\\x([0-9a-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
    const values = [...attackCorpus(), ...attackCorpus("attacks-holdout.json"), ...benignCorpus(), ...benignCorpus("benign-holdout.txt")].flatMap((r) => [
      normalise(Buffer.from(r.target, "latin1").toString("latin1")),
      ...Object.values(r.headers).map(normalise),
    ]);
    let matched = 0;
    for (const rule of BUILTIN_RULES.filter((r) => r.literals !== undefined)) {
      const re = new RegExp(rule.pattern);
      for (const v of values) {
        if (!re.test(v)) continue;
        matched++;
        expect(rule.literals!.some((l) => v.includes(lit(l))), `${rule.id} on ${JSON.stringify(v)}`).toBe(true);
      }
    }
    expect(matched).toBeGreaterThan(500);
  });

  it("reports bad rules with codes", () => {
    expect(codes(wafPolicy({ exclude: ["nope"] }))).toEqual(["CDN3020"]);
    expect(codes(wafPolicy({ rules: [{ id: "a", target: "path", pattern: "(" }] }))).toEqual(["CDN3021"]);
    expect(codes(wafPolicy({ rules: [{ id: "a", target: "header", pattern: "x" }] }))).toEqual(["CDN3022"]);
    expect(codes(wafPolicy({ rules: [{ id: "a", target: "path", header: "Referer", pattern: "x" }] }))).toEqual(["CDN3022"]);
    expect(codes(wafPolicy({ rules: [{ id: "sqli-union", target: "path", pattern: "x" }] }))).toEqual(["CDN3023"]);
    expect(codes(wafPolicy({ rules: [{ id: "a", target: "path", pattern: "x" }, { id: "a", target: "query", pattern: "y" }] }))).toEqual(["CDN3023"]);
    expect(codes(wafPolicy({ rules: [{ id: "a", target: "path", pattern: "(a)\\1" }] }))).toEqual(["CDN3024"]);
    expect(codes(wafPolicy({ rules: [{ id: "a", target: "path", pattern: "x*" }] }))).toEqual(["CDN3025"]);
    expect(codes(wafPolicy({ body: { maxSize: "2m" } }))).toEqual(["CDN3026"]);
    expect(codes(wafPolicy({ rules: [{ id: "a", target: "body", pattern: "x" }] }))).toEqual(["CDN3027"]);
    expect(codes(wafPolicy({ ruleSets: [] }))).toEqual(["CDN3028"]);
    expect(codes(wafPolicy({ ruleSets: ["xss"], paths: ["/a"] }))).toEqual([]);
  });
});
