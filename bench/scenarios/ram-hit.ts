import type { NginxBinary, RunningNginx } from "../../src/runtime/nginx.js";
import { startMockOrigin } from "../../test/support/mock-origin.js";
import { bootHandWritten, bootPlainProxyCache, bootPolicy, Cleanup, CONNECTIONS, report, SECONDS, wrk, type WrkResult } from "../lib.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const BODY = "x".repeat(1024);

/**
 * Ceilings: nginx answering a 1 KiB body from its config (`return 200`), or from Lua (`lua: true`: the
 * body printed by an access_by_lua handler, i.e. the floor of any Lua-served hit), one worker.
 */
function bootReturn(bin: NginxBinary, cleanup: Cleanup, lua = false): Promise<RunningNginx> {
  return bootHandWritten(
    bin,
    cleanup,
    (port) => `  ${lua && bin.kind === "nginx-lua" ? 'lua_package_path "/usr/share/lua/5.1/?.lua;;";' : ""}
  server {
    listen 127.0.0.1:${port};
    location / { default_type text/plain; ${lua ? `access_by_lua_block { ngx.header["Content-Length"] = 1024 ngx.print(string.rep("x", 1024)) ngx.exit(200) }` : `return 200 "${BODY}";`} }
  }`,
  );
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/**
 * Hot 1 KiB object: the RAM tier of a bundle vs plain nginx proxy_cache serving it from its disk cache,
 * plus the bundle's own disk HIT and nginx's no-lookup ceiling for context. One worker each; the targets
 * are measured in alternating rounds (BENCH_ROUNDS, default 3) and the medians compared.
 */
export async function ramHit(bin: NginxBinary): Promise<void> {
  const cleanup = new Cleanup();
  try {
    const origin = await startMockOrigin();
    cleanup.add(() => origin.close());
    origin.route("/obj", { headers: { "content-type": "text/plain", "cache-control": "max-age=3600", etag: '"b1"' }, body: BODY });
    const plain = await bootPlainProxyCache(bin, origin.address, cleanup);
    const base = {
      workers: { processes: 1 },
      origins: { app: { servers: [{ address: origin.address }] } },
      headers: { response: { set: { "X-Served-By": "edge" }, remove: ["X-Powered-By"] } },
      accessLog: { format: "off" as const },
    };
    const ram = await bootPolicy(bin, { name: "bench-ram", ...base, cache: { ttl: { "200": "1h" }, ram: { size: "64m", maxObjectSize: "64k", minHits: 2 } } }, cleanup);
    const disk = await bootPolicy(bin, { name: "bench-disk", ...base, cache: { ttl: { "200": "1h" } } }, cleanup);
    const ceiling = await bootReturn(bin, cleanup);
    const luaFloor = await bootReturn(bin, cleanup, true);
    // warm: MISS, then hits until the RAM tier holds the object
    for (const n of [plain, ram, disk]) for (let i = 0; i < 3; i++) await fetch(`${n.baseUrl}/obj`).then((r) => r.text());
    const check = await fetch(`${ram.baseUrl}/obj`);
    await check.text();
    const tier = check.headers.get("x-cache");
    if (tier !== "HIT-RAM") throw new Error(`the RAM tier did not answer (X-Cache: ${tier})`);

    const targets: [string, RunningNginx][] = [
      ["plain nginx proxy_cache, disk HIT (baseline)", plain],
      ["cdn-build RAM tier, HIT-RAM", ram],
      ["cdn-build disk tier, HIT", disk],
      ["nginx return 200 (no lookup, ceiling)", ceiling],
      ["nginx + Lua printing the body (Lua floor)", luaFloor],
    ];
    const runs = new Map<string, WrkResult[]>(targets.map(([name]) => [name, []]));
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? targets : [...targets].reverse();
      for (const [name, n] of order) runs.get(name)!.push(await wrk(name, `${n.baseUrl}/obj`));
    }
    const results: WrkResult[] = targets.map(([name]) => {
      const rs = runs.get(name)!;
      return { name, rps: median(rs.map((r) => r.rps)), p50ms: median(rs.map((r) => r.p50ms)), p99ms: median(rs.map((r) => r.p99ms)) };
    });
    report(`hot 1 KiB object, RAM tier vs disk, 1 worker each, wrk -c${CONNECTIONS} -d${SECONDS}s, median of ${ROUNDS} alternating rounds (${bin.version}, ${bin.kind})`, results);
    const [b, r] = results;
    console.log(`  RAM tier vs plain proxy_cache: throughput x${(r!.rps / b!.rps).toFixed(2)} (target x4), p99 ${r!.p99ms.toFixed(2)} ms vs ${b!.p99ms.toFixed(2)} ms (target: no worse)`);
    console.log(`  origin requests: ${origin.hits("/obj")}`);
  } finally {
    await cleanup.run();
  }
}
