/**
 * `npm run bench`: cache-HIT throughput of a cdn-build bundle against a plain nginx proxy_cache config,
 * measured side by side in one run with wrk on 127.0.0.1. Timings live here, never in tests.
 * Env: BENCH_SECONDS (default 5), BENCH_CONNECTIONS (default 32).
 */
import { execa } from "execa";
import { mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compile } from "../src/compile.js";
import { writeBundleTo } from "../src/emit/write.js";
import type { Policy } from "../src/policy/types.js";
import { ensureNginx, freePort, loadModuleLines, startBundle, type NginxBinary, type RunningNginx } from "../src/runtime/nginx.js";
import { startMockOrigin, type MockOrigin } from "../test/support/mock-origin.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const BODY = "x".repeat(1024);

interface Result {
  name: string;
  rps: number;
  p50ms: number;
  p99ms: number;
}

async function wrk(name: string, url: string): Promise<Result> {
  // warm: first request fills the cache, a short run warms the workers
  await execa("wrk", ["-t1", "-c4", "-d1s", url]);
  const script = join(tmpdir(), "cdn-bench-latency.lua");
  await writeFile(script, 'done = function(summary, latency, requests)\n io.write(string.format("P50 %d\\nP99 %d\\n", latency:percentile(50), latency:percentile(99)))\nend\n');
  const { stdout } = await execa("wrk", ["-t1", `-c${CONNECTIONS}`, `-d${SECONDS}s`, "-s", script, url]);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
  const p50 = Number(/P50 (\d+)/.exec(stdout)?.[1]) / 1000;
  const p99 = Number(/P99 (\d+)/.exec(stdout)?.[1]) / 1000;
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(stdout);
  if (non2xx) throw new Error(`${name}: ${non2xx[1]} error responses during the run`);
  return { name, rps, p50ms: p50, p99ms: p99 };
}

/** A hand-written nginx config: the same origin behind stock proxy_cache, no Lua, one worker. */
async function plainNginx(bin: NginxBinary, origin: MockOrigin): Promise<{ dir: string; port: number }> {
  const dir = await mkdtemp(join(tmpdir(), "cdn-bench-plain-"));
  const port = await freePort();
  for (const d of ["logs", "cache", "temp"]) await mkdir(join(dir, d));
  await writeFile(
    join(dir, "nginx.conf"),
    `${loadModuleLines(bin).join("\n")}
worker_processes 1;
pid logs/nginx.pid;
error_log logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path temp/client_body; proxy_temp_path temp/proxy;
  fastcgi_temp_path temp/fastcgi; uwsgi_temp_path temp/uwsgi; scgi_temp_path temp/scgi;
  proxy_cache_path cache/disk levels=1:2 keys_zone=plain:10m max_size=1g inactive=7d use_temp_path=off;
  upstream origin { server ${origin.address}; keepalive 32; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_cache plain; proxy_cache_valid 200 1h; proxy_cache_lock on;
    }
  }
}
`,
  );
  return { dir, port };
}

async function main(): Promise<void> {
  const bin = await ensureNginx();
  const origin = await startMockOrigin();
  origin.route("/obj", { headers: { "content-type": "text/plain", "cache-control": "max-age=3600" }, body: BODY });
  const started: RunningNginx[] = [];
  const dirs: string[] = [];
  try {
    const plain = await plainNginx(bin, origin);
    dirs.push(plain.dir);
    const p = await startBundle(plain.dir, { port: plain.port, bin });
    started.push(p);

    const port = await freePort();
    const policy: Policy = {
      name: "bench",
      listen: { http: port, address: "127.0.0.1" },
      workers: { processes: 1 },
      origins: { app: { servers: [{ address: origin.address }] } },
      cache: { ttl: { "200": "1h" }, bypass: { cookies: ["session"] } },
      headers: { response: { set: { "X-Served-By": "edge" }, remove: ["X-Powered-By"] } },
      accessLog: { format: "off" },
    };
    const { bundle, diagnostics } = compile(policy, { target: bin.kind });
    if (!bundle) throw new Error(JSON.stringify(diagnostics));
    const dir = await mkdtemp(join(tmpdir(), "cdn-bench-edge-"));
    dirs.push(dir);
    await writeBundleTo(bundle, dir);
    const e = await startBundle(dir, { port, bin });
    started.push(e);

    const results = [await wrk("plain nginx proxy_cache (baseline)", `${p.baseUrl}/obj`), await wrk("cdn-build bundle, disk HIT", `${e.baseUrl}/obj`)];
    const base = results[0]!;
    console.log(`\ncache HIT, 1 KiB object, 1 worker each, wrk -c${CONNECTIONS} -d${SECONDS}s on 127.0.0.1 (${bin.version}, ${bin.kind})`);
    for (const r of results) {
      console.log(
        `${r.name.padEnd(40)} ${r.rps.toFixed(0).padStart(8)} req/s  x${(r.rps / base.rps).toFixed(2)}  p50 ${r.p50ms.toFixed(2)} ms  p99 ${r.p99ms.toFixed(2)} ms`,
      );
    }
    console.log(`origin requests during the run: ${origin.hits("/obj")} (the cache served the rest)`);
    for (const s of started) {
      const errs = (await s.errorLog()).split("\n").filter((l) => /\[(error|crit|alert|emerg)\]/.test(l));
      if (errs.length) console.log(`error.log of ${s.dir}:\n${errs.slice(0, 5).join("\n")}`);
    }
  } finally {
    for (const s of started) await s.stop();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
    await origin.close();
  }
}

await main();
