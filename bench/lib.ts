/**
 * Shared pieces of `npm run bench`: pinning (nginx and the peers on core 0, wrk, the origin and this process
 * on core 1), wrk runs checked for errors, worker CPU from /proc, interleaved rounds, booting bundles and
 * hand-written nginx configs, and the error.log check. Timings live here, never in tests.
 */
import { execa } from "execa";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { chmod, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compile } from "../src/compile.js";
import { writeBundleTo } from "../src/emit/write.js";
import type { Listen, Policy } from "../src/policy/types.js";
import { freePort, loadModuleLines, startBundle, type NginxBinary, type RunningNginx } from "../src/runtime/nginx.js";
import { allowedCpus, cell, coreTicks, type CoreTicks, isErrorLine, othersShare, parseWrk, perRound, refusal, statCpuTicks, statusKb, summarize, type Summary } from "./stats.js";

function envNumber(name: string, def: number, min: number): number {
  const raw = process.env[name];
  const v = raw === undefined || raw === "" ? def : Number(raw);
  if (!Number.isFinite(v) || v < min) throw new Error(`${name}=${raw}: expected a number >= ${min}`);
  return v;
}

/** Length of one measured wrk run, in seconds. */
export const SECONDS = envNumber("BENCH_SECONDS", 5, 1);
/** Rounds: each round runs every configuration of a scenario once, in turn. */
export const ROUNDS = Math.floor(envNumber("BENCH_ROUNDS", 5, 3));
/** wrk connections (one thread). */
export const CONNECTIONS = Math.floor(envNumber("BENCH_CONNECTIONS", 32, 1));

/** The core of the servers under test (nginx's master and worker, Varnish, Traffic Server). */
export const SERVER_CPU = 0;
/** The core of everything else: wrk, the origin, this Node process, Redis. */
export const CLIENT_CPU = 1;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Things to stop and remove, last added first. */
export class Cleanup {
  private items: (() => Promise<void>)[] = [];
  add(fn: () => Promise<void>): void {
    this.items.push(fn);
  }
  async run(): Promise<void> {
    while (this.items.length) await this.items.pop()!().catch((e: unknown) => console.error(`  cleanup: ${String(e)}`));
  }
}

/** Folders and processes of the whole run (the pinned nginx wrappers), cleaned at exit. */
export const runCleanup = new Cleanup();

/**
 * Where the bundles, their caches and logs live: BENCH_TMPDIR, else /dev/shm when it is a tmpfs, else the
 * system's temp folder. On this project's VM, creating a cache file on the ext4 root (mounted with
 * `discard`, shared with other work) costs 250-450 µs of kernel time, against about 45 µs on tmpfs: on disk
 * a MISS measures the file system, not nginx. Hits read files from the page cache either way.
 */
export const BENCH_TMP = process.env.BENCH_TMPDIR || (isTmpfs("/dev/shm") ? "/dev/shm" : tmpdir());

function isTmpfs(dir: string): boolean {
  try {
    return readFileSync("/proc/mounts", "utf8").split("\n").some((l) => l.split(" ")[1] === dir && l.split(" ")[2] === "tmpfs");
  } catch {
    return false;
  }
}

/**
 * A new folder, made by a plain mkdir then chmod 0755 rather than mkdtemp's 0700: a root master's workers
 * (nobody) must be able to traverse it, as in a real deployment.
 */
export async function benchDir(prefix: string): Promise<string> {
  const dir = join(BENCH_TMP, `${prefix}${randomBytes(6).toString("hex")}`);
  await mkdir(dir);
  await chmod(dir, 0o755);
  return dir;
}

/** Moves this process (every thread) to the client core: its children (wrk, Redis...) inherit it. */
export async function pinSelf(): Promise<void> {
  await execa("taskset", ["-a", "-p", "-c", String(CLIENT_CPU), String(process.pid)]);
}

/**
 * An nginx binary whose master starts pinned to one core: a wrapper script that execs `taskset -c <cpu>
 * nginx "$@"` (exec: the pid stays the master's). Workers inherit the affinity, so a generated bundle runs
 * unchanged (no `worker_cpu_affinity` injected into its nginx.conf).
 */
export async function pinnedBinary(bin: NginxBinary, cpu: number): Promise<NginxBinary> {
  const dir = await benchDir(`cdn-bench-bin${cpu}-`);
  runCleanup.add(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, "nginx");
  await writeFile(path, `#!/bin/sh\nexec taskset -c ${cpu} '${bin.path}' "$@"\n`, { mode: 0o755 });
  return { ...bin, path };
}

// ---------------------------------------------------------------------------------------------------------
// /proc

let clkTck: number | undefined;
async function ticksPerSecond(): Promise<number> {
  clkTck ??= Number((await execa("getconf", ["CLK_TCK"])).stdout) || 100;
  return clkTck;
}

/** Direct children of a process. */
export async function childPids(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const t of await readdir(`/proc/${pid}/task`)) {
    const txt = await readFile(`/proc/${pid}/task/${t}/children`, "utf8").catch(() => "");
    for (const s of txt.split(/\s+/)) if (s) out.push(Number(s));
  }
  return out;
}

/** The worker processes of an nginx master (not its cache manager or loader). */
export async function nginxWorkers(master: number): Promise<number[]> {
  const out: number[] = [];
  for (const pid of await childPids(master)) {
    const cmd = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    if (cmd.startsWith("nginx: worker process")) out.push(pid);
  }
  if (!out.length) throw new Error(`nginx master ${master} has no worker process`);
  return out;
}

/** CPU time (user + system, clock ticks) used so far by processes (all their threads). */
async function cpuTicks(pids: number[]): Promise<number> {
  let ticks = 0;
  for (const pid of pids) ticks += statCpuTicks(await readFile(`/proc/${pid}/stat`, "utf8"));
  return ticks;
}

/** CPU time (user + system, seconds) used so far by processes (all their threads). */
export async function cpuSeconds(pids: number[]): Promise<number> {
  return (await cpuTicks(pids)) / (await ticksPerSecond());
}

async function serverCore(): Promise<CoreTicks> {
  return coreTicks(await readFile("/proc/stat", "utf8"), SERVER_CPU);
}

/**
 * Checks that every thread of the processes may run on `cpu` only (a daemon may reset a thread's affinity
 * itself, as Traffic Server's `exec_thread.affinity` does).
 */
export async function assertPinned(name: string, pids: number[], cpu: number): Promise<void> {
  for (const pid of pids) {
    for (const t of await readdir(`/proc/${pid}/task`)) {
      const allowed = allowedCpus(await readFile(`/proc/${pid}/task/${t}/status`, "utf8").catch(() => ""));
      if (allowed !== undefined && allowed !== String(cpu)) throw new Error(`${name}: thread ${t} of ${pid} may run on CPUs ${allowed}, not only ${cpu}`);
    }
  }
}

/** Memory of a process from /proc/<pid>/status, in KiB. */
export async function memoryKb(pid: number): Promise<{ rss: number; anon: number; shmem: number; file: number }> {
  const s = await readFile(`/proc/${pid}/status`, "utf8");
  return { rss: statusKb(s, "VmRSS") ?? NaN, anon: statusKb(s, "RssAnon") ?? NaN, shmem: statusKb(s, "RssShmem") ?? NaN, file: statusKb(s, "RssFile") ?? NaN };
}

// ---------------------------------------------------------------------------------------------------------
// origin

/** The origin every configuration caches: how many requests it has received so far. */
export interface Origin {
  /** "127.0.0.1:PORT" */
  address: string;
  hits(): Promise<number>;
}

// ---------------------------------------------------------------------------------------------------------
// wrk

/** One configuration measured by the rounds. */
export interface Target {
  name: string;
  url: string;
  headers?: Record<string, string>;
  /** The processes whose CPU is the "worker CPU" (nginx workers, Varnish's child, traffic_server). */
  pids: () => Promise<number[]>;
  /** A wrk Lua script (e.g. a counter in the URL, for misses); `{RUN}` in it becomes a unique run id. */
  script?: string;
  /** Origin requests allowed during the measured run: none (hits, the default), or one per request (misses). */
  origin?: "none" | "every";
}

export interface RunResult {
  rps: number;
  requests: number;
  /** Worker CPU (user + system) per request in µs. */
  cpuUs: number;
  /** Share of the server core taken by anything else during the run (other work, the hypervisor). */
  others: number;
}

function wrkArgs(t: Target, connections: number, seconds: number, script: string | undefined): string[] {
  const h = Object.entries(t.headers ?? {}).flatMap(([k, v]) => ["-H", `${k}: ${v}`]);
  return ["-c", String(CLIENT_CPU), "wrk", "-t1", `-c${connections}`, `-d${seconds}s`, "--timeout", "5s", ...(script ? ["-s", script] : []), ...h, t.url];
}

let runCounter = 0;

/** Writes a target's wrk script (with a fresh run id) to a file; undefined when it has none. */
async function scriptFile(t: Target, dir: string): Promise<string | undefined> {
  if (!t.script) return undefined;
  const file = join(dir, `run-${++runCounter}.lua`);
  await writeFile(file, t.script.replaceAll("{RUN}", `${process.pid}-${runCounter}-${randomBytes(3).toString("hex")}`));
  return file;
}

/** wrk pinned to the client core; the run is refused (throws) on any error response or socket error. */
async function runWrk(t: Target, connections: number, seconds: number, script: string | undefined) {
  const r = await execa("taskset", wrkArgs(t, connections, seconds, script), { timeout: (seconds + 30) * 1000, reject: false, all: true });
  if (r.exitCode !== 0) throw new Error(`${t.name}: wrk failed (exit ${r.exitCode}${r.timedOut ? ", timed out" : ""}):\n${r.all}`);
  const out = parseWrk(r.stdout);
  const why = refusal(out);
  if (why) throw new Error(`${t.name}: run refused (${why}); URL ${t.url}`);
  return out;
}

/**
 * One measured run: optionally a 1 s warm-up (checked too), then wrk -t1 -c<CONNECTIONS> for SECONDS, with
 * the worker CPU and the origin's request count read around it.
 */
export async function measure(t: Target, origin: Origin, opts: { warm: boolean; scriptDir: string }): Promise<RunResult> {
  if (opts.warm) await runWrk(t, Math.min(4, CONNECTIONS), 1, await scriptFile(t, opts.scriptDir));
  const script = await scriptFile(t, opts.scriptDir);
  const pids = await t.pids();
  const hits0 = await origin.hits();
  const core0 = await serverCore();
  const cpu0 = await cpuTicks(pids);
  const w = await runWrk(t, CONNECTIONS, SECONDS, script);
  const cpu1 = await cpuTicks(pids);
  const core1 = await serverCore();
  const hits1 = await origin.hits();
  const originHits = hits1 - hits0;
  if ((t.origin ?? "none") === "none" && originHits > 0) {
    throw new Error(`${t.name}: run refused: the origin received ${originHits} requests during a run that must be all hits`);
  }
  if (t.origin === "every" && originHits < w.requests) {
    throw new Error(`${t.name}: run refused: ${w.requests} requests but only ${originHits} reached the origin (some were not misses)`);
  }
  return { rps: w.rps, requests: w.requests, cpuUs: ((cpu1 - cpu0) / (await ticksPerSecond()) / w.requests) * 1e6, others: othersShare(core0, core1, cpu1 - cpu0) };
}

/** Results per target name, one per round, in round order. */
export type Rounds = Map<string, RunResult[]>;

/**
 * ROUNDS rounds; each round runs every target once, in turn (forward, then backward in the next round, so
 * no target always follows the same one). The first round warms each target up.
 */
export async function runRounds(label: string, targets: Target[], origin: Origin): Promise<Rounds> {
  const names = new Set<string>();
  for (const t of targets) {
    if (names.has(t.name)) throw new Error(`duplicate target ${t.name}`);
    names.add(t.name);
  }
  const scriptDir = await benchDir("cdn-bench-wrk-");
  const out: Rounds = new Map(targets.map((t) => [t.name, []]));
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? targets : [...targets].reverse();
      for (const t of order) {
        await assertPinned(t.name, await t.pids(), SERVER_CPU);
        const r = await measure(t, origin, { warm: round === 0, scriptDir });
        out.get(t.name)!.push(r);
        console.log(`  [${label} ${round + 1}/${ROUNDS}] ${t.name.padEnd(58)} ${r.rps.toFixed(0).padStart(7)} req/s  ${r.cpuUs.toFixed(1).padStart(6)} µs/req  core 0 to others ${(r.others * 100).toFixed(0)}%`);
      }
    }
  } finally {
    await rm(scriptDir, { recursive: true, force: true });
  }
  return out;
}

function of(rounds: Rounds, name: string): RunResult[] {
  const rs = rounds.get(name);
  if (!rs) throw new Error(`no results for ${name}`);
  return rs;
}

/** req/s of `a` / req/s of `b`, per round. */
export function rpsRatio(rounds: Rounds, a: string, b: string): Summary {
  return summarize(perRound(of(rounds, a).map((r) => r.rps), of(rounds, b).map((r) => r.rps)));
}

/** Worker CPU µs per request of `a`, per round. */
export function cpu(rounds: Rounds, a: string): Summary {
  return summarize(of(rounds, a).map((r) => r.cpuUs));
}

/** CPU per request of `a` / that of `b`, per round. */
export function cpuRatio(rounds: Rounds, a: string, b: string): Summary {
  return summarize(perRound(of(rounds, a).map((r) => r.cpuUs), of(rounds, b).map((r) => r.cpuUs)));
}

/** Any per-round function of two targets' results. */
export function perRoundSummary(rounds: Rounds, a: string, b: string, f: (x: RunResult, y: RunResult) => number): Summary {
  const xs = of(rounds, a);
  const ys = of(rounds, b);
  return summarize(xs.map((x, i) => f(x, ys[i]!)));
}

/**
 * The throughput ratio `a` / `b` implied by worker CPU per request (b's µs / a's µs, per round): what req/s
 * would say on a quiet core when the worker is the bottleneck. Far less noisy than req/s on a shared machine.
 */
export function cpuSpeed(rounds: Rounds, a: string, b: string): Summary {
  return summarize(perRound(of(rounds, b).map((r) => r.cpuUs), of(rounds, a).map((r) => r.cpuUs)));
}

/** A target checked on both measures: "label: req/s 0.93 [..]; by CPU 0.95 [..] (target >= 0.9: req/s met, CPU met)". */
export function targetLine(rounds: Rounds, label: string, a: string, b: string, ok: (ratio: number) => boolean, target: string): string {
  const q = rpsRatio(rounds, a, b);
  const c = cpuSpeed(rounds, a, b);
  return `${label}: req/s x${cell(q)}, by CPU per request x${cell(c)} (target ${target}: ${ok(q.median) ? "met" : "NOT met"} by req/s, ${ok(c.median) ? "met" : "NOT met"} by CPU)`;
}

/** Median req/s of a target. */
export function rps(rounds: Rounds, a: string): Summary {
  return summarize(of(rounds, a).map((r) => r.rps));
}

/** How quiet the server core was: the share other work took from it during the measured runs. */
export function noiseNote(rounds: Rounds): string {
  const xs = [...rounds.values()].flat().map((r) => r.others * 100);
  const s = summarize(xs);
  return `core 0 taken by other processes and the hypervisor (steal) during the measured runs: median ${s.median.toFixed(0)}% [${s.min.toFixed(0)}–${s.max.toFixed(0)}%] (0% = a quiet core; req/s is only comparable when this is low, worker CPU per request less affected)`;
}

/** "met" / "NOT met" for a target on a median. */
export function verdict(ok: boolean): string {
  return ok ? "met" : "NOT met";
}

// ---------------------------------------------------------------------------------------------------------
// checks before measuring

export interface Probe {
  status: number;
  headers: Headers;
  body: Buffer;
}

/** One GET with the target's headers (5 s timeout). */
export async function probe(url: string, headers: Record<string, string> = {}): Promise<Probe> {
  const r = await fetch(url, { headers, signal: AbortSignal.timeout(5000) });
  return { status: r.status, headers: r.headers, body: Buffer.from(await r.arrayBuffer()) };
}

/** A GET that must answer 200 with a body of `size` bytes, and pass `check` (a header, say). */
export async function expectHit(name: string, url: string, headers: Record<string, string>, size: number, check?: (p: Probe) => string | undefined): Promise<Probe> {
  const p = await probe(url, headers);
  const problem = p.status !== 200 ? `status ${p.status}` : p.body.length !== size ? `a body of ${p.body.length} bytes, not ${size}` : check?.(p);
  if (problem) {
    const hs = [...p.headers].map(([k, v]) => `${k}: ${v}`).join("; ");
    throw new Error(`${name}: the check before measuring failed: ${problem} (${url}; ${hs})`);
  }
  return p;
}

// ---------------------------------------------------------------------------------------------------------
// booting nginx

/** What every scenario receives. */
export interface BenchContext {
  /** nginx pinned to the server core. */
  bin: NginxBinary;
  /** The same nginx pinned to the client core (the origin). */
  clientBin: NginxBinary;
}

/** A scenario's servers: what to stop, and the error logs to read after the runs. */
export class Scenario {
  /** Scenarios not finished yet: an interrupted bench (a signal, the watchdog) still cleans them up. */
  private static active = new Set<Scenario>();
  static async abortAll(): Promise<void> {
    for (const s of [...Scenario.active]) {
      Scenario.active.delete(s);
      await s.cleanup.run();
    }
  }

  readonly cleanup = new Cleanup();
  private logs: { name: string; read: () => Promise<string> }[] = [];

  /** `bin`: nginx pinned to the server core; `clientBin`: the same nginx pinned to the client core. */
  constructor(
    readonly bin: NginxBinary,
    readonly clientBin: NginxBinary,
  ) {
    Scenario.active.add(this);
  }

  /** Reads nginx's error log of a server after the runs. */
  watchLog(name: string, read: () => Promise<string>): void {
    this.logs.push({ name, read });
  }

  /** Every `[error]` (or worse) or Lua error line of the watched logs, as one message; undefined if none. */
  async logProblems(): Promise<string | undefined> {
    const bad: string[] = [];
    for (const l of this.logs) {
      const lines = (await l.read().catch((e: unknown) => `[error] could not read the log: ${String(e)}`)).split("\n").filter(isErrorLine);
      if (lines.length) bad.push(`${l.name}: ${lines.length} error line(s), e.g.\n      ${lines.slice(0, 5).join("\n      ")}`);
    }
    return bad.length ? `error.log check failed:\n    ${bad.join("\n    ")}` : undefined;
  }

  /**
   * Runs a scenario's body, then reads the error logs (any error line fails the scenario, even when the
   * runs went well) and stops everything it started.
   */
  async run<T>(body: () => Promise<T>): Promise<T> {
    let result: T;
    try {
      result = await body();
    } catch (e) {
      const logs = await this.logProblems();
      await this.stop();
      if (logs && e instanceof Error) e.message += `\n${logs}`;
      throw e;
    }
    const logs = await this.logProblems();
    await this.stop();
    if (logs) throw new Error(logs);
    return result;
  }

  private async stop(): Promise<void> {
    Scenario.active.delete(this);
    await this.cleanup.run();
  }

  /**
   * Compiles and boots a policy on the server core (listen: a free 127.0.0.1 port, plus `listen`'s other
   * keys, e.g. `https`), as the README says; `baseDir`: where the policy's relative paths (hook files) start.
   */
  async bootPolicy(name: string, policy: Omit<Policy, "listen">, env?: Record<string, string>, listen: Omit<Listen, "http" | "address"> = {}, opts: { baseDir?: string } = {}): Promise<RunningNginx> {
    const port = await freePort();
    const { bundle, diagnostics } = compile({ ...policy, listen: { http: port, address: "127.0.0.1", ...listen } }, { target: this.bin.kind, baseDir: opts.baseDir });
    if (!bundle) throw new Error(`${name}: the policy did not compile: ${JSON.stringify(diagnostics, null, 2)}`);
    const dir = await benchDir("cdn-bench-");
    this.cleanup.add(() => rm(dir, { recursive: true, force: true }));
    await writeBundleTo(bundle, dir);
    const n = await startBundle(dir, { port, bin: this.bin, env });
    this.cleanup.add(() => n.stop());
    this.watchLog(name, () => n.errorLog());
    return n;
  }

  /**
   * Boots a hand-written nginx config (a baseline, not a bundle): one worker, no access log, temp paths in
   * the prefix, `sendfile on` (tcp_nopush left at nginx's default, off); `http` is the rest of the `http {}`
   * block for a listen port and the prefix folder.
   */
  async bootHandWritten(name: string, http: (port: number, dir: string) => string | Promise<string>, opts: { client?: boolean } = {}): Promise<RunningNginx> {
    const bin = opts.client ? this.clientBin : this.bin;
    const dir = await benchDir("cdn-bench-plain-");
    this.cleanup.add(() => rm(dir, { recursive: true, force: true }));
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
  sendfile on;
  client_body_temp_path temp/client_body; proxy_temp_path temp/proxy;
  fastcgi_temp_path temp/fastcgi; uwsgi_temp_path temp/uwsgi; scgi_temp_path temp/scgi;
${await http(port, dir)}
}
`,
    );
    const n = await startBundle(dir, { port, bin });
    this.cleanup.add(() => n.stop());
    this.watchLog(name, () => n.errorLog());
    return n;
  }

}

/** The body of every small object: 1 KiB. */
export const KIB = 1024;

/** 10 KiB of CSS-like text: compresses about as well as a real stylesheet (not a run of one letter). */
export const TEXT_10K = Array.from({ length: 400 }, (_, i) => `.c-${i.toString(36)} { margin: ${i % 17}px ${(i * 7) % 23}px; color: #${((i * 2654435761) % 0xffffff).toString(16).padStart(6, "0")}; }`)
  .join("\n")
  .slice(0, 10 * KIB);

/**
 * The origin: a hand-written nginx on the client core serving static files (1 KiB for any path, `/100k.bin`,
 * `/1m.bin`, `/4k/...` for filling the RAM tier), all `Cache-Control: max-age=3600`, with an access log that
 * counts the requests it received.
 */
export async function startOrigin(s: Scenario): Promise<Origin> {
  let logFile = "";
  const n = await s.bootHandWritten(
    "origin",
    async (port, dir) => {
      const www = join(dir, "www");
      await mkdir(www);
      await chmod(www, 0o755);
      for (const [f, size] of [
        ["1k.bin", KIB],
        ["4k.bin", 4 * KIB],
        ["100k.bin", 100 * KIB],
        ["1m.bin", 1024 * KIB],
      ] as const) {
        await writeFile(join(www, f), Buffer.alloc(size, "x"), { mode: 0o644 });
      }
      // a text object that compresses like real CSS (the compression scenario)
      await writeFile(join(www, "10k.css"), TEXT_10K, { mode: 0o644 });
      logFile = join(dir, "logs", "origin.log");
      return `  log_format hits '$request_uri';
  server {
    listen 127.0.0.1:${port};
    root ${www};
    types { } default_type text/plain;
    access_log ${logFile} hits;
    keepalive_requests 1000000;
    add_header Cache-Control "max-age=3600";
    location /4k/ { try_files /4k.bin =404; }
    location / { try_files $uri /1k.bin; }
  }`;
    },
    { client: true },
  );
  const countLines = async () => {
    const txt = await readFile(logFile, "utf8").catch(() => "");
    let c = 0;
    for (let i = txt.indexOf("\n"); i !== -1; i = txt.indexOf("\n", i + 1)) c++;
    return c;
  };
  // the first request: the origin answers before anyone relies on it
  const p = await probe(`${n.baseUrl}/probe`);
  if (p.status !== 200 || p.body.length !== KIB) throw new Error(`the origin does not answer: ${p.status}`);
  return { address: `127.0.0.1:${n.port}`, hits: countLines };
}

/**
 * A folder on the machine's disk (the system temp folder), removed with the scenario: where the JSON access
 * log goes, so that its cost includes a disk-backed file system's writes even when the caches are on tmpfs.
 */
export async function diskDir(s: Scenario): Promise<string> {
  const dir = join(tmpdir(), `cdn-bench-log-${randomBytes(6).toString("hex")}`);
  await mkdir(dir);
  await chmod(dir, 0o755);
  s.cleanup.add(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A target on an nginx (bundle or hand-written): the CPU is its workers'. */
export function nginxTarget(name: string, n: RunningNginx, path: string, extra: Omit<Target, "name" | "url" | "pids"> = {}): Target {
  return { name, url: `${n.baseUrl}${path}`, pids: () => nginxWorkers(n.pid), ...extra };
}

/** Sends `requests` GETs (at most `concurrency` at once) to URLs made by `url(i)`; every answer must be 200. */
export async function drive(count: number, concurrency: number, url: (i: number) => string, headers: Record<string, string> = {}): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const p = await probe(url(i), headers);
      if (p.status !== 200) throw new Error(`GET ${url(i)}: ${p.status}`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

export { sleep };
