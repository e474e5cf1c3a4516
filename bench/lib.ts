/** Shared pieces of `npm run bench`: wrk runs, a plain-nginx baseline, booting a policy. */
import { execa } from "execa";
import { randomBytes } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compile } from "../src/compile.js";
import { writeBundleTo } from "../src/emit/write.js";
import type { Policy } from "../src/policy/types.js";
import { freePort, loadModuleLines, startBundle, type NginxBinary, type RunningNginx } from "../src/runtime/nginx.js";

/**
 * A new folder for a bundle, made by a plain mkdir (0755 with the usual umask) rather than mkdtemp's 0700: a
 * root master's workers (nobody) must be able to traverse it, as in a real deployment.
 */
export async function benchDir(prefix: string): Promise<string> {
  const dir = join(tmpdir(), `${prefix}${randomBytes(6).toString("hex")}`);
  await mkdir(dir, { mode: 0o755 });
  return dir;
}

export const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
export const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);

export interface WrkResult {
  name: string;
  rps: number;
  p50ms: number;
  p99ms: number;
  /** Worker CPU time (user + system) per request of the measured run, in µs, when `pid` was given. */
  cpuUs?: number;
}

/** CPU time (user + system, seconds) used so far by the worker processes of an nginx master. */
export async function workerCpu(masterPid: number): Promise<number> {
  const { stdout } = await execa("pgrep", ["-P", String(masterPid)]);
  let ticks = 0;
  for (const pid of stdout.split("\n").filter(Boolean)) {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    ticks += Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15 of stat)
  }
  return ticks / 100; // USER_HZ
}

/**
 * A short warm-up, then one measured wrk run (1 thread) against a URL; fails on any non-2xx/3xx. With `pid`
 * (an nginx master), also the CPU its workers spent per request during the measured run.
 */
export async function wrk(name: string, url: string, opts: { headers?: Record<string, string>; pid?: number } = {}): Promise<WrkResult> {
  const h = Object.entries(opts.headers ?? {}).flatMap(([k, v]) => ["-H", `${k}: ${v}`]);
  await execa("wrk", ["-t1", "-c4", "-d1s", ...h, url]);
  const script = join(tmpdir(), "cdn-bench-latency.lua");
  await writeFile(script, 'done = function(summary, latency, requests)\n io.write(string.format("P50 %d\\nP99 %d\\n", latency:percentile(50), latency:percentile(99)))\nend\n');
  const cpuBefore = opts.pid === undefined ? 0 : await workerCpu(opts.pid);
  const { stdout } = await execa("wrk", ["-t1", `-c${CONNECTIONS}`, `-d${SECONDS}s`, "-s", script, ...h, url]);
  const cpuAfter = opts.pid === undefined ? 0 : await workerCpu(opts.pid);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(stdout);
  if (non2xx) throw new Error(`${name}: ${non2xx[1]} error responses during the run`);
  return {
    name,
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]),
    p50ms: Number(/P50 (\d+)/.exec(stdout)?.[1]) / 1000,
    p99ms: Number(/P99 (\d+)/.exec(stdout)?.[1]) / 1000,
    cpuUs: opts.pid === undefined ? undefined : ((cpuAfter - cpuBefore) / Number(/(\d+) requests in/.exec(stdout)?.[1])) * 1e6,
  };
}

/** Prints results as ratios against the first one (the baseline of the same run). */
export function report(title: string, results: WrkResult[]): void {
  const base = results[0]!;
  console.log(`\n${title}`);
  for (const r of results) {
    console.log(
      `  ${r.name.padEnd(44)} ${r.rps.toFixed(0).padStart(8)} req/s  x${(r.rps / base.rps).toFixed(2)}  p50 ${r.p50ms.toFixed(2)} ms  p99 ${r.p99ms.toFixed(2)} ms`,
    );
  }
}

/** Things to stop and remove at the end of a scenario. */
export class Cleanup {
  private items: (() => Promise<void>)[] = [];
  add(fn: () => Promise<void>): void {
    this.items.push(fn);
  }
  async run(): Promise<void> {
    while (this.items.length) await this.items.pop()!().catch(() => undefined);
  }
}

async function errorsOf(n: RunningNginx): Promise<void> {
  const errs = (await n.errorLog()).split("\n").filter((l) => /\[(error|crit|alert|emerg)\]/.test(l));
  if (errs.length) console.log(`  error.log of ${n.dir}:\n    ${errs.slice(0, 5).join("\n    ")}`);
}

/** Compiles and boots a policy (listen is replaced by a free 127.0.0.1 port). */
export async function bootPolicy(bin: NginxBinary, policy: Omit<Policy, "listen">, cleanup: Cleanup, env?: Record<string, string>): Promise<RunningNginx> {
  const port = await freePort();
  const { bundle, diagnostics } = compile({ ...policy, listen: { http: port, address: "127.0.0.1" } }, { target: bin.kind });
  if (!bundle) throw new Error(JSON.stringify(diagnostics, null, 2));
  const dir = await benchDir("cdn-bench-");
  cleanup.add(() => rm(dir, { recursive: true, force: true }));
  await writeBundleTo(bundle, dir);
  const n = await startBundle(dir, { port, bin, env });
  cleanup.add(async () => {
    await errorsOf(n);
    await n.stop();
  });
  return n;
}

/**
 * Boots a hand-written nginx config (a baseline, not a bundle): one worker, no access log, temp paths in
 * the prefix; `http` is the rest of the `http {}` block and may use `PORT` for the listen port.
 */
export async function bootHandWritten(bin: NginxBinary, cleanup: Cleanup, http: (port: number) => string): Promise<RunningNginx> {
  const dir = await benchDir("cdn-bench-plain-");
  cleanup.add(() => rm(dir, { recursive: true, force: true }));
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
${http(port)}
}
`,
  );
  const n = await startBundle(dir, { port, bin });
  cleanup.add(async () => {
    await errorsOf(n);
    await n.stop();
  });
  return n;
}

/** A hand-written nginx config (no Lua): `location /` proxies to the origin through stock proxy_cache. */
export function bootPlainProxyCache(bin: NginxBinary, originAddress: string, cleanup: Cleanup): Promise<RunningNginx> {
  return bootHandWritten(
    bin,
    cleanup,
    (port) => `  proxy_cache_path cache/disk levels=1:2 keys_zone=plain:10m max_size=1g inactive=7d use_temp_path=off;
  upstream origin { server ${originAddress}; keepalive 32; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_cache plain; proxy_cache_valid 200 1h; proxy_cache_lock on;
    }
  }`,
  );
}
