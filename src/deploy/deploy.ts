/**
 * Deploy, rollback and status on one host, and rollouts over a fleet (canary first, then the rest with
 * bounded parallelism; the first failure stops the rollout).
 */
import { request } from "undici";
import type { DeployBundle, Manifest } from "./source.js";
import { healthFromConf, tarBundle } from "./source.js";
import type { Transport } from "./transport.js";

export interface HostConfig {
  name: string;
  transport: Transport;
  /** Absolute path of the prefix on the host. */
  prefix: string;
  /** nginx (or openresty) binary on the host. */
  nginx: string;
  /** Command that reloads nginx (default: SIGHUP to the master named by the prefix's pid file). */
  reload?: string;
  /** URLs probed after a switch; default: the policy's health path on the host's listen port. */
  health: string[];
  /** Env file sourced (on the host) before nginx is started. */
  envFile?: string;
  /** Start nginx when it is not running. */
  start: boolean;
  keep: number;
  /** Variables set while the policy is built for this host. */
  policyEnv?: Record<string, string>;
}

export interface HostOutcome {
  host: string;
  result: "deployed" | "rolled back" | "failed" | "skipped" | "unchanged";
  release?: string;
  previous?: string;
  ms: number;
  message?: string;
}

export type Progress = (host: string, line: string) => void;

export class HostError extends Error {}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function kv(stdout: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of stdout.split("\n")) {
    const m = /^([a-z_]+)=(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

async function run(h: HostConfig, args: string[], input?: Buffer): Promise<string> {
  const r = await h.transport.run([args[0]!, h.prefix, ...args.slice(1)], { input });
  if (r.code !== 0) {
    const out = r.stdout.replace(/^[a-z_]+=.*$/gm, "").trim(); // not the key=value lines of a step
    const text = [r.stderr.trim(), out].filter(Boolean).join("\n").replace(/^error: /gm, "");
    throw new HostError(text || `${args[0]} exited with ${r.code}`);
  }
  return r.stdout;
}

/** Release id: UTC time and the first 12 hex digits of the manifest's sha256. */
export function releaseId(sha: string, now = new Date()): string {
  const t = now.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  return `${t}-${sha.slice(0, 12)}`;
}

/** Default health URLs for a host: the policy's health path on its listen port. */
export function defaultHealthUrls(h: { transport: Transport }, bundle: Pick<DeployBundle, "healthPath" | "port" | "address">): string[] {
  if (!bundle.healthPath) return [];
  let host = h.transport.httpHost();
  if (bundle.address && h.transport.describe() === "local") host = bundle.address.includes(":") ? `[${bundle.address}]` : bundle.address;
  return [`http://${host}:${bundle.port}${bundle.healthPath}`];
}

/**
 * Probe every URL until each has answered 2xx three times in a row, or the timeout passes.
 * Returns undefined on success, else what failed.
 */
export async function probeHealth(urls: string[], timeoutMs: number): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (const url of urls) {
    let streak = 0;
    while (streak < 3) {
      if (Date.now() > deadline) return `health probe ${url}: ${last || "no answer"} (after ${timeoutMs} ms)`;
      try {
        const res = await request(url, { headersTimeout: 2000, bodyTimeout: 2000, headers: { connection: "close" } });
        await res.body.dump();
        if (res.statusCode >= 200 && res.statusCode < 300) streak++;
        else {
          streak = 0;
          last = `status ${res.statusCode}`;
        }
      } catch (e) {
        streak = 0;
        last = (e as Error).message;
      }
      await sleep(streak ? 100 : 200);
    }
  }
  return undefined;
}

interface Switched {
  offset: number;
}

/** Point `current` at `id`, reload (or start) nginx, probe health and scan error.log. Throws HostError. */
async function activate(h: HostConfig, id: string, healthUrls: string[], healthTimeoutMs: number, progress: Progress): Promise<Switched> {
  await run(h, ["switch", id]);
  progress(h.name, `current -> ${id}; reloading`);
  const out = kv(await run(h, ["reload", h.nginx, h.start ? "1" : "0", h.envFile ?? "", h.reload ?? "", "15"]));
  const offset = Number(out.offset ?? 0);
  progress(h.name, out.started ? `started nginx (master ${out.started})` : `reloaded nginx (master ${out.reloaded})`);
  if (healthUrls.length) {
    const failed = await probeHealth(healthUrls, healthTimeoutMs);
    if (failed) throw new HostError(failed);
    progress(h.name, `healthy: ${healthUrls.join(", ")}`);
  }
  const errors = (await run(h, ["errors", String(offset)])).trim();
  if (errors) throw new HostError(`error.log since the reload:\n${errors}`);
  return { offset };
}

/** Run `fn` holding the prefix's deploy lock; a held lock is a failure of this host. */
async function locked(h: HostConfig, what: string, fn: () => Promise<HostOutcome>): Promise<HostOutcome> {
  const t0 = Date.now();
  try {
    await run(h, ["lock", `${what} from ${process.env.USER ?? "?"} pid ${process.pid} at ${new Date().toISOString()}`, what === "deploy" ? "1" : "0"]);
  } catch (e) {
    return { host: h.name, result: "failed", ms: Date.now() - t0, message: (e as Error).message };
  }
  try {
    return await fn();
  } finally {
    await run(h, ["unlock"]).catch(() => undefined);
  }
}

/** Deploy one bundle to one host, rolling back to the previous release on any failure. */
export function deployHost(h: HostConfig, bundle: DeployBundle, opts: { healthTimeoutMs: number; progress: Progress; tar?: Buffer }): Promise<HostOutcome> {
  return locked(h, "deploy", () => deployHostLocked(h, bundle, opts));
}

async function deployHostLocked(
  h: HostConfig,
  bundle: DeployBundle,
  opts: { healthTimeoutMs: number; progress: Progress; tar?: Buffer },
): Promise<HostOutcome> {
  const t0 = Date.now();
  const done = (o: Omit<HostOutcome, "host" | "ms">): HostOutcome => ({ host: h.name, ms: Date.now() - t0, ...o });
  const healthUrls = h.health.length ? h.health : defaultHealthUrls(h, bundle);
  if (!healthUrls.length) opts.progress(h.name, "warning: the policy has no health path and no --health-url was given: no health probe");
  let previous: string | undefined;
  let wasRunning = false;
  let id: string | undefined;
  try {
    const info = kv(await run(h, ["info"]));
    previous = info.current || undefined;
    wasRunning = Boolean(info.pid);
    if (!wasRunning && !h.start) throw new HostError(`nginx is not running for ${h.prefix}; pass --start (or start: true) to start it`);
    opts.progress(h.name, `uploading release (${bundle.files.size} files)`);
    id = (await run(h, ["receive", releaseId(bundle.sha)], opts.tar ?? (await tarBundle(bundle)))).trim();
    opts.progress(h.name, `nginx -t on releases/${id}`);
  } catch (e) {
    return done({ result: "failed", previous, message: (e as Error).message });
  }
  try {
    await run(h, ["check", id, h.nginx]);
  } catch (e) {
    await run(h, ["remove", id]).catch(() => undefined);
    return done({ result: "failed", release: id, previous, message: `nginx -t refused the release; nothing switched:\n${(e as Error).message}` });
  }
  try {
    await activate(h, id, healthUrls, opts.healthTimeoutMs, opts.progress);
  } catch (e) {
    const why = (e as Error).message;
    opts.progress(h.name, `failed: ${why.split("\n")[0]}; rolling back`);
    // the previous release is probed on its own port and health path (unless URLs were given)
    const previousUrls = h.health.length || !previous ? healthUrls : await healthOfRelease(h, previous).then((x) => defaultHealthUrls(h, x), () => healthUrls);
    const back = await restore(h, previous, wasRunning, previousUrls, opts.healthTimeoutMs, opts.progress);
    await run(h, ["remove", id]).catch(() => undefined);
    return done({ result: back ? "rolled back" : "failed", release: id, previous, message: back ? why : `${why}\nthe rollback to ${previous ?? "(none)"} failed too: see the progress lines` });
  }
  const pruned = await run(h, ["prune", String(h.keep)]).catch(() => "");
  const n = pruned.split("\n").filter((l) => l.startsWith("pruned=")).length;
  if (n) opts.progress(h.name, `pruned ${n} old release${n > 1 ? "s" : ""}`);
  return done({ result: "deployed", release: id, previous });
}

/** Back to `previous` after a failed activation. Returns true when the previous release serves again. */
async function restore(h: HostConfig, previous: string | undefined, wasRunning: boolean, healthUrls: string[], timeoutMs: number, progress: Progress): Promise<boolean> {
  try {
    if (!previous) {
      await run(h, ["unlink"]);
      if (!wasRunning) await run(h, ["stop"]);
      progress(h.name, "no previous release: removed current and stopped the nginx this deploy started");
      return true;
    }
    await activate({ ...h, start: h.start || wasRunning }, previous, healthUrls, timeoutMs, progress);
    progress(h.name, `rolled back to ${previous}`);
    return true;
  } catch (e) {
    progress(h.name, `rollback to ${previous} failed: ${(e as Error).message}`);
    return false;
  }
}

type RollbackOptions = { healthTimeoutMs: number; progress: Progress; to?: string };

/** Switch a host to the release before its current one (same checks as a deploy). */
export function rollbackHost(h: HostConfig, opts: RollbackOptions): Promise<HostOutcome> {
  return locked(h, "rollback", () => rollbackHostLocked(h, opts));
}

async function rollbackHostLocked(h: HostConfig, opts: RollbackOptions): Promise<HostOutcome> {
  const t0 = Date.now();
  const done = (o: Omit<HostOutcome, "host" | "ms">): HostOutcome => ({ host: h.name, ms: Date.now() - t0, ...o });
  let current: string | undefined;
  try {
    const info = kv(await run(h, ["info"]));
    current = info.current || undefined;
    if (!current) throw new HostError(`${h.prefix} has no current release`);
    const releases = (info.releases ?? "").split(" ").filter(Boolean).sort();
    const target = opts.to ?? releases.filter((r) => r < current!).pop();
    if (!target) throw new HostError(`no release older than ${current} in ${h.prefix}/releases`);
    if (!releases.includes(target)) throw new HostError(`no release ${target} in ${h.prefix}/releases`);
    await run(h, ["check", target, h.nginx]);
    const healthUrls = h.health.length ? h.health : defaultHealthUrls(h, await healthOfRelease(h, target));
    try {
      await activate(h, target, healthUrls, opts.healthTimeoutMs, opts.progress);
    } catch (e) {
      const why = (e as Error).message;
      const back = await restore(h, current, true, healthUrls, opts.healthTimeoutMs, opts.progress);
      return done({ result: back ? "rolled back" : "failed", release: target, previous: current, message: `rollback to ${target} failed, ${back ? "kept" : "could not restore"} ${current}: ${why}` });
    }
    return done({ result: "deployed", release: target, previous: current });
  } catch (e) {
    return done({ result: "failed", previous: current, message: (e as Error).message });
  }
}

/** Port and health path of a release already on the host (read from its nginx.conf). */
async function healthOfRelease(h: HostConfig, id: string): Promise<Pick<DeployBundle, "healthPath" | "port" | "address">> {
  return healthFromConf(await run(h, ["conf", id]));
}

export interface HostStatus {
  host: string;
  prefix: string;
  current?: string;
  pid?: number;
  uptimeSeconds?: number;
  masterPrefix?: string;
  releases: string[];
  manifest?: Pick<Manifest, "toolVersion" | "policy" | "target"> & { sha256: string };
  error?: string;
}

export async function statusHost(h: HostConfig): Promise<HostStatus> {
  const r = await h.transport.run(["status", h.prefix]);
  if (r.code !== 0) return { host: h.name, prefix: h.prefix, releases: [], error: (r.stderr || r.stdout).trim() };
  const [head, manifestText] = r.stdout.split("manifest<<\n");
  const v = kv(head ?? "");
  const st: HostStatus = {
    host: h.name,
    prefix: h.prefix,
    current: v.current || undefined,
    pid: v.pid ? Number(v.pid) : undefined,
    uptimeSeconds: v.uptime ? Number(v.uptime) : undefined,
    masterPrefix: v.master_prefix || undefined,
    releases: (v.releases ?? "").split(" ").filter(Boolean),
  };
  if (manifestText) {
    try {
      const m = JSON.parse(manifestText) as Manifest;
      const { createHash } = await import("node:crypto");
      st.manifest = { toolVersion: m.toolVersion, policy: m.policy, target: m.target, sha256: createHash("sha256").update(manifestText).digest("hex") };
    } catch {
      st.error = "the current release's manifest.json is not valid JSON";
    }
  }
  return st;
}

/**
 * Roll out to a fleet: `canary` hosts first, one at a time, each healthy before the next; then the rest,
 * `parallel` at a time. The first failure stops the rollout: hosts not started yet are skipped.
 */
export async function rollout<T extends { name: string }>(
  hosts: T[],
  deployOne: (h: T) => Promise<HostOutcome>,
  opts: { canary: number; parallel: number; progress: Progress; signal?: AbortSignal },
): Promise<HostOutcome[]> {
  const results = new Map<string, HostOutcome>();
  let stopped = false;
  let why = "rollout stopped by an earlier failure";
  opts.signal?.addEventListener("abort", () => {
    stopped = true;
    why = "rollout interrupted before this host";
  });
  const canaries = hosts.slice(0, opts.canary);
  const rest = hosts.slice(opts.canary);
  for (const h of canaries) {
    if (stopped) break;
    opts.progress(h.name, "canary: deploying");
    const o = await deployOne(h);
    results.set(h.name, o);
    if (o.result !== "deployed") {
      stopped = true;
      break;
    }
  }
  const queue = stopped ? [] : [...rest];
  const worker = async () => {
    while (!stopped && queue.length) {
      const h = queue.shift()!;
      const o = await deployOne(h);
      results.set(h.name, o);
      if (o.result !== "deployed") stopped = true;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.parallel, queue.length)) }, worker));
  return hosts.map((h) => results.get(h.name) ?? { host: h.name, result: "skipped", ms: 0, message: why });
}
