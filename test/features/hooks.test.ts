import { mkdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { createHmac } from "node:crypto";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compile } from "../../src/compile.js";
import { loadPolicy } from "../../src/load/index.js";
import type { Policy } from "../../src/policy/types.js";
import { accessLog, bootEdge, projectDir, waitLogged, type Edge } from "../support/edge.js";
import { startMockOrigin, type MockOrigin } from "../support/mock-origin.js";
import { http, luaErrors, rawRequest } from "../support/http.js";
import { waitFor } from "../support/wait.js";

const BIN = join(import.meta.dirname, "..", "..", "bin", "cdn-build.js");

/** Writes `files` (relative path -> text) under `dir`. */
async function writeFiles(dir: string, files: Record<string, string>): Promise<void> {
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(join(dir, rel, ".."), { recursive: true });
    await writeFile(join(dir, rel), text);
  }
}

const GATE = `import { onAccess } from "cdn-build/edge";
import { BLOCKED } from "./tables";

export default onAccess((req) => {
  const country = req.header("X-Country") ?? "";
  if (BLOCKED[country]) return req.deny(451, "unavailable in " + country);
  if (req.path.startsWith("/beta/") && req.cookie("beta") === undefined) return req.redirect(302, "/");
  if (req.path.startsWith("/old/")) req.rewrite("/new/" + req.path.slice(5), req.query === "" ? undefined : req.query);
  if (req.path === "/teapot") return req.respond(418, "short and stout", { "X-Pot": "tea" });
  req.state.country = country === "" ? "unknown" : country;
  req.setHeader("X-Country-Seen", country === "" ? "unknown" : country);
  req.removeHeader("X-Debug");
});
`;

const TABLES = `export const BLOCKED: Record<string, boolean> = { XX: true, YY: true };
/** Response header rewrites by the origin's X-Backend value. */
export const BACKENDS: Record<string, string> = { "php-7": "app", "php-8": "app-next" };
`;

const VARIANT = `import { onHeaders } from "cdn-build/edge";
import { BACKENDS } from "./tables";

export default onHeaders((res) => {
  const backend = res.header("X-Backend");
  if (backend !== undefined) {
    res.setHeader("X-Backend", BACKENDS[backend] ?? "other");
  }
  res.removeHeader("X-Powered-By");
  const country = res.state.country;
  if (country !== undefined) res.setHeader("X-Country", String(country));
  if (res.cacheStatus !== undefined) res.setHeader("X-Hook-Cache", res.cacheStatus);
});
`;

const LOG = `import { onLog } from "cdn-build/edge";

export default onLog((ctx) => {
  ctx.field("country", String(ctx.state.country ?? "-"));
  ctx.field("status", ctx.status);
});
`;

const THROW = `import { onAccess } from "cdn-build/edge";

export default onAccess((req) => {
  if (req.path === "/boom") {
    throw new Error("boom at " + req.path);
  }
  req.setHeader("X-Hooked", "1");
});
`;

const DROP_UTM = `import { onAccess } from "cdn-build/edge";

export default onAccess((req) => {
  if (req.arg("utm") !== undefined) req.rewrite(req.path, "");
});
`;

const STATUS = `import { onHeaders } from "cdn-build/edge";

export default onHeaders((res) => {
  res.setHeader("X-Cache-Seen", res.cacheStatus ?? "none");
  res.setHeader("X-Status-Seen", String(res.status));
});
`;

function basePolicy(origin: MockOrigin): Omit<Policy, "listen"> {
  return { name: "hooks", origins: { app: { servers: [{ address: origin.address }] } }, cache: {} };
}

describe("hooks over HTTP", () => {
  let origin: MockOrigin;
  let project: string;
  let edge: Edge;
  let throwing: Edge;
  let failOpen: Edge;
  let beforeCache: Edge;

  beforeAll(async () => {
    origin = await startMockOrigin();
    origin.setDefault({ headers: { "x-powered-by": "php", "x-backend": "php-8", "cache-control": "max-age=60" }, body: "ok" });
    project = await projectDir("cdn-hooks-");
    await writeFiles(project, { "hooks/gate.ts": GATE, "hooks/tables.ts": TABLES, "hooks/variant.ts": VARIANT, "hooks/log.ts": LOG, "throwing/throw.ts": THROW, "utm/drop-utm.ts": DROP_UTM, "nocache/status.ts": STATUS });
    edge = await bootEdge({ ...basePolicy(origin), hooks: { access: "./hooks/gate.ts", headers: "./hooks/variant.ts", log: "./hooks/log.ts" } }, { baseDir: project });
    throwing = await bootEdge({ ...basePolicy(origin), name: "hooks-throw", hooks: { access: "./throwing/throw.ts" } }, { baseDir: project });
    beforeCache = await bootEdge({ ...basePolicy(origin), name: "hooks-early", hooks: { access: { file: "./utm/drop-utm.ts", before: "cache" } } }, { baseDir: project });
    // no cache here: the headers hook sees no cache status
    failOpen = await bootEdge(
      { name: "hooks-open", origins: { app: { servers: [{ address: origin.address }] } }, hooks: { access: { file: "./throwing/throw.ts", failOpen: true }, headers: "./nocache/status.ts" } },
      { baseDir: project },
    );
  }, 60_000);

  afterAll(async () => {
    for (const e of [edge, failOpen, beforeCache]) {
      if (!e) continue;
      expect(luaErrors(await e.errors()).filter((l) => !l.includes("boom"))).toEqual([]);
      await e.stop();
    }
    if (throwing) {
      // the deliberate failures only
      expect(luaErrors(await throwing.errors()).filter((l) => !l.includes("boom"))).toEqual([]);
      await throwing.stop();
    }
    await origin?.close();
    if (project) await rm(project, { recursive: true, force: true });
  });

  it("denies with 451 on a blocked country header", async () => {
    const r = await http(edge, "/page", { headers: { "x-country": "XX" } });
    expect(r.status).toBe(451);
    expect(r.body).toBe("unavailable in XX");
    expect(r.headers["cache-control"]).toBe("no-store");
    expect(origin.hits("/page")).toBe(0);
  });

  it("redirects a beta path without the beta cookie, lets it through with it", async () => {
    const r = await http(edge, "/beta/x");
    expect(r.status).toBe(302);
    expect(r.headers["location"]).toMatch(/\/$/);
    const ok = await http(edge, "/beta/x", { headers: { cookie: "beta=1" } });
    expect(ok.status).toBe(200);
  });

  it("sets and removes request headers the origin receives", async () => {
    await http(edge, "/req-headers", { headers: { "x-country": "FR", "x-debug": "1" } });
    const req = origin.requests.find((q) => q.path === "/req-headers")!;
    expect(req.headers["x-country-seen"]).toBe("FR");
    expect(req.headers["x-debug"]).toBeUndefined();
  });

  it("rewrites the path the origin sees", async () => {
    const r = await http(edge, "/old/page?q=1");
    expect(r.status).toBe(200);
    expect(origin.requests.some((q) => q.url === "/new/page?q=1")).toBe(true);
    expect(origin.hits("/old/page")).toBe(0);
  });

  it("answers from the hook with respond()", async () => {
    const r = await http(edge, "/teapot");
    expect(r.status).toBe(418);
    expect(r.body).toBe("short and stout");
    expect(r.headers["x-pot"]).toBe("tea");
  });

  it("rewrites response headers from a lookup table and sees the state and the cache status", async () => {
    const miss = await http(edge, "/resp", { headers: { "x-country": "DE" } });
    expect(miss.headers["x-backend"]).toBe("app-next");
    expect(miss.headers["x-powered-by"]).toBeUndefined();
    expect(miss.headers["x-country"]).toBe("DE");
    expect(miss.headers["x-hook-cache"]).toBe("MISS");
    const hit = await http(edge, "/resp", { headers: { "x-country": "DE" } });
    expect(hit.headers["x-hook-cache"]).toBe("HIT");
    expect(hit.headers["x-backend"]).toBe("app-next");
  });

  it("adds the log hook's fields to the JSON access log", async () => {
    await http(edge, "/logged", { headers: { "x-country": "NL" } });
    await waitLogged(edge, "/logged", 1);
    const line = (await accessLog(edge)).find((l) => l.uri === "/logged")!;
    expect(line["hook"]).toBe("country=NL status=200");
  });

  it("a hook declared before the cache changes the cache key", async () => {
    expect(beforeCache.conf).toContain("access_by_lua_block");
    const a = await http(beforeCache, "/utm?utm=one");
    const b = await http(beforeCache, "/utm?utm=two");
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(b.headers["x-cache"]).toBe("HIT");
    expect(origin.hits("/utm")).toBe(1);
    expect(origin.requests.find((q) => q.path === "/utm")!.url).toBe("/utm");
  });

  it("a hook that throws answers 500 and logs one line naming the hook and its TypeScript line", async () => {
    const ok = await http(throwing, "/fine");
    expect(ok.status).toBe(200);
    expect(origin.requests.find((q) => q.path === "/fine")!.headers["x-hooked"]).toBe("1");
    const r = await http(throwing, "/boom");
    expect(r.status).toBe(500);
    expect(origin.hits("/boom")).toBe(0);
    for (let i = 0; i < 8; i++) expect((await http(throwing, "/boom")).status).toBe(500);
    await waitFor(async () => (await throwing.errors()).some((l) => l.includes("cdn-build hook")), { timeout: 3000, what: "the hook's error line" });
    const lines = (await throwing.errors()).filter((l) => l.includes("cdn-build hook"));
    // throttled: at most one line per hook and worker every 10 s (worker_processes auto: one per core)
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines.length).toBeLessThanOrEqual(availableParallelism());
    expect(lines[0]).toContain("cdn-build hook access (throwing/throw.ts:5)");
    expect(lines[0]).toContain("boom at /boom");
  });

  it("with failOpen, a hook that throws lets the request through (and logs)", async () => {
    const r = await http(failOpen, "/boom");
    expect(r.status).toBe(200);
    expect(r.headers["x-cache-seen"]).toBe("none");
    expect(r.headers["x-status-seen"]).toBe("200");
    expect(origin.hits("/boom")).toBe(1);
    await waitFor(async () => (await failOpen.errors()).some((l) => l.includes("cdn-build hook access")), { timeout: 3000, what: "the hook's error line" });
  });
});

describe("hooks at build time", () => {
  let project: string;
  beforeAll(async () => {
    project = await projectDir("cdn-hooks-build-");
    await writeFiles(project, {
      "hooks/good.ts": GATE,
      "hooks/tables.ts": TABLES,
      "hooks/bad.ts": `import { onAccess } from "cdn-build/edge";\n\nexport default onAccess((req) => {\n  const n: number = req.header("X-A");\n  req.setHeader("X-B", String(n));\n});\n`,
      "hooks/fs.ts": `import { readFileSync } from "fs";\nimport { onAccess } from "cdn-build/edge";\nexport default onAccess((req) => { req.setHeader("X", String(readFileSync)); });\n`,
      "hooks/node.ts": `import * as path from "node:path";\nimport { onAccess } from "cdn-build/edge";\nexport default onAccess((req) => { req.setHeader("X", path.sep); });\n`,
      "hooks/outside.ts": `import { SECRET } from "../shared/secret";\nimport { onAccess } from "cdn-build/edge";\nexport default onAccess((req) => { req.setHeader("X", SECRET); });\n`,
      "shared/secret.ts": `export const SECRET = "s";\n`,
      "hooks/globals.ts": `import { onAccess } from "cdn-build/edge";\nexport default onAccess((req) => {\n  const o = JSON.parse(req.header("X") ?? "{}") as Record<string, string>;\n  req.setHeader("T", String(Date.now()) + (o.a ?? ""));\n});\n`,
      "hooks/regex.ts": `import { onAccess } from "cdn-build/edge";\nconst API = /^\\/api\\//;\nexport default onAccess((req) => {\n  if (API.test(req.path)) req.setHeader("X-Api", "1");\n});\n`,
      "hooks/wrong.ts": `import { onHeaders } from "cdn-build/edge";\nexport default onHeaders((res) => { res.setHeader("X", "1"); });\n`,
      "edge.policy.json": JSON.stringify({ name: "build", origins: { app: { servers: [{ address: "127.0.0.1:9" }] } }, hooks: { access: "./hooks/good.ts" } }),
      "edge-bad.policy.json": JSON.stringify({ name: "build", origins: { app: { servers: [{ address: "127.0.0.1:9" }] } }, hooks: { access: "./hooks/bad.ts" } }),
    });
  });
  afterAll(async () => {
    if (project) await rm(project, { recursive: true, force: true });
  });

  const policy = (access: Policy["hooks"]) => ({ name: "b", origins: { app: { servers: [{ address: "127.0.0.1:9" }] } }, hooks: access }) as Policy;

  it("compiles a hook and its imports into lua/hooks/<phase>/ with the edge API required from the runtime", () => {
    const { bundle, diagnostics } = compile(policy({ access: "./hooks/good.ts" }), { baseDir: project });
    expect(diagnostics.filter((d) => d.severity === "error")).toEqual([]);
    const lua = bundle!.files.get("lua/hooks/access/good.lua")!;
    expect(lua).toContain('require("edge.index")');
    expect(lua).toContain('require("hooks.access.tables")');
    expect(lua).not.toMatch(/req:/); // the API is called with `.`, no self
    expect(bundle!.files.has("lua/hooks/access/tables.lua")).toBe(true);
    expect(bundle!.files.get("lua/hooks/lines.lua")).toContain('["access/good"]');
    expect(bundle!.files.get("lua/policy_data.lua")).toContain("hooks.access.good");
  });

  it("a type error fails the build with the hook's file:line:col", () => {
    const { bundle, diagnostics } = compile(policy({ access: "./hooks/bad.ts" }), { baseDir: project });
    expect(bundle).toBeUndefined();
    const d = diagnostics.find((x) => x.code === "CDN8002")!;
    expect(d.file).toBe(join(project, "hooks/bad.ts"));
    expect([d.line, d.col]).toEqual([4, 9]);
    expect(d.path).toBe("/hooks/access");
  });

  it("refuses Node modules and imports outside the hook's folder", () => {
    for (const [file, code, line] of [["fs", "CDN8005", 1], ["node", "CDN8005", 1], ["outside", "CDN8004", 1]] as const) {
      const { bundle, diagnostics } = compile(policy({ access: `./hooks/${file}.ts` }), { baseDir: project });
      expect(bundle, file).toBeUndefined();
      expect(diagnostics.map((d) => d.code), file).toEqual([code]);
      expect(diagnostics[0]!.line).toBe(line);
    }
  });

  it("refuses JavaScript globals Lua has no counterpart for, with a hint", () => {
    const { bundle, diagnostics } = compile(policy({ access: "./hooks/globals.ts" }), { baseDir: project });
    expect(bundle).toBeUndefined();
    expect(diagnostics.map((d) => [d.code, d.line, d.col])).toEqual([
      ["CDN8003", 3, 13],
      ["CDN8003", 4, 29],
    ]);
    expect(diagnostics[0]!.hint).toContain("jsonDecode");
    expect(diagnostics[1]!.hint).toContain("now()");
  });

  it("refuses a construct TypeScriptToLua cannot translate (a regular expression)", () => {
    const { diagnostics } = compile(policy({ access: "./hooks/regex.ts" }), { baseDir: project });
    expect(diagnostics.map((d) => [d.code, d.line])).toEqual([["CDN8003", 2]]);
    expect(diagnostics[0]!.message).toContain("TypeScriptToLua");
  });

  it("reports a syntax error, a folder and an empty file as diagnostics, never a crash", async () => {
    await writeFiles(project, { "hooks/syntax.ts": "import { onAccess } from 'cdn-build/edge';\nexport default onAccess((req) => {\n  req.setHeader(\"X\", \n", "hooks/empty.ts": "", "hooks/dir.ts/inner.ts": "export {};\n" });
    const syntax = compile(policy({ access: "./hooks/syntax.ts" }), { baseDir: project });
    expect(syntax.diagnostics.map((d) => d.code)).toContain("CDN8002");
    expect(syntax.diagnostics[0]!.line).toBeGreaterThan(0);
    expect(compile(policy({ access: "./hooks/empty.ts" }), { baseDir: project }).diagnostics.map((d) => d.code)).toEqual(["CDN8006"]);
    expect(compile(policy({ access: "./hooks/dir.ts" }), { baseDir: project }).diagnostics.map((d) => d.code)).toEqual(["CDN8001"]);
    expect(compile(policy({ access: "./hooks/bad name.ts" }), { baseDir: project }).diagnostics.map((d) => d.code)).toEqual(["CDN8001"]);
  });

  it("compiles a symbolic link in the hook's folder as a file of the folder, never writing outside lua/hooks/<phase>/", async () => {
    await mkdir(join(project, "linked"), { recursive: true });
    await symlink(join(project, "shared", "secret.ts"), join(project, "linked", "secret.ts"));
    await writeFiles(project, { "linked/hook.ts": `import { SECRET } from "./secret";\nimport { onAccess } from "cdn-build/edge";\nexport default onAccess((req) => { req.setHeader("X", SECRET); });\n` });
    const { bundle } = compile(policy({ access: "./linked/hook.ts" }), { baseDir: project });
    const hookFiles = [...bundle!.files.keys()].filter((p) => p.startsWith("lua/hooks/"));
    expect(hookFiles).toEqual(["lua/hooks/access/hook.lua", "lua/hooks/access/secret.lua", "lua/hooks/lines.lua"]);
  });

  it("refuses statements at the top level of a hook file (it runs once at nginx start)", async () => {
    await writeFiles(project, {
      "top/hook.ts": `import { onAccess } from "cdn-build/edge";\nimport { TABLE } from "./table";\nconst seen: Record<string, boolean> = {};\nfor (const k of ["a"]) seen[k] = true;\nexport default onAccess((req) => { req.setHeader("X", TABLE.a + String(seen.a)); });\n`,
      "top/table.ts": `export const TABLE = { a: "1" };\nTABLE.a = "2";\n`,
    });
    const { diagnostics } = compile(policy({ access: "./top/hook.ts" }), { baseDir: project });
    expect(diagnostics.map((d) => [d.code, d.file!.split("/").pop(), d.line]).sort()).toEqual([
      ["CDN8007", "hook.ts", 4],
      ["CDN8007", "table.ts", 2],
    ]);
  });

  it("refuses a hook exported for another phase, and a missing file", () => {
    const wrong = compile(policy({ access: "./hooks/wrong.ts" }), { baseDir: project });
    expect(wrong.diagnostics.map((d) => d.code)).toEqual(["CDN8006"]);
    expect(wrong.diagnostics[0]!.message).toContain("onAccess");
    const missing = compile(policy({ headers: { file: "./hooks/nope.ts" } }), { baseDir: project });
    expect(missing.diagnostics.map((d) => [d.code, d.path])).toEqual([["CDN8001", "/hooks/headers/file"]]);
  });

  it("the CLI exits non-zero on a hook type error and leaves the previous bundle untouched", async () => {
    const out = join(project, "out");
    const first = await execa("node", [BIN, "build", "edge.policy.json", "--out", out, "--target", "nginx-lua"], { cwd: project, reject: false });
    expect(first.exitCode, first.stderr).toBe(0);
    const before = await readFile(join(out, "manifest.json"), "utf8");
    const bad = await execa("node", [BIN, "build", "edge-bad.policy.json", "--out", out, "--target", "nginx-lua"], { cwd: project, reject: false });
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr).toContain(`${join(project, "hooks/bad.ts")}:4:9 error CDN8002`);
    expect(await readFile(join(out, "manifest.json"), "utf8")).toBe(before);
    expect(await readFile(join(out, "lua/hooks/access/good.lua"), "utf8")).toContain("onAccess");
  }, 60_000);
});

describe("the edge-hooks example over HTTP", () => {
  const dir = join(import.meta.dirname, "..", "..", "examples", "edge-hooks");
  let origin: MockOrigin;
  let edge: Edge;
  beforeAll(async () => {
    origin = await startMockOrigin();
    origin.setDefault({ headers: { "x-backend": "php-7.4-legacy", "x-powered-by": "PHP/7.4", "cache-control": "max-age=60" }, body: "ok" });
    const { loaded } = await loadPolicy(join(dir, "edge.policy.ts"));
    const policy = loaded!.value as Policy;
    edge = await bootEdge({ ...policy, origins: { app: { servers: [{ address: origin.address }] } } }, { baseDir: dir });
  }, 60_000);
  afterAll(async () => {
    if (edge) {
      expect(luaErrors(await edge.errors())).toEqual([]);
      await edge.stop();
    }
    await origin?.close();
  });

  it("gates by country, keeps beta for the cookie, labels the backend and logs the country", async () => {
    expect((await http(edge, "/", { headers: { "x-geoip-country-code": "XX" } })).status).toBe(451);
    expect((await http(edge, "/beta/new")).status).toBe(302);
    const r = await http(edge, "/product/1", { headers: { "x-geoip-country-code": "FR" } });
    expect(r.status).toBe(200);
    expect(r.headers["x-backend"]).toBe("classic");
    expect(r.headers["x-powered-by"]).toBeUndefined();
    expect(origin.requests.find((q) => q.path === "/product/1")!.headers["x-edge-country"]).toBe("FR");
    await waitLogged(edge, "/product/1", 1);
    expect((await accessLog(edge)).find((l) => l.uri === "/product/1")!["hook"]).toBe("country=FR");
  });

  it("adds the beta notice to beta HTML pages only", async () => {
    origin.route("/beta/home", { headers: { "content-type": "text/html" }, body: "<html><body><h1>Beta</h1></body></html>" });
    const beta = await http(edge, "/beta/home", { headers: { cookie: "beta=1" } });
    expect(beta.body).toBe('<html><body><h1>Beta</h1><p class="beta">You are seeing the beta.</p></body></html>');
    expect((await http(edge, "/product/1")).body).toBe("ok");
  });
});

describe("the edge API in Node (cdn-build/edge/testing) and in nginx agree", () => {
  const dir = join(import.meta.dirname, "..", "fixtures", "hooks");
  let origin: MockOrigin;
  let edge: Edge;
  beforeAll(async () => {
    origin = await startMockOrigin();
    origin.setDefault({ body: "from origin" });
    edge = await bootEdge({ name: "hooks-conform", origins: { app: { servers: [{ address: origin.address }] } }, hooks: { access: "./conformance.ts" } }, { baseDir: dir });
  }, 60_000);
  afterAll(async () => {
    if (edge) {
      // the deliberate failures only
      expect(luaErrors(await edge.errors()).filter((l) => !/thrown on purpose|deny: status 200/.test(l))).toEqual([]);
      await edge.stop();
    }
    await origin?.close();
  });

  const CASES: { name: string; path: string; query: string; headers: Record<string, string> }[] = [
    { name: "continue", path: "/c/page", query: "mode=go&z=1", headers: { cookie: "a=1; c=cv", "x-drop": "1" } },
    { name: "no query, no cookie", path: "/plain", query: "", headers: {} },
    { name: "deny", path: "/d", query: "mode=deny", headers: {} },
    { name: "deny without body", path: "/d", query: "mode=deny-bare", headers: {} },
    { name: "redirect", path: "/r", query: "mode=redirect", headers: {} },
    { name: "respond", path: "/s", query: "mode=respond", headers: {} },
    { name: "rewrite", path: "/w", query: "mode=rewrite", headers: {} },
    { name: "bad status", path: "/b", query: "mode=bad-status", headers: {} },
    { name: "throw", path: "/t", query: "mode=throw", headers: {} },
  ];

  it.each(CASES)("$name", async ({ path, query, headers }) => {
    const { runAccess } = await import("../../src/edge/testing.js");
    const hook = (await import("../fixtures/hooks/conformance.js")).default;
    const node = runAccess(hook, { path, query, host: "127.0.0.1", headers });
    const url = query === "" ? path : `${path}?${query}`;
    const before = origin.requests.length;
    const r = await http(edge, url, { headers });
    if (node.action === "continue") {
      expect(r.status).toBe(200);
      const seen = origin.requests.slice(before).find(() => true)!;
      expect(seen.url).toBe(node.query === "" ? node.path : `${node.path}?${node.query}`);
      for (const [k, v] of Object.entries(node.requestHeaders)) if (k.startsWith("x-")) expect(seen.headers[k], k).toBe(v);
      expect(seen.headers["x-drop"]).toBeUndefined();
      return;
    }
    expect(origin.requests.length).toBe(before);
    expect(r.status).toBe(node.status);
    if (node.body !== undefined) expect(r.body).toBe(node.body);
    if (node.location !== undefined) expect(r.headers["location"]).toMatch(new RegExp(`${node.location}$`));
    for (const [k, v] of Object.entries(node.responseHeaders)) if (k !== "Location") expect(r.headers[k.toLowerCase()], k).toBe(v);
  });
});

describe("the body hook over HTTP", () => {
  let origin: MockOrigin;
  let project: string;
  let edge: Edge;
  const BODY = `import { onBody } from "cdn-build/edge";

export default onBody((res, body) => {
  if (res.path === "/body/throw") throw new Error("body hook failed on purpose");
  if (!(res.header("Content-Type") ?? "").startsWith("text/html")) return undefined;
  return body.replaceAll("origin", "edge") + "<!-- " + res.path + " " + String(res.status) + " -->";
});
`;
  beforeAll(async () => {
    origin = await startMockOrigin();
    origin.route("/body/page", { headers: { "content-type": "text/html", "cache-control": "max-age=60" }, body: "<p>from origin, origin again</p>" });
    origin.route("/body/json", { headers: { "content-type": "application/json" }, body: '{"from":"origin"}' });
    origin.route("/body/big", { headers: { "content-type": "text/html" }, body: "origin ".repeat(400) });
    origin.route("/body/gz", { headers: { "content-type": "text/html", "content-encoding": "gzip" }, body: Buffer.from("origin-gz-bytes") });
    origin.route("/body/throw", { headers: { "content-type": "text/html" }, body: "origin body" });
    project = await projectDir("cdn-hooks-body-");
    await writeFiles(project, { "hooks/body.ts": BODY });
    edge = await bootEdge(
      { name: "hooks-body", origins: { app: { servers: [{ address: origin.address }] } }, cache: {}, hooks: { body: { file: "./hooks/body.ts", maxBytes: 1024 } } },
      { baseDir: project },
    );
  }, 60_000);
  afterAll(async () => {
    if (edge) {
      expect(luaErrors(await edge.errors()).filter((l) => !l.includes("on purpose"))).toEqual([]);
      await edge.stop();
    }
    await origin?.close();
    if (project) await rm(project, { recursive: true, force: true });
  });

  it("rewrites an HTML body on a MISS and on a HIT (the cache keeps the origin's body)", async () => {
    for (const expected of ["MISS", "HIT"]) {
      const r = await http(edge, "/body/page");
      expect(r.status).toBe(200);
      expect(r.headers["x-cache"]).toBe(expected);
      expect(r.body).toBe("<p>from edge, edge again</p><!-- /body/page 200 -->");
      expect(r.headers["content-length"]).toBeUndefined();
    }
    expect(origin.hits("/body/page")).toBe(1);
  });

  it("keeps a body the hook returns nothing for, and HEAD requests", async () => {
    expect((await http(edge, "/body/json")).body).toBe('{"from":"origin"}');
    const head = await http(edge, "/body/page", { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.body).toBe("");
  });

  it("passes a body longer than maxBytes, and a compressed one, unchanged", async () => {
    const big = await http(edge, "/body/big");
    expect(big.body).toBe("origin ".repeat(400));
    // a client that accepts gzip (one that does not gets the body decoded by the edge: docs/edge.md)
    const gz = await rawRequest(edge, "GET /body/gz HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n");
    expect(gz.headers["content-encoding"]).toBe("gzip");
    expect(gz.body).toContain("origin-gz-bytes");
  });

  it("a body hook that throws leaves the body unchanged and logs the hook", async () => {
    const r = await http(edge, "/body/throw");
    expect(r.status).toBe(200);
    expect(r.body).toBe("origin body");
    await waitFor(async () => (await edge.errors()).some((l) => l.includes("cdn-build hook body (hooks/body.ts:4)")), { timeout: 3000, what: "the body hook's error line" });
  });

  it("the in-memory runBody agrees", async () => {
    const { runBody } = await import("../../src/edge/testing.js");
    const { onBody } = await import("../../src/edge/node.js");
    const hook = onBody((res, body) => ((res.header("Content-Type") ?? "").startsWith("text/html") ? body.replaceAll("origin", "edge") + "<!-- " + res.path + " " + String(res.status) + " -->" : undefined));
    expect(runBody(hook, "<p>from origin, origin again</p>", { path: "/body/page", headers: { "Content-Type": "text/html" } }).body).toBe("<p>from edge, edge again</p><!-- /body/page 200 -->");
    expect(runBody(hook, "origin ".repeat(400), { headers: { "Content-Type": "text/html" }, maxBytes: 1024 }).called).toBe(false);
    expect(runBody(hook, "x", { headers: { "Content-Type": "text/html", "Content-Encoding": "gzip" } }).called).toBe(false);
  });
});

describe("the hooks' store over HTTP", () => {
  let origin: MockOrigin;
  let project: string;
  let edge: Edge;
  const COUNT = `import { onAccess, store } from "cdn-build/edge";

export default onAccess((req) => {
  const user = req.header("X-User") ?? "anonymous";
  const n = store.incr("hits:" + user, 1, 60);
  req.state.hits = n;
  if (n > 3) return req.deny(429, "slow down " + user);
  store.set("last", user, 60);
});
`;
  const SHOW = `import * as edge from "cdn-build/edge";

export default edge.onHeaders((res) => {
  res.setHeader("X-Hits", String(res.state.hits ?? 0));
  res.setHeader("X-Last", String(edge.store.get("last") ?? "none"));
});
`;
  beforeAll(async () => {
    origin = await startMockOrigin();
    origin.setDefault({ body: "ok" });
    project = await projectDir("cdn-hooks-store-");
    await writeFiles(project, { "hooks/count.ts": COUNT, "hooks/show.ts": SHOW });
    edge = await bootEdge(
      { name: "hooks-store", origins: { app: { servers: [{ address: origin.address }] } }, hooks: { access: "./hooks/count.ts", headers: "./hooks/show.ts", store: { size: "1m" } } },
      { baseDir: project },
    );
  }, 60_000);
  afterAll(async () => {
    if (edge) {
      expect(luaErrors(await edge.errors())).toEqual([]);
      await edge.stop();
    }
    await origin?.close();
    if (project) await rm(project, { recursive: true, force: true });
  });

  it("counts across requests and workers, and shares values between hooks", async () => {
    expect(edge.conf).toContain("lua_shared_dict cdn_hooks 1m;");
    const seen: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await http(edge, "/s", { headers: { "x-user": "ann" } });
      expect(r.status).toBe(200);
      seen.push(r.headers["x-hits"]!);
      expect(r.headers["x-last"]).toBe("ann");
    }
    expect(seen).toEqual(["1", "2", "3"]);
    const fourth = await http(edge, "/s", { headers: { "x-user": "ann" } });
    expect([fourth.status, fourth.body]).toEqual([429, "slow down ann"]);
    expect(fourth.headers["x-hits"]).toBe("4");
    expect((await http(edge, "/s", { headers: { "x-user": "bob" } })).headers["x-hits"]).toBe("1");
  });

  it("a hook that imports the store without hooks.store, and a store below 64k, fail the build", () => {
    const off = compile({ name: "s", origins: { app: { servers: [{ address: "127.0.0.1:9" }] } }, hooks: { access: "./hooks/count.ts", headers: "./hooks/show.ts" } } as Policy, { baseDir: project });
    expect(off.diagnostics.map((d) => [d.code, d.file!.split("/").pop(), d.line])).toEqual([
      ["CDN8009", "count.ts", 1],
      ["CDN8009", "show.ts", 5],
    ]);
    const small = compile({ name: "s", origins: { app: { servers: [{ address: "127.0.0.1:9" }] } }, hooks: { access: "./hooks/count.ts", store: { size: "16k" } } } as Policy, { baseDir: project });
    expect(small.diagnostics.map((d) => [d.code, d.path])).toEqual([["CDN8008", "/hooks/store/size"]]);
  });
});

describe("the access hook reads the claims the jwt gate verified", () => {
  let origin: MockOrigin;
  let project: string;
  let edge: Edge;
  const SECRET = "a-hook-test-secret-0123456789abcdef";
  const token = (payload: object) => {
    const b64u = (x: string) => Buffer.from(x).toString("base64url");
    const input = `${b64u(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${b64u(JSON.stringify(payload))}`;
    return `${input}.${createHmac("sha256", SECRET).update(input).digest("base64url")}`;
  };
  const ROLE = `import { onAccess } from "cdn-build/edge";

export default onAccess((req) => {
  const role = req.claim("role");
  if (req.path.startsWith("/admin/") && role !== "admin") return req.deny(403, "admins only");
  req.setHeader("X-Role", String(role ?? "none") + "/" + String(req.claim("lvl") ?? "-") + "/" + String(req.claim("groups") ?? "-"));
});
`;
  beforeAll(async () => {
    origin = await startMockOrigin();
    origin.setDefault({ body: "ok" });
    project = await projectDir("cdn-hooks-jwt-");
    await writeFiles(project, { "hooks/role.ts": ROLE });
    edge = await bootEdge(
      { name: "hooks-jwt", origins: { app: { servers: [{ address: origin.address }] } }, jwt: { algorithms: ["HS256"], secret: { env: "JWT_SECRET" }, paths: ["/admin/*", "/app/*"] }, hooks: { access: "./hooks/role.ts" } },
      { baseDir: project, env: { JWT_SECRET: SECRET } },
    );
  }, 60_000);
  afterAll(async () => {
    if (edge) {
      expect(luaErrors(await edge.errors())).toEqual([]);
      await edge.stop();
    }
    await origin?.close();
    if (project) await rm(project, { recursive: true, force: true });
  });

  it("sees scalar claims, not lists, and nothing where the gate did not run", async () => {
    const exp = Math.floor(Date.now() / 1000) + 600;
    const user = await http(edge, "/app/x", { headers: { authorization: `Bearer ${token({ role: "user", lvl: 3, groups: ["a"], exp })}` } });
    expect(user.status).toBe(200);
    expect(origin.requests.find((q) => q.path === "/app/x")!.headers["x-role"]).toBe("user/3/-");
    expect((await http(edge, "/admin/x", { headers: { authorization: `Bearer ${token({ role: "user", exp })}` } })).status).toBe(403);
    expect((await http(edge, "/admin/y", { headers: { authorization: `Bearer ${token({ role: "admin", exp })}` } })).status).toBe(200);
    await http(edge, "/public");
    expect(origin.requests.find((q) => q.path === "/public")!.headers["x-role"]).toBe("none/-/-");
  });
});
