/**
 * `cdn-build test` and the public test API (`cdn-build/testing`), run as a user runs them: the CLI as a real
 * process, finding *.edge.test.ts next to a policy and running them in vitest against a booted bundle.
 */
import { execa } from "execa";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { stripVTControlCharacters } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli } from "./support/deploy.js";
import { projectDir } from "./support/edge.js";
import { bootPolicy, startMockOrigin } from "../src/testing/index.js";

let dir: string;
const out = (r: { stdout: string; stderr: string }) => stripVTControlCharacters(r.stdout + r.stderr);

/** nginx masters whose command line names `needle` (a bundle folder of a run that should have stopped it). */
async function nginxFor(needle: string): Promise<string[]> {
  const ps = await execa("ps", ["-eo", "args"], { reject: false });
  return ps.stdout.split("\n").filter((l) => /nginx/.test(l) && l.includes(needle));
}

const POLICY = `import { definePolicy } from "cdn-build";
export default definePolicy({
  name: "tiny",
  listen: { http: 8080 },
  origins: {
    app: { servers: [{ address: "127.0.0.1:3000" }] },
    api: { servers: [{ address: "127.0.0.1:3001" }] },
  },
  defaultOrigin: "app",
  cache: { ttl: { "200": "1m" } },
  headers: { cacheStatus: "X-Edge-Cache", response: { set: { "X-Env": process.env.EDGE_LABEL ?? "none" } } },
  health: { path: "/healthz" },
  rules: [{ name: "api", when: { path: { prefix: "/api/" } }, then: { origin: "api" } }],
});
`;

const PASSING = `import { afterAll, beforeAll, expect, it } from "vitest";
import { bootPolicy, expectCacheStatus, expectHeader, expectOriginHits, expectNoErrors, startMockOrigin, type MockOrigin, type TestEdge } from "cdn-build/testing";
let app: MockOrigin, api: MockOrigin, edge: TestEdge;
beforeAll(async () => {
  app = await startMockOrigin();
  api = await startMockOrigin();
  edge = await bootPolicy(new URL("./edge.policy.ts", import.meta.url), { origin: app, origins: { api }, env: { EDGE_LABEL: "staging" } });
});
afterAll(async () => { await edge?.stop(); await app?.close(); await api?.close(); });
it("each pool goes to its own mock origin; the cache status header is the policy's", async () => {
  expectCacheStatus(await edge.get("/a"), "MISS");
  expectCacheStatus(await edge.get("/a"), ["HIT", "HIT-RAM"]);
  expectOriginHits(app, "/a", 1);
  await edge.get("/api/x");
  expectOriginHits(api, "/api/x", 1);
  expectOriginHits(app, "/api/x", 0);
});
it("env is seen by the policy at load time, and restored afterwards", async () => {
  expectHeader(await edge.get("/a"), "X-Env", "staging");
  expect(process.env.EDGE_LABEL).toBeUndefined();
});
it("the access log and error.log are readable", async () => {
  await expect.poll(async () => (await edge.accessLog()).filter((l) => l.uri === "/a").length).toBe(3);
  await expectNoErrors(edge);
});
`;

const FAILING = `import { afterAll, beforeAll, it } from "vitest";
import { bootPolicy, expectCacheStatus, expectOriginHits, startMockOrigin, type MockOrigin, type TestEdge } from "cdn-build/testing";
let origin: MockOrigin, edge: TestEdge;
beforeAll(async () => {
  origin = await startMockOrigin();
  edge = await bootPolicy(new URL("./edge.policy.ts", import.meta.url), { origin });
});
afterAll(async () => { await edge?.stop(); await origin?.close(); });
it("expects a hit on a first request", async () => {
  origin.route("/cold", { headers: { "cache-control": "max-age=60" }, body: "x" });
  expectCacheStatus(await edge.get("/cold"), "HIT");
});
it("expects no origin request", async () => {
  await edge.get("/other");
  expectOriginHits(origin, "/other", 0);
});
`;

const INVALID = `import { it } from "vitest";
import { bootPolicy } from "cdn-build/testing";
it("boots an invalid policy", async () => {
  await bootPolicy(new URL("./broken.policy.yaml", import.meta.url));
});
`;

beforeAll(async () => {
  dir = await projectDir("cdn-policytests-");
  for (const d of ["pass", "fail", "invalid", "empty"]) await mkdir(join(dir, d));
  await writeFile(join(dir, "pass", "edge.policy.ts"), POLICY);
  await writeFile(join(dir, "pass", "tiny.edge.test.ts"), PASSING);
  await writeFile(join(dir, "fail", "edge.policy.ts"), POLICY);
  await writeFile(join(dir, "fail", "tiny.edge.test.ts"), FAILING);
  await writeFile(join(dir, "invalid", "broken.policy.yaml"), "name: broken\norigins:\n  app: { servers: [{ address: 'nowhere' }] }\n");
  await writeFile(join(dir, "invalid", "broken.edge.test.ts"), INVALID);
  await writeFile(join(dir, "empty", "edge.policy.ts"), POLICY);
  await writeFile(join(dir, "pass", "notes.txt"), "not a policy\n");
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("bootPolicy (in this process)", () => {
  it("boots a policy with an HTTPS listener over plain HTTP, its TLS settings left out", async () => {
    const origin = await startMockOrigin();
    const edge = await bootPolicy(
      {
        name: "tls-site",
        listen: { http: 80, https: { port: 443, http2: true } },
        tls: { certificates: [{ certificate: "/nonexistent/site.pem", key: "/nonexistent/site.key" }], redirectHttp: 308, hsts: { maxAge: "365d" } },
        origins: { app: { servers: [{ address: "127.0.0.1:1" }] } },
        cache: {},
        health: {},
      },
      { origin },
    );
    try {
      const r = await edge.get("/page");
      expect([r.status, r.cacheStatus, r.headers["strict-transport-security"]]).toEqual([200, "MISS", undefined]);
      // ... but they must be valid as written
      const broken = { name: "tls-site", listen: { http: 80, https: { port: 443 } }, tls: { certificates: [{ certificate: "/a.pem", key: "/a.key" }], redirectHttp: true }, origins: { app: { servers: [{ address: "127.0.0.1:1" }] } } };
      await expect(bootPolicy(broken, { origin })).rejects.toThrow(/CDN1005 \/tls\/redirectHttp/);
    } finally {
      await edge.stop();
      await origin.close();
    }
  });
});

describe("cdn-build test", () => {
  it("runs the examples' own tests against their booted bundles: exit 0, nginx stopped after", async () => {
    const r = await cli(["test", "examples"], { timeout: 180_000 });
    expect(r.exitCode, out(r)).toBe(0);
    const text = out(r);
    for (const f of ["shop/shop.edge.test.ts", "storefront/storefront.edge.test.ts", "edge-hooks/hooks.edge.test.ts", "gated/gated.edge.test.ts", "blog/blog.edge.test.ts"]) expect(text).toContain(f);
    expect(text).toMatch(/Test Files\s+\d+ passed \(\d+\)/);
    expect(text).not.toMatch(/failed/);
    expect(await nginxFor("/cdn-test-")).toEqual([]);
    // vitest's cache goes to a temporary folder, not into the user's tree
    const left = await execa("find", ["examples", "-name", "node_modules"]);
    expect(left.stdout).toBe("");
  });

  it("a policy's tests: per-pool mock origins, env at load time, the policy's cache status header", async () => {
    const r = await cli(["test", join(dir, "pass", "edge.policy.ts")]);
    expect(r.exitCode, out(r)).toBe(0);
    expect(out(r)).toMatch(/Tests\s+3 passed \(3\)/);
  });

  it("a failing assertion: exit 1, and the message names the request, what came and what was expected", async () => {
    const r = await cli(["test", join(dir, "fail")]);
    expect(r.exitCode).toBe(1);
    const text = out(r);
    expect(text).toMatch(/Tests\s+2 failed \(2\)/);
    expect(text).toContain("GET /cold: cache status MISS, expected HIT");
    expect(text).toMatch(/origin hits for \/other: 1, expected 0 \(last requests: GET \/cold, GET \/other\)/);
    expect(await nginxFor("/cdn-test-")).toEqual([]);
  });

  it("-t runs only the tests whose name matches", async () => {
    const r = await cli(["test", join(dir, "fail"), "-t", "no origin request"]);
    expect(r.exitCode).toBe(1);
    expect(out(r)).toMatch(/Tests\s+1 failed \| 1 skipped \(2\)/);
  });

  it("an invalid policy fails the test with the policy's diagnostics", async () => {
    const r = await cli(["test", join(dir, "invalid")]);
    expect(r.exitCode).toBe(1);
    expect(out(r)).toMatch(/broken\.policy\.yaml:3:\d+ error CDN\d+ \/origins\/app\/servers\/0\/address/);
  });

  it("no test file next to the policy: exit 1 and says where it looked; usage errors exit 2; --help exits 0", async () => {
    const none = await cli(["test", join(dir, "empty", "edge.policy.ts")]);
    expect(none.exitCode).toBe(1);
    expect(none.stderr).toMatch(/no policy tests \(\*\.edge\.test\.ts\) next to or under .*empty\/edge\.policy\.ts/);
    for (const [args, msg] of [
      [["test", join(dir, "missing")], /cannot read/],
      [["test", join(dir, "pass", "notes.txt")], /neither a policy .* nor a folder/],
      [["test", "--frobnicate"], /Unknown option '--frobnicate'/],
    ] as [string[], RegExp][]) {
      const r = await cli(args);
      expect(r.exitCode, args.join(" ")).toBe(2);
      expect(r.stderr).toMatch(msg);
    }
    const help = await cli(["test", "--help"]);
    expect(help.exitCode).toBe(0);
    expect(help.stdout).toMatch(/^Usage: cdn-build test/);
  });
});
