import { execa } from "execa";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { bootEdge, type Edge } from "../support/edge.js";
import { startMockOrigin, type MockOrigin } from "../support/mock-origin.js";
import { http, luaErrors } from "../support/http.js";
import type { Policy } from "../../src/policy/types.js";
import { freePort } from "../../src/runtime/nginx.js";

const BIN = join(import.meta.dirname, "..", "..", "bin", "cdn-build.js");
const TOKEN = "cli-token-0123456789";
const SECRET = "cli-hmac-secret";

let dir: string;
let origin: MockOrigin;
let edge: Edge;
let policyFile: string;

function cli(args: string[], env: Record<string, string> = {}) {
  return execa("node", [BIN, ...args], { reject: false, cwd: dir, env: { PURGE_TOKEN: "", PURGE_HMAC: "", ...env } });
}

const u = (path: string) => `http://127.0.0.1${path}`;

async function warm(path: string) {
  await http(edge, path);
  expect((await http(edge, path)).headers["x-edge-cache"]).toBe("HIT");
}

describe("cdn-build purge", () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "cdn-purge-cli-"));
    origin = await startMockOrigin();
    origin.setDefault((req, n) => ({ headers: { "cache-control": "max-age=3600", "cache-tag": "cli" }, body: `${req.url}#${n}` }));
    const policy = {
      name: "purge-cli",
      origins: { app: { servers: [{ address: origin.address }] } },
      cache: { ttl: { "200": "1h" } },
      headers: { cacheStatus: "X-Edge-Cache" },
      purge: { token: { env: "PURGE_TOKEN" }, hmac: { secret: { env: "PURGE_HMAC" } } },
    } as Policy;
    policyFile = join(dir, "edge.policy.json");
    await writeFile(policyFile, JSON.stringify({ ...policy, listen: { http: 8080 } }, null, 2));
    edge = await bootEdge(policy, { env: { PURGE_TOKEN: TOKEN, PURGE_HMAC: SECRET } });
  });
  afterEach(async () => {
    expect(luaErrors(await edge.errors())).toEqual([]);
  });
  afterAll(async () => {
    await edge?.stop();
    await origin?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("prints help and exits 0", async () => {
    for (const args of [["purge", "--help"], ["help", "purge"]]) {
      const r = await cli(args);
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toMatch(/Usage: cdn-build purge/);
    }
  });

  it("exits 2 on usage errors", async () => {
    const bad = [
      ["purge"],
      ["purge", policyFile, "--node", edge.baseUrl],
      ["purge", policyFile, "--url", u("/a")],
      ["purge", policyFile, "--all", "--url", u("/a"), "--node", edge.baseUrl],
      ["purge", policyFile, "--url", "/relative", "--node", edge.baseUrl],
      ["purge", policyFile, "--all", "--node", edge.baseUrl, "--bogus"],
      ["purge", policyFile, "--all", "--node", edge.baseUrl, "--prefetch", join(dir, "missing.txt")],
    ];
    const codes = await Promise.all(bad.map((args) => cli(args, { PURGE_TOKEN: TOKEN })));
    codes.forEach((r, i) => expect(r.exitCode, bad[i]!.join(" ")).toBe(2));
    expect(codes[0]!.stderr).toContain("run `cdn-build purge --help`");
  });

  it("signs with the token from the environment, purges and reports", async () => {
    await warm("/c1");
    await warm("/c2");
    const r = await cli(["purge", policyFile, "--url", u("/c1"), "--node", edge.baseUrl], { PURGE_TOKEN: TOKEN });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain(`${edge.baseUrl}: ok, 1 key purged, 1 file removed`);
    expect(r.stdout).toContain(u("/c1"));
    expect((await http(edge, "/c1")).headers["x-edge-cache"]).toBe("MISS");
    expect((await http(edge, "/c2")).headers["x-edge-cache"]).toBe("HIT");
  });

  it("signs with HMAC when only the secret is set, and prints JSON", async () => {
    await warm("/c3");
    const r = await cli(["purge", policyFile, "--tag", "cli", "--node", edge.baseUrl, "--json"], { PURGE_HMAC: SECRET });
    expect(r.exitCode, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.ok).toBe(true);
    expect(out.nodes[0]).toMatchObject({ node: edge.baseUrl, status: 200, ok: true });
    expect(out.nodes[0].answer.keys).toContain(u("/c3"));
    expect((await http(edge, "/c3")).headers["x-edge-cache"]).toBe("MISS");
  });

  it("warms a URL list after purging with --prefetch", async () => {
    await warm("/w1");
    const list = join(dir, "warm.txt");
    await writeFile(list, `# hot pages\n${u("/w1")}\n\n${u("/w2?x=1")}\n`);
    const r = await cli(["purge", policyFile, "--prefix", u("/w"), "--node", edge.baseUrl, "--prefetch", list, "--concurrency", "2"], { PURGE_TOKEN: TOKEN });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain(`prefetch ${edge.baseUrl} ${u("/w1")}: 200 MISS`);
    expect(r.stdout).toContain(`prefetch ${edge.baseUrl} ${u("/w2?x=1")}: 200 MISS`);
    expect(r.stdout).toContain("prefetched 2/2");
    expect((await http(edge, "/w1")).headers["x-edge-cache"]).toBe("HIT");
    expect((await http(edge, "/w2?x=1")).headers["x-edge-cache"]).toBe("HIT");
    expect(origin.hits("/w1")).toBe(2);
  });

  it("exits 1 when a node fails or refuses, and when no credential is set", async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const r = await cli(["purge", policyFile, "--all", "--soft", "--node", edge.baseUrl, "--node", dead], { PURGE_TOKEN: TOKEN });
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain(`${edge.baseUrl}: ok, everything marked stale`);
    expect(r.stdout).toContain(`${dead}: FAILED`);
    expect(r.stdout).toContain("1 of 2 nodes failed");
    const [wrong, none] = await Promise.all([
      cli(["purge", policyFile, "--url", u("/x"), "--node", edge.baseUrl], { PURGE_TOKEN: "nope" }),
      cli(["purge", policyFile, "--url", u("/x"), "--node", edge.baseUrl]),
    ]);
    expect(wrong.exitCode).toBe(1);
    expect(wrong.stdout).toContain("HTTP 403");
    expect(none.exitCode).toBe(1);
    expect(none.stderr).toContain("set PURGE_TOKEN or PURGE_HMAC");
  });
});
