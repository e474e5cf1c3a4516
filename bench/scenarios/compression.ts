import { cpu, expectHit, KIB, nginxTarget, noiseNote, rps, rpsRatio, runRounds, Scenario, startOrigin, type BenchContext, type Target } from "../lib.js";
import { cachePolicy, ENV } from "../policies.js";
import type { Row, Section } from "../stats.js";
import { request } from "undici";

const PATH = "/10k.css";
const PLAIN = "no `compression`, RAM tier HIT";
const IDENTITY = "`compression: {}`, client asking for identity";
const GZIP = "`compression: {}`, gzip (level 5)";
const BROTLI = "`compression: {}`, brotli (level 4)";

/**
 * The cost of compressing a response at the edge: RAM-tier hits of a 10 KiB CSS object without compression,
 * and through `compression: {}` for a client that asks for nothing, gzip or brotli (nginx compresses every
 * response again: the cache holds the identity body).
 */
export async function compression(ctx: BenchContext): Promise<Section[]> {
  const s = new Scenario(ctx.bin, ctx.clientBin);
  return s.run(async () => {
    const origin = await startOrigin(s);
    const plain = await s.bootPolicy("plain", cachePolicy("bench-plain", origin.address, { ram: true }), ENV);
    const comp = await s.bootPolicy("compression", { ...cachePolicy("bench-compression", origin.address, { ram: true }), compression: {} }, ENV);
    const cases = [
      // fetch (the checks) asks for gzip unless told otherwise
      { name: PLAIN, n: plain, headers: { "accept-encoding": "identity" } as Record<string, string>, enc: null },
      { name: IDENTITY, n: comp, headers: { "accept-encoding": "identity" }, enc: null },
      { name: GZIP, n: comp, headers: { "accept-encoding": "gzip" }, enc: "gzip" },
      { name: BROTLI, n: comp, headers: { "accept-encoding": "br" }, enc: "br" },
    ];
    const sizes = new Map<string, number>();
    for (const c of cases) {
      for (let i = 0; i < 3; i++) await expectHit(c.name, `${c.n.baseUrl}${PATH}`, c.headers, 10 * KIB);
      await expectHit(c.name, `${c.n.baseUrl}${PATH}`, c.headers, 10 * KIB, (p) =>
        p.headers.get("x-cache") !== null && p.headers.get("x-cache") !== "HIT-RAM" ? `X-Cache: ${p.headers.get("x-cache")}` : p.headers.get("content-encoding") !== c.enc ? `Content-Encoding: ${p.headers.get("content-encoding")}` : undefined,
      );
      sizes.set(c.name, await wireBytes(`${c.n.baseUrl}${PATH}`, c.headers));
    }
    const targets: Target[] = cases.map((c) => nginxTarget(c.name, c.n, PATH, { headers: c.headers }));
    const r = await runRounds("compression", targets, origin);
    const rows: Row[] = cases.map((c) => ({
      config: c.name,
      ratio: rpsRatio(r, c.name, PLAIN),
      cpuUs: cpu(r, c.name),
      note: `${rps(r, c.name).median.toFixed(0)} req/s, ${sizes.get(c.name)} bytes on the wire`,
    }));
    return [{ title: "Compression of a 10 KiB CSS RAM hit", baseline: PLAIN, rows, notes: [noiseNote(r)] }];
  });
}

/** The body size as sent (fetch would decode it): undici's request() leaves the encoding alone. */
async function wireBytes(url: string, headers: Record<string, string>): Promise<number> {
  const res = await request(url, { headers });
  return (await res.body.arrayBuffer()).byteLength;
}
