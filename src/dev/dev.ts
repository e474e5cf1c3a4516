/**
 * `cdn-build dev <policy>`: build, boot the bundle in a local nginx, rebuild and reload when the policy or a
 * file it imports changes, print a compact line per request from the access log, stop nginx on Ctrl-C.
 */
import { watch, type FSWatcher } from "node:fs";
import { chmod, mkdtemp, open, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { compile } from "../compile.js";
import { writeBundleAtomic } from "../emit/write.js";
import { healthPath } from "../features/health.js";
import { TARGET_NAMES, type Target } from "../ir/targets.js";
import { loadPolicy } from "../load/index.js";
import { findNginx, type RunningNginx, startBundle } from "../runtime/nginx.js";
import { autoTarget } from "../runtime/target.js";
import { withLocalOverrides, writtenErrors } from "../testing/edge.js";
import { formatDiagnostic, hasErrors } from "../validate/diagnostic.js";

export const DEV_HELP = `Usage: cdn-build dev <policy> [--port <n>] [--origin <host:port>] [--target auto|openresty|nginx-lua]

Builds the policy, boots the bundle in the nginx (or OpenResty) found on this machine, on 127.0.0.1, and
prints its URL. It then watches the policy and the files it imports: on a change it rebuilds and reloads
nginx; an invalid policy prints its diagnostics and the last good bundle keeps serving. Every request is
printed as one line (method, path, status, cache status, milliseconds) from the access log, which dev
writes as JSON. Ctrl-C (SIGINT) or SIGTERM stops nginx and removes the temporary bundle folder.

  --port <n>            port to listen on (default: the policy's listen.http, or 8080 when that is < 1024)
  --origin <host:port>  send every origin pool to this one server (e.g. a local app on 127.0.0.1:3000)
  --target <t>          auto (default), openresty or nginx-lua

Exit codes: 0 stopped by a signal, 1 the first build or the boot failed, 2 usage error.`;

export class DevUsageError extends Error {}

/** Relative imports of a TS policy (and of what it imports), as absolute file paths. */
async function dependencies(file: string, seen = new Set<string>()): Promise<Set<string>> {
  if (seen.has(file)) return seen;
  seen.add(file);
  if (!/\.[mc]?ts$/.test(file)) return seen;
  const text = await readFile(file, "utf8").catch(() => "");
  for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)["'](\.{1,2}\/[^"']+)["']/g)) {
    const spec = resolve(dirname(file), m[1]!);
    for (const cand of [spec, spec.replace(/\.[mc]?js$/, ".ts"), `${spec}.ts`, join(spec, "index.ts")]) {
      const st = await stat(cand).catch(() => undefined);
      if (st?.isFile()) {
        await dependencies(cand, seen);
        break;
      }
    }
  }
  return seen;
}

/** The policy value with dev's overrides: its port on 127.0.0.1, one origin server, a JSON access log. */
function applyOverrides(value: unknown, o: { port: number; origin?: string }): unknown {
  const p = withLocalOverrides(value, o);
  if (typeof p === "object" && p !== null) (p as Record<string, unknown>).accessLog = { format: "json" };
  return p;
}

function accessLine(line: string): string | undefined {
  try {
    const e = JSON.parse(line) as Record<string, string>;
    const ms = Math.round(Number(e.duration ?? 0) * 1000);
    return `${e.method} ${e.uri} ${e.status} ${e.cache || "-"} ${ms}ms`;
  } catch {
    return undefined;
  }
}

export async function runDev(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { port: { type: "string" }, origin: { type: "string" }, target: { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    process.stdout.write(DEV_HELP + "\n");
    return 0;
  }
  if (positionals.length !== 1) throw new DevUsageError("dev takes exactly one policy file");
  const file = resolve(positionals[0]!);
  if (values.port !== undefined && (!/^\d+$/.test(values.port) || Number(values.port) < 1 || Number(values.port) > 65535)) {
    throw new DevUsageError(`--port must be a port number (1-65535), got "${values.port}"`);
  }
  if (values.origin !== undefined && !/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(values.origin)) {
    throw new DevUsageError(`--origin must be host:port (e.g. 127.0.0.1:3000), got "${values.origin}"`);
  }
  const requested = values.target ?? "auto";
  if (requested !== "auto" && !TARGET_NAMES.includes(requested as Target)) throw new DevUsageError(`unknown target "${requested}" (use auto, ${TARGET_NAMES.join(" or ")})`);
  try {
    await stat(file);
  } catch {
    throw new DevUsageError(`cannot read the policy ${positionals[0]}`);
  }

  const bin = await findNginx();
  if (!bin) {
    process.stderr.write("error: dev needs nginx with the Lua module or OpenResty on PATH (see docs/testing.md for the packages)\n");
    return 1;
  }
  const target = requested === "auto" ? autoTarget(bin).target : (requested as Target);
  const work = await mkdtemp(join(tmpdir(), "cdn-dev-"));
  await chmod(work, 0o755); // the workers (nobody, under a root master) read the bundle
  const out = join(work, basename(file).replace(/\.[^.]+$/, "") || "edge");
  const log = (line: string) => process.stdout.write(`${line}\n`);

  let port = values.port ? Number(values.port) : 0;
  let health: string | undefined;
  /** Build into `out`; returns false (after printing the diagnostics) when the policy is invalid. */
  const build = async (): Promise<boolean> => {
    const { loaded, diagnostics } = await loadPolicy(file);
    if (!loaded || hasErrors(diagnostics)) {
      for (const d of diagnostics) process.stderr.write(formatDiagnostic(d) + "\n");
      return false;
    }
    if (!port) {
      const p = (loaded.value as { listen?: { http?: unknown } })?.listen?.http;
      port = typeof p === "number" && p >= 1024 && p <= 65535 ? p : 8080;
    }
    // the policy as written must be valid, TLS included (dev serves plain HTTP and leaves it out)
    const written = writtenErrors(loaded.value);
    const result = written.length > 0 ? { diagnostics: written, bundle: undefined, policy: undefined } : compile(applyOverrides(loaded.value, { port, origin: values.origin }), { target });
    const all = [...diagnostics, ...result.diagnostics].map((d) => {
      if (d.file) return d;
      const pos = loaded.locate(d.path);
      return pos ? { ...d, file, line: pos.line, col: pos.col } : { ...d, file };
    });
    for (const d of all) process.stderr.write(formatDiagnostic(d) + "\n");
    if (!result.bundle || hasErrors(all)) return false;
    health = result.policy ? healthPath(result.policy) : undefined;
    await writeBundleAtomic(result.bundle, out);
    return true;
  };

  let nginx: RunningNginx | undefined;
  let watchers: FSWatcher[] = [];
  let tail: NodeJS.Timeout | undefined;
  const cleanup = async () => {
    for (const w of watchers) w.close();
    if (tail) clearInterval(tail);
    await nginx?.stop();
    await rm(work, { recursive: true, force: true });
    process.removeListener("SIGINT", onSignal);
    process.removeListener("SIGTERM", onSignal);
  };

  let stopSignal: (sig: string) => void = () => undefined;
  const stopped = new Promise<string>((r) => (stopSignal = r));
  const onSignal = (sig: NodeJS.Signals) => stopSignal(sig);
  // process.on, not once: while this listener is there, the runtime's own handler (which kills nginx at
  // once) does not re-raise the signal, so the cleanup below still runs.
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  try {
    if (!(await build())) {
      process.stderr.write("the policy is invalid: fix it and run dev again\n");
      await cleanup();
      return 1;
    }
    nginx = await startBundle(out, { port, bin, readyPath: health, readyTimeoutMs: 15_000 });
  } catch (e) {
    process.stderr.write(`error: ${(e as Error).message}\n`);
    await cleanup();
    return 1;
  }
  log(`cdn-build dev: serving ${basename(file)} at http://127.0.0.1:${port}/ (nginx master ${nginx.pid}, ${bin.kind}, bundle in ${out}); Ctrl-C stops`);

  // live log: a compact line per request from the JSON access log
  const accessPath = join(out, "logs", "access.log");
  let offset = (await stat(accessPath).catch(() => undefined))?.size ?? 0;
  let partial = "";
  let reading = false;
  tail = setInterval(async () => {
    if (reading) return;
    reading = true;
    try {
      const size = (await stat(accessPath).catch(() => undefined))?.size ?? 0;
      if (size < offset) offset = 0;
      if (size > offset) {
        const fh = await open(accessPath, "r");
        const buf = Buffer.alloc(size - offset);
        await fh.read(buf, 0, buf.length, offset);
        await fh.close();
        offset = size;
        const lines = (partial + buf.toString("utf8")).split("\n");
        partial = lines.pop() ?? "";
        for (const l of lines) {
          const shown = accessLine(l);
          if (shown) log(shown);
        }
      }
    } finally {
      reading = false;
    }
  }, 200);

  // watch the policy and what it imports; rebuild + reload on change (debounced, one at a time)
  let timer: NodeJS.Timeout | undefined;
  let busy: Promise<void> = Promise.resolve();
  const rebuild = () => {
    busy = busy.then(async () => {
      try {
        if (!(await build())) {
          process.stderr.write("policy invalid: still serving the last good build\n");
          return;
        }
        await nginx!.reload();
        log(`rebuilt and reloaded (${new Date().toISOString().slice(11, 19)})`);
        await rewatch();
      } catch (e) {
        process.stderr.write(`rebuild failed: ${(e as Error).message}\n`);
      }
    });
  };
  const rewatch = async () => {
    for (const w of watchers) w.close();
    const files = await dependencies(file);
    const dirs = new Map<string, Set<string>>();
    for (const f of files) {
      const set = dirs.get(dirname(f)) ?? new Set<string>();
      set.add(basename(f));
      dirs.set(dirname(f), set);
    }
    watchers = [...dirs].map(([d, names]) =>
      watch(d, (_event, name) => {
        if (name && !names.has(String(name))) return;
        clearTimeout(timer);
        timer = setTimeout(rebuild, 150);
      }),
    );
  };
  await rewatch();

  const sig = await stopped;
  log(`${sig}: stopping nginx`);
  await busy.catch(() => undefined);
  clearTimeout(timer);
  await cleanup();
  return 0;
}
