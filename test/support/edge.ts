import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { compile } from "../../src/compile.js";
import type { Bundle } from "../../src/emit/index.js";
import { writeBundleAtomic } from "../../src/emit/write.js";
import type { Policy } from "../../src/policy/types.js";
import { formatDiagnostic } from "../../src/validate/diagnostic.js";
import { ensureNginx, freePort, startBundle, testConfig, type NginxBinary, type RunningNginx } from "../../src/runtime/nginx.js";
import { waitFor } from "./wait.js";
import { projectDir } from "../../src/testing/edge.js";

export { projectDir };

export interface Edge extends RunningNginx {
  /** The policy as booted (with the test's port). */
  policy: Policy;
  /** nginx.conf text of the booted bundle. */
  conf: string;
  /** error.log lines at level [error] or worse written since boot (Lua errors show up here). */
  errors(): Promise<string[]>;
}

let bin: NginxBinary | undefined;
export async function nginxBinary(): Promise<NginxBinary> {
  bin ??= await ensureNginx();
  return bin;
}

/**
 * Writes a compiled bundle into `<project>/<name>` with the writer `cdn-build build` uses (nginx -t runs on the
 * staged bundle, like `--verify`). Nothing in the bundle is changed after it was written.
 */
export async function writeForTest(bundle: Bundle, name = "edge"): Promise<{ dir: string; remove(): Promise<void> }> {
  const b = await nginxBinary();
  const project = await projectDir("cdn-edge-");
  const dir = join(project, name);
  try {
    await writeBundleAtomic(bundle, dir, async (stage) => {
      const t = await testConfig(stage, b);
      if (!t.ok) throw new Error(`nginx -t failed:\n${t.output}`);
    });
  } catch (err) {
    await rm(project, { recursive: true, force: true });
    throw err;
  }
  return { dir, remove: () => rm(project, { recursive: true, force: true }) };
}

export interface BuildOptions {
  /**
   * Test instrumentation: edits the compiled nginx.conf in memory, before the bundle is written (e.g. a
   * location that exposes internal state to the test).
   */
  patchConf?: (conf: string) => string;
  /** The folder the policy's hook files are relative to (the policy file's folder for the CLI). */
  baseDir?: string;
}

/** Compiles a policy for the local runtime and writes it as the CLI does. `remove()` deletes it. */
export async function buildForTest(policy: Policy, opts: BuildOptions = {}): Promise<{ dir: string; conf: string; remove(): Promise<void> }> {
  const b = await nginxBinary();
  const { bundle, diagnostics } = compile(policy, { target: b.kind, baseDir: opts.baseDir });
  if (!bundle) throw new Error(`policy did not compile:\n${diagnostics.map(formatDiagnostic).join("\n")}`);
  if (opts.patchConf) bundle.files.set("nginx.conf", opts.patchConf(bundle.files.get("nginx.conf")!));
  const { dir, remove } = await writeForTest(bundle);
  return { dir, conf: bundle.files.get("nginx.conf")!, remove };
}

/** Compiles, writes and boots a policy on a free 127.0.0.1 port. `stop()` also removes the bundle. */
export async function bootEdge(
  policy: Omit<Policy, "listen"> & Partial<Pick<Policy, "listen">>,
  opts: { env?: Record<string, string> } & BuildOptions = {},
): Promise<Edge> {
  const port = await freePort();
  return bootBuilt({ ...policy, listen: { http: port, address: "127.0.0.1" } } as Policy, port, opts);
}

/**
 * Builds `p` (its `listen` already set; `port` is its plain HTTP port) as the CLI would and boots it; the
 * one boot path of bootEdge and test/support/tls.ts's bootTlsEdge. `stop()` also removes the bundle.
 */
export async function bootBuilt(p: Policy, port: number, opts: { env?: Record<string, string> } & BuildOptions = {}): Promise<Edge> {
  const { dir, conf, remove } = await buildForTest(p, opts);
  let running: RunningNginx;
  try {
    running = await startBundle(dir, { port, bin: await nginxBinary(), env: opts.env });
  } catch (err) {
    await remove();
    throw err;
  }
  return {
    ...running,
    policy: p,
    conf,
    async errors() {
      const log = await running.errorLog();
      return log.split("\n").filter((l) => /\[(error|crit|alert|emerg)\]/.test(l));
    },
    async stop() {
      await running.stop();
      await remove();
    },
  };
}

/** One line of the JSON access log (the default format). */
export interface AccessLogEntry {
  uri: string;
  /** JSON numbers: the status, the body bytes sent and the request time (seconds). */
  status: number;
  bytes: number;
  duration: number;
  cache: string;
  client: string;
  [field: string]: string | number;
}

/**
 * The JSON access log of an edge so far (empty before the first line). A request is logged once it is finished:
 * for a background refresh (a request the edge sends itself) that is after the cache was updated.
 */
export async function accessLog(edge: { dir: string }, file = "logs/access.log"): Promise<AccessLogEntry[]> {
  const text = await readFile(join(edge.dir, file), "utf8").catch(() => "");
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as AccessLogEntry);
}

/** Waits until the edge has logged at least `n` requests for `path` (query ignored). */
export async function waitLogged(edge: { dir: string }, path: string, n: number, timeout = 5000): Promise<void> {
  await waitFor(async () => (await accessLog(edge)).filter((l) => l.uri.split("?")[0] === path).length >= n, {
    timeout,
    what: `${n} access log lines for ${path}`,
  });
}
