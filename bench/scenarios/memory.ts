import { drive, memoryKb, nginxWorkers, probe, Scenario, startOrigin, type BenchContext } from "../lib.js";
import { cachePolicy, ENV } from "../policies.js";
import type { Section } from "../stats.js";

const DICT = "64m";
const DICT_MIB = 64;
/** Distinct 4 KiB objects per batch: 16 MiB of bodies. */
const BATCH = 4000;
/** A bound: 20 batches are 320 MiB of bodies, five times the dict. */
const MAX_BATCHES = 20;

const mib = (kb: number) => (kb / 1024).toFixed(1);

/**
 * Worker memory with the RAM tier full: a bundle with a 64 MiB RAM tier, filled with distinct 4 KiB objects
 * (each requested three times: MISS, the disk HIT that copies it, a HIT-RAM that the worker's header cache
 * keeps) until the dict evicts (the oldest objects answer `HIT` from disk again); then the worker's RSS.
 */
export async function memory(ctx: BenchContext): Promise<Section[]> {
  const s = new Scenario(ctx.bin, ctx.clientBin);
  return s.run(async () => {
    const origin = await startOrigin(s);
    const n = await s.bootPolicy("RAM tier 64m", cachePolicy("bench-memory", origin.address, { ram: DICT }), ENV);
    const url = (i: number) => `${n.baseUrl}/4k/o${i}`;
    await drive(200, 8, (i) => url(1_000_000 + (i % 20)));
    const [worker] = await nginxWorkers(n.pid);
    const before = await memoryKb(worker!);

    let filled = 0;
    let checked = 0;
    let evicted = false;
    for (let b = 0; b < MAX_BATCHES && !evicted; b++) {
      for (let pass = 0; pass < 3; pass++) await drive(BATCH, 16, (i) => url(filled + i));
      filled += BATCH;
      // the oldest object not probed yet: from disk again (`HIT`) once the dict has evicted it
      const p = await probe(url(checked++));
      const xc = p.headers.get("x-cache");
      if (p.status !== 200 || (xc !== "HIT-RAM" && xc !== "HIT")) throw new Error(`${url(checked - 1)}: ${p.status}, X-Cache ${xc}`);
      evicted = xc === "HIT";
      console.log(`  [memory] ${filled} objects of 4 KiB stored; object ${checked - 1}: ${xc}`);
    }
    if (!evicted) throw new Error(`the ${DICT} RAM tier did not evict after ${filled} objects of 4 KiB`);
    const after = await memoryKb(worker!);
    if ((await nginxWorkers(n.pid))[0] !== worker) throw new Error("the worker was replaced while filling (a crash?)");
    return [
      {
        title: "Worker memory",
        rows: [
          {
            config: `worker RSS, RAM tier (${DICT_MIB} MiB dict) full`,
            note:
              `VmRSS ${mib(after.rss)} MiB (anonymous ${mib(after.anon)}, shared memory ${mib(after.shmem)}, files ${mib(after.file)}) after ${filled} distinct 4 KiB objects (the dict evicting); ` +
              `${mib(before.rss)} MiB before (anonymous ${mib(before.anon)}); RSS / dict size: ${(after.rss / 1024 / DICT_MIB).toFixed(2)}`,
          },
        ],
      },
    ];
  });
}
