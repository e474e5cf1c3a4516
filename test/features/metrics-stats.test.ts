/** `cdn-build stats`: fleet totals and the per-node table from two booted nodes' /__stats. */
import { execa } from "execa";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootEdge, type Edge } from "../support/edge.js";
import { startMockOrigin, type MockOrigin } from "../support/mock-origin.js";
import { http, luaErrors } from "../support/http.js";
import { waitFor } from "../support/wait.js";
import { fleetTotals, runStats, statsUrl, type FleetTotals, type NodeResult } from "../../src/stats/cli.js";
import { freePort } from "../../src/runtime/nginx.js";

const BIN = join(import.meta.dirname, "..", "..", "bin", "cdn-build.js");

let origin: MockOrigin;
const nodes: Edge[] = [];

/** Runs the command in-process; resolves to its exit code and what it printed. */
async function stats(args: string[]): Promise<{ code: number; out: string; err: string; sleeps: number[] }> {
  let out = "";
  let err = "";
  const sleeps: number[] = [];
  const code = await runStats(args, { out: (t) => (out += t), err: (t) => (err += t), sleep: async (ms) => void sleeps.push(ms) });
  return { code, out, err, sleeps };
}

async function counted(edge: Edge): Promise<number> {
  return (JSON.parse((await http(edge, "/__stats")).body) as { total_requests: number }).total_requests;
}

describe("cdn-build stats against two nodes", () => {
  beforeAll(async () => {
    origin = await startMockOrigin();
    origin.route("/x", { headers: { "cache-control": "max-age=600" }, body: "x".repeat(100) });
    origin.route("/missing", { status: 404, body: "no" });
    for (const name of ["node-a", "node-b"]) {
      nodes.push(await bootEdge({ name, origins: { app: { servers: [{ address: origin.address }], retries: 0 } }, cache: {}, metrics: {} }));
    }
    // node a: 1 MISS + 4 HIT; node b: 1 MISS + 2 HIT + one 404 from the origin (a MISS too)
    for (let i = 0; i < 5; i++) await http(nodes[0]!, "/x");
    for (let i = 0; i < 3; i++) await http(nodes[1]!, "/x");
    expect((await http(nodes[1]!, "/missing")).status).toBe(404);
    await waitFor(async () => (await counted(nodes[0]!)) === 5 && (await counted(nodes[1]!)) === 4, { timeout: 5000, what: "both nodes to count their requests" });
  });
  afterAll(async () => {
    for (const n of nodes) await n.stop();
    await origin?.close();
  });

  it("prints the fleet's totals as JSON, summed over the nodes", async () => {
    const r = await stats([nodes[0]!.baseUrl, nodes[1]!.baseUrl, "--json"]);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out) as { fleet: FleetTotals; nodes: NodeResult[] };
    expect(doc.fleet.nodes).toBe(2);
    expect(doc.fleet.up).toBe(2);
    expect(doc.fleet.total_requests).toBe(9);
    expect(doc.fleet.origin_requests).toBe(3);
    expect(doc.fleet.cache_hits).toBe(6);
    expect(doc.fleet.cache_misses).toBe(3);
    expect(doc.fleet.cache_hit_ratio).toBeCloseTo(6 / 9, 10);
    expect(doc.fleet.errors_4xx).toBe(1);
    expect(doc.fleet.errors_5xx).toBe(0);
    expect(doc.nodes.map((n) => n.stats!.total_requests)).toEqual([5, 4]);
    expect(doc.fleet.bandwidth_saved_bytes).toBe(doc.nodes[0]!.stats!.bandwidth_saved_bytes + doc.nodes[1]!.stats!.bandwidth_saved_bytes);
    expect(doc.nodes.every((n) => n.url.endsWith("/__stats"))).toBe(true);
    for (const n of nodes) expect(luaErrors(await n.errors())).toEqual([]);
  });

  it("prints a table with fleet totals and one row per node (the real CLI)", async () => {
    const r = await execa("node", [BIN, "stats", nodes[0]!.baseUrl, `${nodes[1]!.baseUrl}/__stats`], { reject: false });
    expect(r.stderr).toBe("");
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^fleet: 2\/2 nodes answered/);
    expect(r.stdout).toMatch(/requests 9 +hit ratio 66\.7% +origin requests 3/);
    const rows = r.stdout.split("\n").filter((l) => l.startsWith("http://"));
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatch(/ 5 +80\.0% .* ok$/);
    expect(rows[1]).toMatch(/ 4 +50\.0% .* ok$/);
  });

  it("refreshes with --watch, measuring rates between refreshes, and stops after --count", async () => {
    let calls = 0;
    let out = "";
    const code = await runStats([nodes[0]!.baseUrl, "--json", "--watch", "1", "--count", "3"], {
      out: (t) => (out += t),
      err: (t) => (out += t),
      // between refreshes: two more requests on node a
      sleep: async () => {
        calls++;
        await http(nodes[0]!, "/x");
        await http(nodes[0]!, "/x");
        await waitFor(async () => (await counted(nodes[0]!)) === 5 + 2 * calls, { timeout: 5000, what: "node a to count" });
      },
    });
    expect(code).toBe(0);
    expect(calls).toBe(2);
    const docs = out.trim().split("\n").map((l) => JSON.parse(l) as { fleet: FleetTotals; nodes: NodeResult[] });
    expect(docs.map((d) => d.fleet.total_requests)).toEqual([5, 7, 9]);
    expect(docs[1]!.nodes[0]!.rates.requests).toBeGreaterThan(0);
  });

  it("reports a node that does not answer and exits 1; usage errors exit 2", async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const r = await stats([nodes[0]!.baseUrl, dead, "--json", "--timeout", "2000"]);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.out) as { fleet: FleetTotals; nodes: NodeResult[] };
    expect(doc.fleet.up).toBe(1);
    expect(doc.fleet.total_requests).toBeGreaterThanOrEqual(5);
    expect(doc.nodes[1]!.ok).toBe(false);
    expect((await stats([])).code).toBe(2);
    expect((await stats(["ftp://x"])).code).toBe(2);
    expect((await stats([nodes[0]!.baseUrl, "--count", "2"])).code).toBe(2);
    expect((await stats([nodes[0]!.baseUrl, "--watch", "-1"])).code).toBe(2);
  });

  it("adds the stats path only to bare node URLs", () => {
    expect(statsUrl("http://10.0.0.1:8080", "/__stats")).toBe("http://10.0.0.1:8080/__stats");
    expect(statsUrl("http://10.0.0.1:8080/", "/s")).toBe("http://10.0.0.1:8080/s");
    expect(statsUrl("http://10.0.0.1:8080/custom", "/__stats")).toBe("http://10.0.0.1:8080/custom");
    expect(fleetTotals([]).cache_hit_ratio).toBeNull();
  });
});
