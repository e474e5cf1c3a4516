import { Agent, request } from "undici";
import { freePort } from "../../src/runtime/nginx.js";
import { makePki } from "../../test/support/tls.js";
import { cpu, cpuSpeed, CONNECTIONS, KIB, nginxTarget, noiseNote, perRoundSummary, rpsRatio, verdict, runRounds, Scenario, SECONDS, startOrigin, targetLine, type BenchContext, type Origin, type Target } from "../lib.js";
import { cachePolicy, TARGET_URL } from "../policies.js";
import { cell, type Section } from "../stats.js";
import type { RunningNginx } from "../../src/runtime/nginx.js";

const EDGE_HTTP = "cdn-build disk tier HIT over plain HTTP";
const EDGE_TLS = "cdn-build disk tier HIT over TLS 1.3 (keep-alive)";
const STOCK_TLS = "stock nginx proxy_cache HIT over TLS 1.3 (keep-alive)";
const STOCK_HTTP = "stock nginx proxy_cache HIT over plain HTTP";

/**
 * Stock nginx proxy_cache behind a hand-written TLS listener on the same certificate: the TLS baseline
 * (the settings a careful user writes: TLS 1.2/1.3, a shared session cache, HTTP/2), plus its plain port.
 */
async function bootStockTls(s: Scenario, origin: Origin, cert: string, key: string): Promise<{ plain: RunningNginx; tlsPort: number }> {
  const tlsPort = await freePort();
  const plain = await s.bootHandWritten(
    "stock proxy_cache over TLS",
    (port) => `  proxy_cache_path cache/disk levels=1:2 keys_zone=plain:10m max_size=1g inactive=7d use_temp_path=off;
  upstream origin { server ${origin.address}; keepalive 32; }
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_session_cache shared:tls:10m;
  server {
    listen 127.0.0.1:${port};
    listen 127.0.0.1:${tlsPort} ssl http2;
    ssl_certificate ${cert};
    ssl_certificate_key ${key};
    location / {
      proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_cache plain; proxy_cache_valid 200 1h; proxy_cache_lock on;
    }
  }`,
  );
  return { plain, tlsPort };
}

/**
 * TLS: a hot 1 KiB disk-tier HIT over TLS (wrk keeps its connections, so this is the cost of TLS records
 * and the proxy, not of handshakes) against the same bundle over plain HTTP, and against stock nginx
 * proxy_cache on the same certificate over TLS.
 */
export async function tlsScenario(ctx: BenchContext): Promise<Section[]> {
  const s = new Scenario(ctx.bin, ctx.clientBin);
  const pki = await makePki("cdn-build bench CA");
  s.cleanup.add(() => pki.remove());
  return s.run(async () => {
    const cert = await pki.issue("edge", ["edge.bench"]);
    const origin = await startOrigin(s);
    const httpsPort = await freePort();
    const policy = {
      ...cachePolicy("bench-tls", origin.address),
      headers: { cacheStatus: "X-Cache" },
      // plain HTTP served too, by the same bundle: the two rows differ by TLS only
      tls: { certificates: [{ certificate: cert.cert, key: cert.key }], redirectHttp: false as const },
    };
    const edge = await s.bootPolicy("cdn-build TLS", policy, undefined, { https: { port: httpsPort } });
    const stock = await bootStockTls(s, origin, cert.cert, cert.key);
    const path = TARGET_URL;
    const edgeTls = `https://127.0.0.1:${httpsPort}`;
    const stockTls = `https://127.0.0.1:${stock.tlsPort}`;

    // the checks: a 200 of 1 KiB, a HIT, TLS 1.3, and the origin sees none of the checked requests
    const agent = new Agent({ connect: { ca: pki.caPem, servername: "edge.bench", rejectUnauthorized: false } });
    s.cleanup.add(() => agent.close());
    const get = async (base: string) => {
      const r = await request(`${base}${path}`, { dispatcher: agent, headersTimeout: 5000, bodyTimeout: 5000 });
      const body = Buffer.from(await r.body.arrayBuffer());
      return { status: r.statusCode, size: body.length, cache: r.headers["x-cache"] };
    };
    for (const base of [edge.baseUrl, edgeTls, stock.plain.baseUrl, stockTls]) for (let i = 0; i < 3; i++) await get(base);
    const before = await origin.hits();
    for (const [name, base, hit] of [
      [EDGE_HTTP, edge.baseUrl, "HIT"],
      [EDGE_TLS, edgeTls, "HIT"],
      [STOCK_HTTP, stock.plain.baseUrl, undefined],
      [STOCK_TLS, stockTls, undefined],
    ] as const) {
      const r = await get(base);
      if (r.status !== 200 || r.size !== KIB || (hit && r.cache !== hit)) throw new Error(`${name}: the check before measuring failed: ${JSON.stringify(r)}`);
    }
    if ((await origin.hits()) !== before) throw new Error("the checks reached the origin: some configuration does not serve hits");

    const targets: Target[] = [
      nginxTarget(STOCK_HTTP, stock.plain, path),
      nginxTarget(STOCK_TLS, stock.plain, path),
      nginxTarget(EDGE_HTTP, edge, path),
      nginxTarget(EDGE_TLS, edge, path),
    ];
    targets[1]!.url = `${stockTls}${path}`;
    targets[3]!.url = `${edgeTls}${path}`;
    const r = await runRounds("tls", targets, origin);
    const rows = targets.map((t) => ({ config: t.name, ratio: rpsRatio(r, t.name, STOCK_TLS), cpuUs: cpu(r, t.name), note: `x${cell(cpuSpeed(r, t.name, STOCK_TLS))} by CPU per request` }));
    const notes = [
      noiseNote(r),
      // the disk tier's own cost over stock proxy_cache is the hits scenario's business: here, what TLS adds
      targetLine(r, "cdn-build TLS HIT / the same bundle over plain HTTP", EDGE_TLS, EDGE_HTTP, (x) => x >= 0.7, ">= 0.7"),
      targetLine(r, "stock TLS HIT / stock plain HTTP HIT", STOCK_TLS, STOCK_HTTP, () => true, "(reference)"),
    ];
    const added = (a: string, b: string) => perRoundSummary(r, a, b, (x, y) => x.cpuUs - y.cpuUs);
    const edgeCost = added(EDGE_TLS, EDGE_HTTP);
    const stockCost = added(STOCK_TLS, STOCK_HTTP);
    const costRows = [
      { config: "cdn-build: TLS vs plain HTTP, same bundle", ratio: rpsRatio(r, EDGE_TLS, EDGE_HTTP), cpuUs: edgeCost, note: "ratio: req/s TLS / plain; CPU: µs TLS adds per request" },
      {
        config: "stock nginx: TLS vs plain HTTP, same config",
        ratio: rpsRatio(r, STOCK_TLS, STOCK_HTTP),
        cpuUs: stockCost,
        note: `target: cdn-build's TLS cost within 1.5 µs of stock's (${verdict(edgeCost.median - stockCost.median <= 1.5)})`,
      },
    ];
    return [
      { title: `TLS: hot 1 KiB object over TLS 1.3 vs plain HTTP, ${ctx.bin.version} (${ctx.bin.kind}), 1 worker on core 0, wrk -t1 -c${CONNECTIONS} -d${SECONDS}s (keep-alive) on core 1`, baseline: STOCK_TLS, rows, notes },
      { title: "What TLS adds per request (keep-alive)", baseline: "the same server over plain HTTP", rows: costRows },
    ];
  });
}
