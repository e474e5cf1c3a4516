/**
 * `bootPolicy`: the booted half of the public test API. A user's policy is built exactly as `cdn-build build`
 * builds it, for the nginx (or OpenResty) found on this machine, with two changes that make it testable: it
 * listens on a free port of 127.0.0.1 (plain HTTP), and its origin pools can point at a mock origin.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Agent, request } from "undici";
import { compile, locateAll, validate } from "../compile.js";
import { CATALOGUE } from "../validate/catalogue.js";
import { writeBundleAtomic } from "../emit/write.js";
import { healthPath } from "../features/health.js";
import { loadPolicy, type LoadedPolicy } from "../load/index.js";
import type { Policy } from "../policy/types.js";
import { ensureNginx, freePort, startBundle, testConfig, type NginxBinary } from "../runtime/nginx.js";
import { formatDiagnostic, hasErrors, type Diagnostic } from "../validate/diagnostic.js";
import type { MockOrigin } from "./origin.js";

/** Where a pool's traffic goes in a test: a mock origin, or a `host:port`. */
export type OriginTarget = MockOrigin | string;

export interface LocalOverrides {
  /** The port to listen on, plain HTTP on 127.0.0.1 (the policy's `listen`, HTTPS included, is replaced). */
  port: number;
  /** Every pool's servers become this one server. */
  origin?: string;
  /** Named pools' servers become this one server (after `origin`). */
  origins?: Record<string, string>;
}

/**
 * The policy value with local overrides, for `dev` and for tests: its port on 127.0.0.1 over plain HTTP
 * (`listen.https` and `tls` are left out) and, when asked, its origin pools sent to one server each (weights, backups and the other servers go; timeouts, keepalive, TLS
 * and the rest of the pool stay).
 */
export function withLocalOverrides(value: unknown, o: LocalOverrides): unknown {
  if (typeof value !== "object" || value === null) return value;
  const p = structuredClone(value) as Record<string, unknown>;
  // plain HTTP only: the HTTPS listener goes, and with it the client TLS settings (certificates, the redirect
  // to HTTPS, HSTS), which nginx would refuse without it
  p.listen = { http: o.port, address: "127.0.0.1" };
  delete p.tls;
  const pools = typeof p.origins === "object" && p.origins !== null ? (p.origins as Record<string, Record<string, unknown>>) : {};
  for (const [name, pool] of Object.entries(pools)) {
    const to = o.origins?.[name] ?? o.origin;
    if (to !== undefined && pool && typeof pool === "object") pool.servers = [{ address: to }];
  }
  return p;
}

/**
 * The errors of the policy as written, before local overrides: the client TLS settings a local boot leaves
 * out must still be valid, except that their certificate files need not exist on this machine (tlsFileUnreadable).
 */
export function writtenErrors(value: unknown): Diagnostic[] {
  return validate(value).diagnostics.filter((d) => d.severity === "error" && !(d.code === CATALOGUE.tlsFileUnreadable.code && d.path.startsWith("/tls/")));
}

/**
 * A new folder under the OS temp folder, made with a plain `mkdir` (0755 with the usual umask), not mkdtemp's
 * 0700, so that the workers of a root master can traverse it, as they must for a user's bundle folder.
 */
export async function projectDir(prefix = "cdn-project-"): Promise<string> {
  for (;;) {
    const dir = join(tmpdir(), `${prefix}${randomBytes(6).toString("hex")}`);
    try {
      await mkdir(dir, { mode: 0o755 });
      return dir;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  }
}

export interface BootOptions {
  /** Send every origin pool to this server: a mock origin (`startMockOrigin()`) or `"host:port"`. */
  origin?: OriginTarget;
  /** Send the named pools to these servers (takes precedence over `origin` for those pools). */
  origins?: Record<string, OriginTarget>;
  /**
   * Environment variables set while a TypeScript policy is loaded (a policy may read `process.env`) and given
   * to nginx (secrets the policy names with `env("NAME")`). The test process's own environment is restored
   * after the load.
   */
  env?: Record<string, string>;
  /** Last-minute edits to the policy value before it is compiled (a test-only pool, a shorter TTL...). */
  patch?: (policy: Record<string, unknown>) => void;
  /** How long nginx may take to answer its health path (or accept connections). Default 15 s. */
  readyTimeoutMs?: number;
}

/** One response from a booted edge. Header names are lower-case; repeated headers are joined with ", ". */
export interface EdgeResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The value of the policy's cache status header (`headers.cacheStatus`, default `X-Cache`), if sent. */
  cacheStatus: string | undefined;
  /** The cache status header's name, lower-case; undefined when the policy turned it off. */
  cacheStatusHeader: string | undefined;
  /** "METHOD /path", for messages. */
  request: string;
}

export interface EdgeRequest {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

/** One line of the JSON access log (`accessLog: { format: "json" }`, the default). */
export interface AccessLogLine {
  uri: string;
  status: number;
  cache: string;
  [field: string]: string | number;
}

export interface TestEdge {
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** The bundle folder nginx runs from (its prefix): nginx.conf, lua/, logs/. */
  dir: string;
  /** The policy as compiled (with the test's listen and origins). */
  policy: Policy;
  /** Sends one request; the body is read whole. */
  request(path: string, init?: EdgeRequest): Promise<EdgeResponse>;
  get(path: string, headers?: Record<string, string>): Promise<EdgeResponse>;
  /** error.log lines at level [error] or worse since the boot (a Lua error in a hook shows up here). */
  errors(): Promise<string[]>;
  /** The access log so far, one object per request (JSON format only; another format throws). */
  accessLog(): Promise<AccessLogLine[]>;
  /** Graceful reload (SIGHUP); resolves when the new workers serve. */
  reload(): Promise<void>;
  /** Stops nginx (gracefully, then by force) and removes the bundle folder. Safe to call twice. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

let binary: Promise<NginxBinary> | undefined;

const addressOf = (t: OriginTarget): string => (typeof t === "string" ? t : t.address);

/** Loads a policy file with `env` set in process.env for the duration of the load. */
async function loadWithEnv(file: string, env: Record<string, string> | undefined): Promise<LoadedPolicy> {
  const saved = new Map<string, string | undefined>();
  for (const [k, v] of Object.entries(env ?? {})) {
    saved.set(k, process.env[k]);
    process.env[k] = v;
  }
  try {
    const { loaded, diagnostics } = await loadPolicy(file);
    if (!loaded || hasErrors(diagnostics)) throw new Error(`the policy ${file} does not load:\n${show(diagnostics)}`);
    return loaded;
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

const show = (ds: Diagnostic[]) =>
  ds
    .filter((d) => d.severity === "error")
    .map(formatDiagnostic)
    .join("\n");

/**
 * Builds a policy (a file path or `file:` URL of a .ts/.yaml/.json policy, or a policy object) for the local
 * nginx, boots it on a free 127.0.0.1 port and waits until it answers its health path. Throws with the
 * diagnostics when the policy is invalid, and with nginx's error.log when it does not start.
 *
 *   const origin = await startMockOrigin();
 *   const edge = await bootPolicy(new URL("./edge.policy.ts", import.meta.url), { origin });
 */
export async function bootPolicy(policy: string | URL | object, opts: BootOptions = {}): Promise<TestEdge> {
  let value: unknown;
  let baseDir: string | undefined;
  let name = "edge";
  let loaded: LoadedPolicy | undefined;
  if (typeof policy === "string" || policy instanceof URL) {
    const file = resolve(policy instanceof URL ? fileURLToPath(policy) : policy);
    loaded = await loadWithEnv(file, opts.env);
    value = loaded.value;
    baseDir = dirname(file);
    name = basename(file).replace(/\..*$/, "") || "edge";
  } else {
    value = structuredClone(policy);
  }
  // the policy as written must be valid, the parts a test boot leaves out (TLS) included
  const written = writtenErrors(value);
  if (hasErrors(written)) throw new Error(`the policy is invalid:\n${show(loaded ? locateAll(written, loaded) : written)}`);
  const port = await freePort();
  const origins = Object.fromEntries(Object.entries(opts.origins ?? {}).map(([k, v]) => [k, addressOf(v)]));
  const local = withLocalOverrides(value, { port, origin: opts.origin === undefined ? undefined : addressOf(opts.origin), origins }) as Record<string, unknown>;
  const unknownPools = Object.keys(origins).filter((k) => !Object.hasOwn((local.origins as object | undefined) ?? {}, k));
  if (unknownPools.length) throw new Error(`bootPolicy: the policy has no origin pool named ${unknownPools.join(", ")}`);
  opts.patch?.(local);

  binary ??= ensureNginx();
  const bin = await binary;
  const { bundle, policy: compiled, diagnostics } = compile(local, { target: bin.kind, baseDir });
  if (!bundle || !compiled || hasErrors(diagnostics)) throw new Error(`the policy does not compile:\n${show(loaded ? locateAll(diagnostics, loaded) : diagnostics)}`);

  const project = await projectDir("cdn-test-");
  const dir = join(project, name);
  const agent = new Agent({ keepAliveTimeout: 1000, connections: 64 });
  let stopNginx: (() => Promise<void>) | undefined;
  const cleanup = async () => {
    await stopNginx?.();
    await agent.close().catch(() => undefined);
    await rm(project, { recursive: true, force: true });
  };
  let running;
  try {
    await writeBundleAtomic(bundle, dir, async (stage) => {
      const t = await testConfig(stage, bin);
      if (!t.ok) throw new Error(`nginx -t refused the bundle:\n${t.output}`);
    });
    running = await startBundle(dir, { port, bin, env: opts.env, readyPath: healthPath(compiled), readyTimeoutMs: opts.readyTimeoutMs ?? 15_000 });
    stopNginx = running.stop;
  } catch (e) {
    await cleanup();
    throw e;
  }

  const statusHeader = compiled.cache && compiled.headers?.cacheStatus !== false ? (compiled.headers?.cacheStatus ?? "X-Cache").toLowerCase() : undefined;
  const send = async (path: string, init: EdgeRequest = {}): Promise<EdgeResponse> => {
    if (!path.startsWith("/")) throw new Error(`request path must start with "/", got "${path}"`);
    const method = init.method ?? "GET";
    const res = await request(running.baseUrl + path, { method: method as "GET", headers: init.headers, body: init.body, dispatcher: agent });
    const body = await res.body.text();
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(", ") : v;
    return { status: res.statusCode, headers, body, cacheStatus: statusHeader ? headers[statusHeader] : undefined, cacheStatusHeader: statusHeader, request: `${method} ${path}` };
  };
  let stopped: Promise<void> | undefined;
  const stop = () => (stopped ??= cleanup());
  return {
    url: running.baseUrl,
    port,
    dir,
    policy: compiled,
    request: send,
    get: (path, headers) => send(path, { headers }),
    async errors() {
      return (await running.errorLog()).split("\n").filter((l) => /\[(error|crit|alert|emerg)\]/.test(l));
    },
    async accessLog() {
      const format = compiled.accessLog?.format ?? "json";
      if (format !== "json") throw new Error(`accessLog(): the policy's access log is "${format}", not json`);
      const text = await readFile(resolve(dir, compiled.accessLog?.path ?? "logs/access.log"), "utf8").catch(() => "");
      return text
        .split("\n")
        .filter((l) => l.trim() !== "")
        .map((l) => JSON.parse(l) as AccessLogLine);
    },
    reload: () => running.reload(),
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
