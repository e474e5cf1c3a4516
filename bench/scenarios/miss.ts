import { cpu, cpuRatio, diskDir, nginxTarget, noiseNote, startOrigin, rpsRatio, runRounds, Scenario, verdict, type BenchContext, type Target } from "../lib.js";
import { cachePolicy, EDGE_GATES, edgePolicy, ENV, gatesHeaders, PATH, QUERY } from "../policies.js";
import type { Section } from "../stats.js";
import { bootStock } from "./hits.js";

const STOCK = "stock nginx proxy_cache MISS";
const DISK = "cdn-build disk tier MISS";
const FULL = "cdn-build full edge MISS (RAM tier, gates, 1,000 rules, JSON log)";

/**
 * wrk script: every request a new URL (a run id and a counter in the query, so no two runs share a key), all
 * for the hit rows' path and query; the origin answers each one, cacheable.
 */
/** 64 MB of keys (about 500,000) and 8 GB: more than ROUNDS x 5 s of misses store. */
const DISK_ROOM = { keysZone: "64m", size: "8g" };

const SCRIPT = `
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, "${PATH}?${QUERY}&run={RUN}&n=" .. n)
end
`;

/**
 * The cost of a MISS: worker CPU per request when every request is a new URL (fetched from the origin,
 * stored), for stock proxy_cache and the bundles, in interleaved rounds.
 */
export async function miss(ctx: BenchContext): Promise<Section[]> {
  const s = new Scenario(ctx.bin, ctx.clientBin);
  return s.run(async () => {
    const origin = await startOrigin(s);
    const headers = gatesHeaders(EDGE_GATES);
    // room for every object of every round: nothing is evicted while misses are measured (an eviction
    // racing nginx's cache loader, a minute after the start, logs [crit] stat() failures, stock nginx included)
    const stock = await bootStock(s, origin, DISK_ROOM);
    const disk = await s.bootPolicy("disk tier", cachePolicy("bench-miss-disk", origin.address, { disk: DISK_ROOM }), ENV);
    const full = await s.bootPolicy("full edge", edgePolicy(origin.address, { gates: true, rules: 1000, log: await diskDir(s), disk: DISK_ROOM }), ENV);
    const base = `${PATH}?${QUERY}`;
    const targets: Target[] = [
      nginxTarget(STOCK, stock, base, { headers, script: SCRIPT, origin: "every" }),
      nginxTarget(DISK, disk, base, { headers, script: SCRIPT, origin: "every" }),
      nginxTarget(FULL, full, base, { headers, script: SCRIPT, origin: "every" }),
    ];
    const r = await runRounds("miss", targets, origin);
    const rows = targets.map((t) => {
      const x = cpuRatio(r, t.name, STOCK);
      return {
        config: t.name,
        ratio: rpsRatio(r, t.name, STOCK),
        cpuUs: cpu(r, t.name),
        note: t.name === STOCK ? "every request a new URL: fetched, stored" : `CPU x${x.median.toFixed(2)} [${x.min.toFixed(2)}–${x.max.toFixed(2)}] of stock's MISS (target <= 1.3: ${verdict(x.median <= 1.3)})`,
      };
    });
    return [{ title: "MISS (1 KiB, each request a new URL)", baseline: STOCK, rows, notes: [noiseNote(r)] }];
  });
}
