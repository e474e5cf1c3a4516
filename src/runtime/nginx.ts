/**
 * Locate, install-check, config-test and boot nginx (OpenResty, or Debian's
 * nginx + libnginx-mod-http-lua) for a generated bundle directory.
 *
 * A bundle is always run relocatably: `nginx -p <bundle>/ -c nginx.conf`, so
 * every relative path in the generated nginx.conf resolves inside the bundle.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { constants as fsConstants } from "node:fs";
import * as fs from "node:fs/promises";
import * as net from "node:net";
import * as path from "node:path";
import { execa } from "execa";
import { request } from "undici";
import { DEBIAN_LUA_MODULE, DEBIAN_MODULES_DIR, DEBIAN_NDK_MODULE } from "../ir/targets.js";

export type RuntimeKind = "openresty" | "nginx-lua";

export interface NginxBinary {
  path: string;
  kind: RuntimeKind;
  version: string;
}

export interface RunningNginx {
  /** Absolute bundle directory (the nginx prefix). */
  dir: string;
  port: number;
  host: string;
  /** `http://<host>:<port>` */
  baseUrl: string;
  /** pid of the nginx master process (our child). */
  pid: number;
  /** Contents of `<dir>/logs/error.log` written since this instance was started. */
  errorLog(): Promise<string>;
  /** SIGHUP, then wait until the old worker processes have been replaced. */
  reload(): Promise<void>;
  /** SIGQUIT, wait up to 5 s, then SIGKILL. Idempotent. */
  stop(): Promise<void>;
}

export interface StartBundleOptions {
  port: number;
  host?: string;
  bin?: NginxBinary;
  readyTimeoutMs?: number;
  /** If set, readiness also requires `GET <readyPath>` to answer with a status < 500. */
  readyPath?: string;
  /** Extra environment variables for nginx (secrets a policy names with `env("NAME")`). */
  env?: Record<string, string>;
}

export { DEBIAN_LUA_MODULE, DEBIAN_MODULES_DIR, DEBIAN_NDK_MODULE };

/** The Debian packages that provide nginx with Lua (and the brotli modules `compression` loads). */
export const APT_PACKAGES = [
  "nginx",
  "libnginx-mod-http-lua",
  "lua-resty-core",
  "lua-resty-lrucache",
  "lua-nginx-redis",
  "libnginx-mod-http-brotli-filter",
  "libnginx-mod-http-brotli-static",
] as const;
export const APT_INSTALL_COMMAND = `apt-get install -y --no-install-recommends ${APT_PACKAGES.join(" ")}`;

/**
 * Top-level `load_module` lines a nginx.conf needs for this runtime
 * (absolute paths, since `-p <bundle>/` would make relative ones bundle-relative).
 * OpenResty has Lua compiled in, so it needs none.
 */
export function loadModuleLines(bin: NginxBinary): string[] {
  if (bin.kind === "openresty") return [];
  return [`load_module ${DEBIAN_NDK_MODULE};`, `load_module ${DEBIAN_LUA_MODULE};`];
}

// ---------------------------------------------------------------------------
// detection

async function isExecutable(p: string): Promise<boolean> {
  try {
    const st = await fs.stat(p);
    if (!st.isFile()) return false;
    await fs.access(p, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.access(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Find an executable on PATH. `extraDirs` are searched after PATH (e.g. /usr/sbin,
 * which non-root PATHs often lack although Debian installs nginx there).
 */
async function which(name: string, extraDirs: string[] = []): Promise<string | undefined> {
  const dirs = (process.env.PATH ?? "").split(path.delimiter).filter(Boolean);
  for (const d of [...dirs, ...extraDirs]) {
    const candidate = path.join(d, name);
    if (await isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** Run `<bin> -V` (which prints to stderr) and classify it. */
async function probe(binPath: string): Promise<{ kind: "openresty" | "nginx"; version: string } | undefined> {
  try {
    const r = await execa(binPath, ["-V"], { reject: false, all: true, timeout: 10_000, stdin: "ignore" });
    const out = r.all ?? "";
    if (r.exitCode !== 0 || !/version:/i.test(out)) return undefined;
    const m = /version:\s*(\S+)/i.exec(out);
    const version = m?.[1] ?? "unknown"; // e.g. "nginx/1.22.1" or "openresty/1.21.4.1"
    return { kind: /openresty/i.test(out) ? "openresty" : "nginx", version };
  } catch {
    return undefined;
  }
}

const SBIN_DIRS = ["/usr/local/sbin", "/usr/sbin", "/sbin"];
const OPENRESTY_DIRS = ["/usr/local/openresty/bin", "/usr/local/openresty/nginx/sbin"];

/**
 * Detect a usable nginx-with-Lua:
 *  1. `CDN_BUILD_NGINX=<path>` overrides detection (kind from `-V`).
 *  2. `openresty` on PATH (or in /usr/local/openresty) -> kind "openresty".
 *  3. `nginx` on PATH (or in an sbin dir) plus the Debian Lua module files -> kind "nginx-lua"
 *     (an `nginx` whose `-V` says openresty counts as "openresty").
 */
export async function findNginx(): Promise<NginxBinary | undefined> {
  const override = process.env.CDN_BUILD_NGINX;
  if (override) {
    const p = path.resolve(override);
    if (!(await isExecutable(p))) return undefined;
    const info = await probe(p);
    if (!info) return undefined;
    return { path: p, kind: info.kind === "openresty" ? "openresty" : "nginx-lua", version: info.version };
  }

  const openresty = await which("openresty", OPENRESTY_DIRS);
  if (openresty) {
    const info = await probe(openresty);
    if (info) return { path: openresty, kind: "openresty", version: info.version };
  }

  const nginx = await which("nginx", SBIN_DIRS);
  if (nginx) {
    const info = await probe(nginx);
    if (info?.kind === "openresty") return { path: nginx, kind: "openresty", version: info.version };
    if (info && (await exists(DEBIAN_LUA_MODULE)) && (await exists(DEBIAN_NDK_MODULE))) {
      return { path: nginx, kind: "nginx-lua", version: info.version };
    }
  }
  return undefined;
}

function isRoot(): boolean {
  return typeof process.geteuid === "function" && process.geteuid() === 0;
}

/**
 * findNginx(), installing the Debian packages first when allowed (`install`,
 * running as root, apt-get available). Throws an Error that says what to install.
 */
export async function ensureNginx(opts: { install?: boolean } = {}): Promise<NginxBinary> {
  const found = await findNginx();
  if (found) return found;

  if (process.env.CDN_BUILD_NGINX) {
    throw new Error(
      `CDN_BUILD_NGINX=${process.env.CDN_BUILD_NGINX} is not an executable nginx/openresty binary ` +
        `(\`<path> -V\` must succeed). Fix or unset CDN_BUILD_NGINX.`,
    );
  }

  const aptGet = await which("apt-get", SBIN_DIRS);
  const installHow =
    `nginx with the Lua module was not found. Install it with:\n` +
    `  apt-get update && ${APT_INSTALL_COMMAND}\n` +
    `or install OpenResty and put \`openresty\` on PATH ` +
    `(or point CDN_BUILD_NGINX at an nginx/openresty binary).`;

  if (opts.install && isRoot() && aptGet) {
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    const log = (line: string) => process.stderr.write(`[cdn-build] ${line}\n`);
    log(`nginx with Lua not found; installing: ${APT_PACKAGES.join(" ")}`);
    // stdout of apt goes to our stderr so it never pollutes machine-readable stdout.
    const stdio = ["ignore", process.stderr, "inherit"] as const;
    const upd = await execa(aptGet, ["update"], { env, stdio, reject: false });
    if (upd.exitCode !== 0) log(`apt-get update exited with ${upd.exitCode}; trying the install anyway`);
    const inst = await execa(aptGet, ["install", "-y", "--no-install-recommends", ...APT_PACKAGES], {
      env,
      stdio,
      reject: false,
    });
    if (inst.exitCode !== 0) {
      throw new Error(`\`${APT_INSTALL_COMMAND}\` failed with exit code ${inst.exitCode}.\n${installHow}`);
    }
    const after = await findNginx();
    if (after) return after;
    throw new Error(`installed ${APT_PACKAGES.join(" ")} but still could not find nginx with Lua.\n${installHow}`);
  }
  // No Docker engine is assumed here; a testcontainers (openresty image) fallback would go here.
  throw new Error(installHow);
}

let cachedBinary: Promise<NginxBinary> | undefined;
function defaultBinary(): Promise<NginxBinary> {
  cachedBinary ??= ensureNginx().catch((e: unknown) => {
    cachedBinary = undefined;
    throw e;
  });
  return cachedBinary;
}

// ---------------------------------------------------------------------------
// bundle helpers

const RUNTIME_DIRS = ["logs", "cache", "temp"] as const;

async function prepareDirs(dir: string): Promise<void> {
  for (const d of RUNTIME_DIRS) await fs.mkdir(path.join(dir, d), { recursive: true, mode: 0o777 });
}

/** nginx wants the prefix with a trailing slash. */
function prefixArg(dir: string): string {
  return dir.endsWith("/") ? dir : `${dir}/`;
}

/**
 * The pid file the config sets (absolute), or undefined if it sets none — then we pass
 * `-g "pid logs/nginx.pid;"` so the system's /run/nginx.pid is never touched.
 */
async function configPidFile(dir: string): Promise<string | undefined> {
  let conf: string;
  try {
    conf = await fs.readFile(path.join(dir, "nginx.conf"), "utf8");
  } catch {
    return path.join(dir, "logs", "nginx.pid"); // let nginx report the missing file itself
  }
  const m = /^\s*pid\s+("?)([^;"]+)\1\s*;/m.exec(conf);
  if (!m?.[2]) return undefined;
  return path.resolve(dir, m[2].trim());
}

/** `dir` and its ancestors that other users (`nobody`) cannot traverse (e.g. /root with 0700), for a hint. */
async function untraversableFolders(dir: string): Promise<string[]> {
  const bad: string[] = [];
  let cur = dir;
  for (;;) {
    try {
      const st = await fs.stat(cur);
      if ((st.mode & 0o001) === 0) bad.push(cur);
    } catch {
      /* ignore */
    }
    const parent = path.dirname(cur);
    if (parent === cur) break;
    cur = parent;
  }
  return bad;
}

async function readTail(file: string, bytes: number, fromOffset = 0): Promise<string> {
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(file, "r");
    const { size } = await fh.stat();
    const start = Math.max(fromOffset > size ? 0 : fromOffset, size - bytes);
    const len = size - start;
    if (len <= 0) return "";
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, start);
    return buf.toString("utf8");
  } catch {
    return "";
  } finally {
    await fh?.close();
  }
}

async function fileSize(file: string): Promise<number> {
  try {
    return (await fs.stat(file)).size;
  } catch {
    return 0;
  }
}

async function readPid(file: string): Promise<number | undefined> {
  try {
    const n = Number.parseInt(await fs.readFile(file, "utf8"), 10);
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** A sleep that does not keep the process alive (the losing side of a race must not delay the CLI's exit). */
const deadlineAfter = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

// ---------------------------------------------------------------------------
// nginx -t

/** `nginx -t -q -p <abs dir>/ -c nginx.conf`; ok = exit code 0, output = stdout+stderr. */
export async function testConfig(bundleDir: string, bin?: NginxBinary): Promise<{ ok: boolean; output: string }> {
  const dir = path.resolve(bundleDir);
  const b = bin ?? (await defaultBinary());
  await prepareDirs(dir);
  const args = ["-t", "-q", "-p", prefixArg(dir), "-c", "nginx.conf"];
  if ((await configPidFile(dir)) === undefined) args.push("-g", "pid logs/nginx.pid;");
  const r = await execa(b.path, args, { reject: false, all: true, cwd: dir, timeout: 30_000, stdin: "ignore" });
  const output = (r.all ?? "").trim();
  return { ok: r.exitCode === 0 && !r.timedOut, output: r.timedOut ? `${output}\n(nginx -t timed out)`.trim() : output };
}

// ---------------------------------------------------------------------------
// process registry: no orphan nginx may outlive this Node process

const live = new Set<ChildProcess>();
let handlersInstalled = false;

/** Kill the whole process group (master + workers) of a child started with detached:true. */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      /* already gone */
    }
  }
}

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on("exit", () => {
    for (const child of live) killGroup(child, "SIGKILL");
    live.clear();
  });
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    const handler = () => {
      for (const child of live) killGroup(child, "SIGKILL");
      live.clear();
      // Keep the default behaviour (terminate) unless someone else handles the signal.
      if (process.listenerCount(sig) <= 1) {
        process.removeListener(sig, handler);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, handler);
  }
}

/** Direct children of `pid` (Linux /proc; empty elsewhere). */
async function childPids(pid: number): Promise<number[] | undefined> {
  try {
    const tasks = await fs.readdir(`/proc/${pid}/task`);
    const out: number[] = [];
    for (const t of tasks) {
      const txt = await fs.readFile(`/proc/${pid}/task/${t}/children`, "utf8").catch(() => "");
      for (const s of txt.split(/\s+/)) if (s) out.push(Number(s));
    }
    return out;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------
// readiness

function tcpProbe(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const done = (ok: boolean) => {
      sock.removeAllListeners();
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once("connect", () => done(true));
    sock.once("error", () => done(false));
  });
}

async function httpProbe(url: string, timeoutMs: number): Promise<boolean> {
  try {
    const res = await request(url, {
      method: "GET",
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      headers: { connection: "close" },
    });
    await res.body.dump();
    return res.statusCode < 500;
  } catch {
    return false;
  }
}

function hostForUrl(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

// ---------------------------------------------------------------------------
// boot

/**
 * Boot a bundle: `nginx -p <dir>/ -c nginx.conf -g "daemon off;"` as our own child
 * (in its own process group, so master and workers can be killed together).
 * Resolves once `host:port` accepts TCP connections (and `readyPath` answers, if given).
 */
export async function startBundle(bundleDir: string, opts: StartBundleOptions): Promise<RunningNginx> {
  const dir = path.resolve(bundleDir);
  const host = opts.host ?? "127.0.0.1";
  const port = opts.port;
  const readyTimeoutMs = opts.readyTimeoutMs ?? 10_000;
  const bin = opts.bin ?? (await defaultBinary());
  const errorLogPath = path.join(dir, "logs", "error.log");

  // The bundle is booted exactly as written (by `cdn-build build`): no folder is created, no mode changed.
  let ancestorHint = "";
  if (isRoot()) {
    const bad = await untraversableFolders(dir);
    if (bad.length) {
      ancestorHint =
        `\nnote: worker processes run as "nobody" and cannot traverse ${bad.join(", ")}; ` +
        `put the bundle somewhere world-traversable (e.g. under /tmp).`;
    }
  }

  const globals = ["daemon off;"];
  let pidFile = await configPidFile(dir);
  if (pidFile === undefined) {
    globals.push("pid logs/nginx.pid;");
    pidFile = path.join(dir, "logs", "nginx.pid");
  }
  const logOffset = await fileSize(errorLogPath);

  installExitHandlers();
  const child = spawn(bin.path, ["-p", prefixArg(dir), "-c", "nginx.conf", "-g", globals.join(" ")], {
    cwd: dir,
    env: opts.env ? { ...process.env, ...opts.env } : process.env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // own process group: kill(-pid) reaches the workers too
  });
  live.add(child);

  let output = "";
  const collect = (chunk: Buffer) => {
    output += chunk.toString("utf8");
    if (output.length > 64 * 1024) output = output.slice(-32 * 1024);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);

  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let spawnError: Error | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once("exit", (code, signal) => {
      exitInfo = { code, signal };
      live.delete(child);
      // Reap any straggling workers of an abnormally ended master (no-op when the group is empty).
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {
          /* group empty */
        }
      }
      resolve();
    });
    child.once("error", (err) => {
      spawnError = err;
      live.delete(child);
      resolve();
    });
  });

  const diagnostics = async (): Promise<string> => {
    const log = await readTail(errorLogPath, 4096, logOffset);
    return (
      `--- ${errorLogPath} (last 4 KB) ---\n${log.trimEnd() || "(empty)"}\n` +
      `--- nginx stderr/stdout ---\n${output.slice(-4096).trimEnd() || "(empty)"}` +
      ancestorHint
    );
  };

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (exitInfo || spawnError || child.pid === undefined) return;
      try {
        process.kill(child.pid, "SIGQUIT"); // the master drains and stops its workers
      } catch {
        /* gone */
      }
      const graceful = await Promise.race([exited.then(() => true), deadlineAfter(5000).then(() => false)]);
      if (!graceful) {
        killGroup(child, "SIGKILL");
        await Promise.race([exited, deadlineAfter(5000)]);
      }
    })();
    return stopping;
  };

  // --- wait for readiness
  const deadline = Date.now() + readyTimeoutMs;
  const baseUrl = `http://${hostForUrl(host)}:${port}`;
  let ready = false;
  while (!ready) {
    if (spawnError) {
      throw new Error(`failed to start ${bin.path}: ${spawnError.message}\n${await diagnostics()}`);
    }
    if (exitInfo) {
      const how = exitInfo.signal ? `signal ${exitInfo.signal}` : `exit code ${exitInfo.code}`;
      throw new Error(`nginx (${bin.path}) for ${dir} exited with ${how} before becoming ready\n${await diagnostics()}`);
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(
        `nginx for ${dir} did not become ready on ${host}:${port}` +
          `${opts.readyPath ? ` (GET ${opts.readyPath})` : ""} within ${readyTimeoutMs} ms\n${await diagnostics()}`,
      );
    }
    // A connect alone could reach another listener on a raced port: nginx writes its pid
    // file only after loading the config and binding, so require it to name our child.
    if ((await readPid(pidFile)) === child.pid && (await tcpProbe(host, port, 500))) {
      ready = opts.readyPath ? await httpProbe(baseUrl + opts.readyPath, 2000) : true;
      if (ready && exitInfo) ready = false;
    }
    if (!ready) await Promise.race([sleep(50), exited]);
  }

  const pid = child.pid!;

  const reload = async (): Promise<void> => {
    if (exitInfo || stopping) throw new Error(`nginx for ${dir} is not running`);
    const before = (await childPids(pid)) ?? [];
    const offset = await fileSize(errorLogPath);
    process.kill(pid, "SIGHUP");
    const until = Date.now() + 10_000;
    for (;;) {
      await sleep(50);
      if (exitInfo) throw new Error(`nginx for ${dir} exited during reload\n${await diagnostics()}`);
      const log = await readTail(errorLogPath, 64 * 1024, offset);
      if (/\[emerg\]/.test(log)) {
        throw new Error(`nginx reload of ${dir} failed, old configuration kept:\n${log.trimEnd()}`);
      }
      const now = await childPids(pid);
      if (now === undefined) {
        // no /proc: give nginx a moment to swap workers
        await sleep(500);
        return;
      }
      const oldLeft = now.some((p) => before.includes(p));
      const fresh = now.some((p) => !before.includes(p));
      if (!oldLeft && fresh) return;
      if (Date.now() > until) {
        throw new Error(`nginx reload of ${dir}: old workers still running after 10 s\n${await diagnostics()}`);
      }
    }
  };

  return {
    dir,
    port,
    host,
    baseUrl,
    pid,
    errorLog: () => readTail(errorLogPath, Number.MAX_SAFE_INTEGER, logOffset),
    reload,
    stop,
  };
}

// ---------------------------------------------------------------------------

/** Ask the OS for a currently free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error("could not determine a free port"))));
    });
  });
}
