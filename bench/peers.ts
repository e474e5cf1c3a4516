/**
 * The peers: Varnish and Apache Traffic Server from Debian's packages, each a caching reverse proxy of the
 * bench's origin, held to the server core (taskset -c 0), bound to 127.0.0.1, started by root in the
 * foreground from a temp folder and stopped at the end of the scenario.
 */
import { execa } from "execa";
import { spawn, type ChildProcess } from "node:child_process";
import { access, chown, mkdir, rm, writeFile } from "node:fs/promises";
import { createConnection } from "node:net";
import { join } from "node:path";
import { freePort } from "../src/runtime/nginx.js";
import { aptInstall, isRoot } from "./install.js";
import { benchDir, childPids, SERVER_CPU, sleep, type Cleanup } from "./lib.js";

export interface Peer {
  name: string;
  baseUrl: string;
  /** The process(es) that serve requests. */
  pids: () => Promise<number[]>;
  /** What the peer wrote on its own (stderr, diags) for a failure message. */
  output: () => string;
}

const VARNISHD = "/usr/sbin/varnishd";
const TRAFFIC_SERVER = "/usr/bin/traffic_server";

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}

/** "7.1.1" from `varnishd -V`, "9.2.9" from `traffic_server -V`. */
async function version(cmd: string): Promise<string> {
  const r = await execa(cmd, ["-V"], { reject: false, all: true, timeout: 10_000, stdin: "ignore" });
  return /(?:varnish-|Traffic Server )(\d+\.\d+(?:\.\d+)?)/.exec(r.all ?? "")?.[1] ?? "?";
}

export interface PeerBinaries {
  varnish?: { path: string; version: string };
  ats?: { path: string; version: string };
  /** Why a peer is not measured (printed, and noted under the table). */
  skipped: string[];
}

/**
 * Finds the peers; when one is missing and we are root, installs it with apt (services kept from
 * starting). `BENCH_PEERS=off` skips them.
 */
export async function findPeers(log: (line: string) => void): Promise<PeerBinaries> {
  const out: PeerBinaries = { skipped: [] };
  if (process.env.BENCH_PEERS === "off") {
    out.skipped.push("Varnish and Traffic Server skipped (BENCH_PEERS=off)");
    return out;
  }
  const missing: string[] = [];
  if (!(await exists(VARNISHD))) missing.push("varnish");
  if (!(await exists(TRAFFIC_SERVER))) missing.push("trafficserver");
  if (missing.length) {
    if (isRoot()) {
      const err = await aptInstall(missing, log);
      if (err) log(`could not install ${missing.join(", ")}: ${err}`);
    } else {
      log(`${missing.join(" and ")} not installed and not root: skipped (as root the bench installs them with apt)`);
    }
  }
  if (await exists(VARNISHD)) out.varnish = { path: VARNISHD, version: await version(VARNISHD) };
  else out.skipped.push("Varnish skipped: not installed (`apt-get install varnish`, or run the bench as root)");
  if (await exists(TRAFFIC_SERVER)) out.ats = { path: TRAFFIC_SERVER, version: await version(TRAFFIC_SERVER) };
  else out.skipped.push("Traffic Server skipped: not installed (`apt-get install trafficserver`, or run the bench as root)");
  return out;
}

// ---------------------------------------------------------------------------------------------------------

const live = new Set<ChildProcess>();
let exitHook = false;

function killGroup(c: ChildProcess, sig: NodeJS.Signals): void {
  if (c.pid === undefined) return;
  try {
    process.kill(-c.pid, sig);
  } catch {
    /* gone */
  }
}

/**
 * Starts a daemon in the foreground, pinned to the server core, in its own process group (killed with this
 * process if we die first). Returns the child (its pid is the daemon's: taskset execs it).
 */
function startDaemon(cmd: string, args: string[], cwd: string, cleanup: Cleanup): { child: ChildProcess; output: () => string; exited: Promise<void> } {
  if (!exitHook) {
    exitHook = true;
    process.on("exit", () => {
      for (const c of live) killGroup(c, "SIGKILL");
    });
  }
  const child = spawn("taskset", ["-c", String(SERVER_CPU), cmd, ...args], { cwd, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  live.add(child);
  let out = "";
  const collect = (b: Buffer) => {
    out = (out + b.toString("utf8")).slice(-16_384);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => {
      live.delete(child);
      resolve();
    });
    child.once("error", () => {
      live.delete(child);
      resolve();
    });
  });
  cleanup.add(async () => {
    if (!live.has(child)) return;
    killGroup(child, "SIGTERM");
    const done = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)]);
    if (!done) {
      killGroup(child, "SIGKILL");
      await Promise.race([exited, sleep(5000)]);
    }
    // a child of the daemon (Varnish's cache process) may outlive its parent for a moment
    killGroup(child, "SIGKILL");
  });
  return { child, output: () => out, exited };
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: "127.0.0.1", port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on("error", () => {
      s.destroy();
      resolve(false);
    });
  });
}

async function waitReady(name: string, port: number, exited: Promise<void>, output: () => string): Promise<void> {
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (gone) throw new Error(`${name} exited before listening:\n${output()}`);
    if (await portOpen(port)) return;
    await sleep(100);
  }
  throw new Error(`${name} did not listen on 127.0.0.1:${port} within 30 s:\n${output()}`);
}

/**
 * Varnish: the default VCL with the origin as its only backend (so the builtin rules: cache what
 * Cache-Control allows, pass requests with cookies or Authorization), one thread pool with its default
 * threads, 256 MB of malloc storage, no management port (`-T none`). The serving process is the manager's
 * child (`cache-main`).
 */
export async function startVarnish(bin: { path: string; version: string }, origin: string, cleanup: Cleanup): Promise<Peer> {
  const dir = await benchDir("cdn-bench-varnish-");
  cleanup.add(() => rm(dir, { recursive: true, force: true }));
  const [host, port] = origin.split(":");
  await writeFile(join(dir, "bench.vcl"), `vcl 4.1;\nbackend origin { .host = "${host}"; .port = "${port}"; }\n`, { mode: 0o644 });
  const listen = await freePort();
  const d = startDaemon(
    bin.path,
    ["-F", "-n", join(dir, "work"), "-a", `127.0.0.1:${listen}`, "-T", "none", "-f", join(dir, "bench.vcl"), "-s", "malloc,256m", "-p", "thread_pools=1"],
    dir,
    cleanup,
  );
  await waitReady("varnishd", listen, d.exited, d.output);
  const manager = d.child.pid!;
  return {
    name: `Varnish ${bin.version}`,
    baseUrl: `http://127.0.0.1:${listen}`,
    pids: async () => {
      const kids = await childPids(manager);
      if (!kids.length) throw new Error("varnishd has no child (cache) process");
      return kids;
    },
    output: d.output,
  };
}

/**
 * Apache Traffic Server as a reverse proxy (`map` to the origin), started as `traffic_server` alone (no
 * traffic_manager) from a runroot in a temp folder: one exec thread (`exec_thread.limit 1`,
 * `autoconfig 0`), one task thread, a 256 MB cache file with a 64 MB RAM cache, no logging, listening on
 * 127.0.0.1 only; root starts it and it runs as the package's `trafficserver` user.
 */
export async function startAts(bin: { path: string; version: string }, origin: string, cleanup: Cleanup): Promise<Peer> {
  const dir = await benchDir("cdn-bench-ats-");
  cleanup.add(() => rm(dir, { recursive: true, force: true }));
  const listen = await freePort();
  const sub = (x: string) => join(dir, x);
  for (const x of ["etc", "var", "run", "log", "cache"]) await mkdir(sub(x));
  await writeFile(
    sub("runroot.yaml"),
    [
      `prefix: ${dir}`,
      "exec_prefix: /usr",
      "bindir: /usr/bin",
      "sbindir: /usr/sbin",
      `sysconfdir: ${sub("etc")}`,
      "datadir: /usr/share/trafficserver",
      "includedir: /usr/include",
      "libdir: /usr/lib/trafficserver",
      "libexecdir: /usr/lib/trafficserver/modules",
      `localstatedir: ${sub("var")}`,
      `runtimedir: ${sub("run")}`,
      `logdir: ${sub("log")}`,
      `cachedir: ${sub("cache")}`,
      "",
    ].join("\n"),
  );
  const records = [
    "CONFIG proxy.config.exec_thread.autoconfig INT 0",
    "CONFIG proxy.config.exec_thread.limit INT 1",
    "CONFIG proxy.config.accept_threads INT 0",
    "CONFIG proxy.config.task_threads INT 1",
    "CONFIG proxy.config.cache.threads_per_disk INT 1",
    `CONFIG proxy.config.http.server_ports STRING ${listen}:ipv4:ip-in=127.0.0.1`,
    "CONFIG proxy.config.url_remap.remap_required INT 1",
    "CONFIG proxy.config.reverse_proxy.enabled INT 1",
    "CONFIG proxy.config.admin.user_id STRING trafficserver",
    "CONFIG proxy.config.log.logging_enabled INT 0",
    "CONFIG proxy.config.http.cache.required_headers INT 2",
    "CONFIG proxy.config.http.insert_client_ip INT 0",
    "CONFIG proxy.config.http.insert_squid_x_forwarded_for INT 0",
    "CONFIG proxy.config.http.insert_request_via_str INT 0",
    "CONFIG proxy.config.http.insert_response_via_str INT 2",
    "CONFIG proxy.config.cache.ram_cache.size INT 67108864",
    "CONFIG proxy.config.http.keep_alive_no_activity_timeout_in INT 120",
    "CONFIG proxy.config.diags.debug.enabled INT 0",
  ];
  await writeFile(sub("etc/records.config"), records.join("\n") + "\n");
  await writeFile(sub("etc/remap.config"), `map http://127.0.0.1:${listen}/ http://${origin}/\n`);
  await writeFile(sub("etc/storage.config"), `${sub("cache")} 256M\n`);
  await writeFile(sub("etc/ip_allow.yaml"), "ip_allow:\n  - apply: in\n    ip_addrs: 127.0.0.1\n    action: allow\n    methods: ALL\n  - apply: out\n    ip_addrs: 127.0.0.1\n    action: allow\n    methods: ALL\n");
  for (const f of ["plugin.config", "volume.config", "hosting.config", "cache.config", "parent.config", "ssl_multicert.config", "sni.yaml", "strategies.yaml", "logging.yaml", "splitdns.config", "socks.config"]) {
    await writeFile(sub(`etc/${f}`), "");
  }
  // it drops to the package's user: that user writes the cache, logs and runtime files
  const { stdout: ids } = await execa("id", ["-u", "trafficserver"], { reject: false });
  const { stdout: gid } = await execa("id", ["-g", "trafficserver"], { reject: false });
  if (ids && gid) {
    for (const x of ["", "etc", "var", "run", "log", "cache", "etc/records.config"]) await chown(sub(x), Number(ids), Number(gid));
  }
  const d = startDaemon(bin.path, [`--run-root=${sub("runroot.yaml")}`], dir, cleanup);
  await waitReady("traffic_server", listen, d.exited, d.output);
  const pid = d.child.pid!;
  // its exec threads set their own affinity (to the whole machine, with exec_thread.affinity 0): pin them again
  await execa("taskset", ["-a", "-p", "-c", String(SERVER_CPU), String(pid)], { stdout: "ignore" });
  return {
    name: `Traffic Server ${bin.version}`,
    baseUrl: `http://127.0.0.1:${listen}`,
    pids: async () => [pid],
    output: () => d.output(),
  };
}
