/**
 * The contract between the compiler and the Lua runtime (src/contract/), the feature registries and the
 * import graph: the checks that keep the seams of docs/architecture.md from drifting.
 */
import { cp, mkdtemp, readFile, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve, dirname } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { compile } from "../../src/compile.js";
import { CDN_VARS, CTX_KEYS, METRIC_NAMES, NGINX_NAMES, SHARED_DICTS, STAGE_ORDER } from "../../src/ir/names.js";
import type { Policy } from "../../src/policy/types.js";
import type { PolicyData } from "../../src/contract/index.js";

const ROOT = resolve(import.meta.dirname, "../..");

function files(dir: string, ext: RegExp): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) out.push(...files(full, ext));
    else if (ext.test(name)) out.push(full);
  }
  return out;
}

/** A policy that turns on every runtime feature. */
const EVERYTHING = {
  name: "everything",
  listen: { http: 8080 },
  origins: { app: { servers: [{ address: "127.0.0.1:3000" }] }, img: { servers: [{ address: "127.0.0.1:3001" }] } },
  defaultOrigin: "app",
  cache: { ram: { size: "8m" }, staleWhileRevalidate: "10s" },
  headers: { request: { set: { "X-Edge": "1" } }, response: { set: { "X-Served-By": "edge" } } },
  purge: { token: { env: "PURGE_TOKEN" } },
  redis: { host: "127.0.0.1", port: 6379 },
  metrics: {},
  clientAddress: { trustedProxies: ["10.0.0.0/8"] },
  originSecret: { secret: { env: "EDGE_SECRET" } },
  ipRules: { deny: ["203.0.113.0/24"] },
  rateLimit: [
    { name: "ip", rate: "10r/s" },
    { name: "user", rate: "10r/s", key: { claim: "sub" } },
  ],
  waf: {},
  jwt: { algorithms: ["HS256"], secret: { env: "JWT_SECRET" }, paths: ["/account/*"] },
  signedUrls: { secret: { env: "DL_KEY" }, paths: ["/dl/*"] },
  rules: [
    { name: "ttl", when: { path: "/static/*" }, then: { cache: { ttl: "1h" }, responseHeaders: { set: { "X-Rule": "1" } } } },
    { name: "img", when: { path: "/img/*" }, then: { origin: "img" } },
  ],
  websocket: { paths: ["/ws/*"] },
  compression: {},
} as unknown as Policy;

describe("contract: the data a feature hands to Lua is declared once", () => {
  it("rejects, on both sides, a field renamed in the contract only (tsc on src/ and lua-src/)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "cdn-contract-"));
    try {
      for (const p of ["src", "lua-src", "test", "scripts", "bench", "examples", "tsconfig.json", "vitest.config.ts", "package.json"]) {
        if (existsSync(join(ROOT, p))) await cp(join(ROOT, p), join(dir, p), { recursive: true });
      }
      await symlink(join(ROOT, "node_modules"), join(dir, "node_modules"));
      const contract = join(dir, "src/contract/cache.d.ts");
      const text = await readFile(contract, "utf8");
      expect(text).toContain("  lockTimeout: number;");
      await writeFile(contract, text.replace("  lockTimeout: number;", "  lockWaitSeconds: number;"));
      const tsc = join(ROOT, "node_modules/.bin/tsc");
      const node = await execa(tsc, ["-p", "tsconfig.json", "--noEmit"], { cwd: dir, reject: false });
      const lua = await execa(tsc, ["-p", "lua-src/tsconfig.json", "--noEmit"], { cwd: dir, reject: false });
      expect(node.exitCode).not.toBe(0);
      expect(node.stdout).toMatch(/src\/features\/cache\.ts.*lockTimeout/);
      expect(lua.exitCode).not.toBe(0);
      expect(lua.stdout).toMatch(/lua-src\/features\/cache\/index\.ts.*lockTimeout/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe("contract: registries and phases", () => {
  it("the committed registries match the feature files (scripts/gen-registry.ts --check)", async () => {
    const r = await execa(join(ROOT, "node_modules/.bin/tsx"), ["scripts/gen-registry.ts", "--check"], { cwd: ROOT, reject: false });
    expect(r.stderr).toBe("");
    expect(r.exitCode).toBe(0);
  });

  it("plans every enabled handler in the contract's stage order, and nothing for a feature that is off", () => {
    const { bundle, diagnostics } = compile(EVERYTHING, { target: "openresty" });
    expect(diagnostics.filter((d) => d.severity === "error")).toEqual([]);
    const data = bundle!.files.get("lua/policy_data.lua")!;
    // the plan as emitted: one { "feature", "stage" } pair per handler
    const plan = (phase: string) => {
      // an empty phase is emitted as `["body"] = {},`
      const block = new RegExp(`\\["${phase}"\\] = \\{(?:\\},|([\\s\\S]*?)\\n    \\},)`).exec(data)?.[1] ?? "";
      return [...block.matchAll(/\{\s*"([^"]+)",\s*"([^"]+)",\s*\}/g)].map((m) => `${m[1]}@${m[2]}`);
    };
    expect(plan("access")).toEqual([
      "clientAddress@client",
      // the purge token never reaches the origin (lua-src/features/purge/guard.ts)
      "purge@purge",
      "originSecret@gate:secret",
      "ipRules@gate:ip",
      "rateLimit@gate:rate",
      "waf@gate:waf",
      "jwt@gate:jwt",
      "signedUrls@gate:signed",
      "rateLimit@gate:rate-claims",
      "rules@rules",
      // the body deadline (on by default)
      "client@client:body",
      "websocket@websocket",
      "cache@cache",
      "headers@headers",
      "rules@rules:ttl",
    ]);
    expect(plan("header")).toEqual(["rateLimit@rate-limit", "rules@rules:nostore", "cache@cache", "purge@purge", "headers@headers", "rules@rules:headers", "compression@compression"]);
    expect(plan("body")).toEqual([]);
    expect(plan("log")).toEqual(["cache@cache", "metrics@metrics"]);
    expect(plan("initWorker").at(-1)).toBe("metrics@metrics");
    // every stage named in a plan is a stage of the contract, in order
    for (const phase of Object.keys(STAGE_ORDER) as (keyof typeof STAGE_ORDER)[]) {
      const order: readonly string[] = STAGE_ORDER[phase];
      const at = plan(phase).map((s) => order.indexOf(s.split("@")[1]!));
      expect(at.every((i) => i >= 0)).toBe(true);
      expect([...at].sort((a, b) => a - b)).toEqual(at);
    }
  });

  it("emits no Lua hook directive for a phase with no handler", () => {
    // the body deadline (on by default) is the one access handler of a minimal policy
    const minimal = { name: "minimal", listen: { http: 8080 }, origins: { app: { servers: [{ address: "127.0.0.1:3000" }] } }, client: { bodyDeadline: false } } as Policy;
    const conf = compile(minimal, { target: "openresty" }).bundle!.files.get("nginx.conf")!;
    expect(conf).not.toMatch(/access_by_lua_block { cdn|header_filter_by_lua|body_filter_by_lua|log_by_lua/);
    const data = compile(EVERYTHING, { target: "openresty" }).bundle!.files.get("nginx.conf")!;
    expect(data).toMatch(/header_filter_by_lua_block { cdn.headers\(\) }[\s\S]*log_by_lua_block { cdn.log\(\) }[\s\S]*location \/ \{[\s\S]*access_by_lua_block { cdn.access\(\) }/);
    expect(data).not.toContain("body_filter_by_lua");
  });
});

describe("contract: runtime names", () => {
  const declared = new Set([...Object.keys(CDN_VARS), ...Object.keys(SHARED_DICTS), ...Object.keys(CTX_KEYS), ...Object.keys(NGINX_NAMES), ...Object.keys(METRIC_NAMES)]);
  // families of generated names: TTL locations (@cdn_ttl_<s>), experiment cookies (cdn_exp_<name>); and
  // the C structs lua-src/core/fs.ts declares over FFI
  const families = [/^cdn_ttl_/, /^cdn_exp_/, /^cdn_fs_(dirent|passwd)$/];
  // the series of a histogram family (cdn_edge_response_seconds_bucket...)
  const histogramSeries = (name: string) => /_(bucket|sum|count)$/.test(name) && METRIC_NAMES[name.replace(/_(bucket|sum|count)$/, "") as keyof typeof METRIC_NAMES] === "histogram";

  it("every cdn_* name in templates, src/ and lua-src/ is declared in src/contract/names.d.ts", () => {
    const unknown: string[] = [];
    const sources = [...files(join(ROOT, "templates"), /\.hbs$/), ...files(join(ROOT, "src"), /\.ts$/), ...files(join(ROOT, "lua-src"), /\.ts$/)];
    for (const f of sources) {
      for (const m of readFileSync(f, "utf8").matchAll(/\bcdn_[a-z0-9_]+/g)) {
        const name = m[0];
        if (!declared.has(name) && !families.some((re) => re.test(name)) && !histogramSeries(name)) unknown.push(`${relative(ROOT, f)}: ${name}`);
      }
    }
    expect(unknown).toEqual([]);
  });
});

describe("contract: no import cycles", () => {
  /** Relative imports of the compiled modules (dist/src), resolved to files. */
  function graph(): Map<string, string[]> {
    const dist = join(ROOT, "dist/src");
    const g = new Map<string, string[]>();
    for (const f of files(dist, /\.js$/)) {
      const text = readFileSync(f, "utf8");
      const deps = [...text.matchAll(/^(?:import|export)\s[^;]*?from\s+"(\.[^"]+)"|^import\s+"(\.[^"]+)"/gm)]
        .map((m) => resolve(dirname(f), (m[1] ?? m[2])!))
        .filter((p) => p.endsWith(".js"));
      g.set(f, deps);
    }
    return g;
  }

  it("src/ has no import cycle", () => {
    const g = graph();
    const state = new Map<string, 1 | 2>();
    const cycles: string[] = [];
    const visit = (f: string, path: string[]) => {
      if (state.get(f) === 2) return;
      if (state.get(f) === 1) {
        cycles.push([...path.slice(path.indexOf(f)), f].map((p) => relative(ROOT, p)).join(" -> "));
        return;
      }
      state.set(f, 1);
      for (const d of g.get(f) ?? []) visit(d, [...path, f]);
      state.set(f, 2);
    };
    for (const f of g.keys()) visit(f, []);
    expect(cycles).toEqual([]);
  });

  it("every feature module imports first and alone in plain Node (no test transform)", async () => {
    const dir = join(ROOT, "dist/src/features");
    const modules = (await readdir(dir)).filter((f) => f.endsWith(".js"));
    expect(modules.length).toBeGreaterThan(10);
    for (const m of [...modules.map((f) => join(dir, f)), join(ROOT, "dist/src/compile.js"), join(ROOT, "dist/src/index.js")]) {
      const r = await execa(process.execPath, ["--input-type=module", "-e", `await import(${JSON.stringify(m)})`], { reject: false });
      expect(`${relative(ROOT, m)}: ${r.exitCode} ${r.stderr}`).toBe(`${relative(ROOT, m)}: 0 `);
    }
  }, 60_000);
});

// The emitted data is typed by the contract (a compile-time check on the test itself).
const _typed: (d: PolicyData) => void = () => undefined;
void _typed;
