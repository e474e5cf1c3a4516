import { cpu, expectHit, KIB, nginxTarget, noiseNote, rps, rpsRatio, runRounds, Scenario, startOrigin, verdict, type BenchContext, type Target } from "../lib.js";
import { cachePolicy, ENV } from "../policies.js";
import type { Row, Section } from "../stats.js";
import { bootStock } from "./hits.js";

const SIZES = [
  { label: "100 KiB", path: "/100k.bin", bytes: 100 * KIB },
  { label: "1 MiB", path: "/1m.bin", bytes: 1024 * KIB },
];

/** Disk hits of larger objects (100 KiB, 1 MiB): the disk-tier bundle against stock proxy_cache, same rounds. */
export async function large(ctx: BenchContext): Promise<Section[]> {
  const s = new Scenario(ctx.bin, ctx.clientBin);
  return s.run(async () => {
    const origin = await startOrigin(s);
    const stock = await bootStock(s, origin);
    const disk = await s.bootPolicy("disk tier", cachePolicy("bench-large", origin.address), ENV);
    for (const { path, bytes } of SIZES) {
      for (let i = 0; i < 2; i++) {
        await expectHit("stock", `${stock.baseUrl}${path}`, {}, bytes);
        await expectHit("disk tier", `${disk.baseUrl}${path}`, {}, bytes);
      }
      const before = await origin.hits();
      await expectHit("stock", `${stock.baseUrl}${path}`, {}, bytes);
      await expectHit("disk tier", `${disk.baseUrl}${path}`, {}, bytes, (p) => (p.headers.get("x-cache") === "HIT" ? undefined : `X-Cache: ${p.headers.get("x-cache")}`));
      if ((await origin.hits()) !== before) throw new Error(`${path}: the checks reached the origin`);
    }
    const targets: Target[] = SIZES.flatMap(({ label, path }) => [nginxTarget(`stock proxy_cache HIT, ${label}`, stock, path), nginxTarget(`cdn-build disk tier HIT, ${label}`, disk, path)]);
    const r = await runRounds("large", targets, origin);
    const rows: Row[] = [];
    for (const { label } of SIZES) {
      const st = `stock proxy_cache HIT, ${label}`;
      const cb = `cdn-build disk tier HIT, ${label}`;
      const ratio = rpsRatio(r, cb, st);
      rows.push({ config: st, ratio: rpsRatio(r, st, st), cpuUs: cpu(r, st), note: `${rps(r, st).median.toFixed(0)} req/s` });
      rows.push({ config: cb, ratio, cpuUs: cpu(r, cb), note: `${rps(r, cb).median.toFixed(0)} req/s (target >= stock: ${verdict(ratio.median >= 1)} by req/s; not worker-bound when it stalls, so no CPU verdict)` });
    }
    return [{ title: "Larger disk hits", baseline: "stock proxy_cache HIT of the same size", rows, notes: [noiseNote(r)] }];
  });
}
