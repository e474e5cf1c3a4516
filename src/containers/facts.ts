import { createHash } from "node:crypto";
import { stringify } from "yaml";
import type { Bundle } from "../emit/index.js";
import type { Policy } from "../policy/types.js";
import { healthPath } from "../features/health.js";

/** What `build --emit` can write next to the bundle. */
export type EmitKind = "k8s" | "compose";
export const EMIT_KINDS: readonly EmitKind[] = ["k8s", "compose"];

/** A problem with the command line (exit 2). */
export class ContainerUsageError extends Error {}
/** A policy the containers cannot run as it is (exit 1): nothing is written. */
export class ContainerPolicyError extends Error {}

/**
 * The pinned OpenResty image the containers run: the official image built from OpenResty's Debian packages
 * (it has `sh`, `bash`, `cp`, `ln` and the Debian CA bundle the origin TLS default reads). `--image` overrides it.
 */
export const DEFAULT_IMAGE = "openresty/openresty:1.27.1.2-0-bookworm";
/** The binary in that image (and in every image built from OpenResty's packages). */
export const OPENRESTY_BIN = "/usr/local/openresty/bin/openresty";
/** The nginx prefix inside the container: the bundle with writable logs/, cache/ and temp/. */
export const PREFIX = "/srv/edge";
/** Where the read-only bundle is mounted (ConfigMaps in Kubernetes, the bundle folder in Compose). */
export const BUNDLE_MOUNT = "/etc/cdn-build/bundle";

/** A file the policy names on the edge host (certificates, keys, CA bundles): mounted from a Secret. */
export interface HostFile {
  /** Where nginx or the runtime reads it in the container (absolute). */
  path: string;
  /** The key in the `<name>-files` Secret (Kubernetes) that holds it. */
  key: string;
  /** The policy key that names it, for messages. */
  from: string;
  /** Relative to the bundle folder (a JWT key file given relative): Compose mounts it from there. */
  bundleRelative?: string;
}

export interface RedisFacts {
  host: string;
  port: number;
  db: number;
  passwordEnv?: string;
  /** 127.0.0.1, ::1 or localhost: only reachable inside the edge's own network namespace. */
  loopback: boolean;
  /** A host name rather than an address: the bundle has no `resolver`, so the runtime cannot resolve it. */
  hostName: boolean;
}

/** Everything the container emitters need to know about a built bundle. */
export interface EdgeFacts {
  name: string;
  toolVersion: string;
  /** sha256 of the bundle's manifest.json: names the bundle (it lists the sha256 of every file). */
  bundleSha: string;
  /** The bundle's files (relative path -> text), manifest.json included. */
  files: Map<string, string>;
  /** The bundle's top-level entries (`nginx.conf`, `lua`, `manifest.json`, ...), what is copied into the prefix. */
  topLevel: string[];
  httpPort: number;
  httpsPort?: number;
  healthPath?: string;
  /** Environment variables nginx passes to the runtime (`env NAME;`): secrets, never values. */
  env: string[];
  /** `env()` certificate paths: the files behind them must be mounted by the operator. */
  envPaths: string[];
  hostFiles: HostFile[];
  /** Absolute folders nginx writes to outside the prefix (a cache path, an access log's folder). */
  writableDirs: string[];
  /** The access log is `logs/access.log` (the default): sent to the container's stdout. */
  accessLogDefault: boolean;
  redis?: RedisFacts;
  /** `worker_processes auto`: nginx counts the machine's cores, not the container's CPU share. */
  workersAuto: boolean;
  /** Shared memory the bundle declares (lua_shared_dict and cache keys zones), in bytes. */
  shmBytes: number;
}

const LISTEN_ANY = new Set([undefined, "*", "0.0.0.0", "[::]"]);

function sizeBytes(s: string): number {
  const m = /^(\d+)([kKmMgG]?)$/.exec(s);
  if (!m) return 0;
  const unit = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as "" | "k" | "m" | "g"];
  return Number(m[1]) * unit;
}

/** Every `{ env: NAME }` reference in the policy value, by JSON path. */
function envRefs(value: unknown, path: string, out: { path: string; name: string }[]): void {
  if (Array.isArray(value)) value.forEach((v, i) => envRefs(v, `${path}/${i}`, out));
  else if (value && typeof value === "object") {
    const o = value as Record<string, unknown>;
    if (typeof o.env === "string" && Object.keys(o).length === 1) out.push({ path, name: o.env });
    else for (const [k, v] of Object.entries(o)) envRefs(v, `${path}/${k}`, out);
  }
}

/** Literal file paths the policy names on the edge host (TLS, origin TLS, JWT key file). */
function hostFilePaths(policy: Policy): { path: string; from: string; relative?: boolean }[] {
  const out: { path: string; from: string; relative?: boolean }[] = [];
  const add = (p: unknown, from: string) => {
    if (typeof p === "string" && p !== "") out.push(p.startsWith("/") ? { path: p, from } : { path: p, from, relative: true });
  };
  policy.tls?.certificates.forEach((c, i) => {
    add(c.certificate, `tls.certificates[${i}].certificate`);
    add(c.key, `tls.certificates[${i}].key`);
  });
  const tickets = policy.tls?.sessions?.tickets;
  if (Array.isArray(tickets)) tickets.forEach((p, i) => add(p, `tls.sessions.tickets[${i}]`));
  add(policy.tls?.ocspStapling?.verifyWith, "tls.ocspStapling.verifyWith");
  for (const [name, o] of Object.entries(policy.origins ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    add(o.tls?.trustedCa, `origins.${name}.tls.trustedCa`);
    add(o.tls?.clientCertificate, `origins.${name}.tls.clientCertificate`);
    add(o.tls?.clientKey, `origins.${name}.tls.clientKey`);
  }
  const jwtKey = policy.jwt?.publicKey;
  if (jwtKey && typeof jwtKey === "object" && "file" in jwtKey) add(jwtKey.file, "jwt.publicKey.file");
  return out;
}

/** Secret keys are `[-._a-zA-Z0-9]+`: the file's base name, made unique. */
function secretKeys(paths: string[]): string[] {
  const used = new Set<string>();
  return paths.map((p) => {
    const base = (p.split("/").pop() ?? "file").replace(/[^-._a-zA-Z0-9]/g, "_").replace(/^\.+/, "") || "file";
    let key = base;
    for (let i = 2; used.has(key); i++) key = `${i}-${base}`;
    used.add(key);
    return key;
  });
}

function dirOf(path: string): string {
  const d = path.replace(/\/+$/, "").replace(/\/[^/]*$/, "");
  return d === "" ? "/" : d;
}

/**
 * Reads what the containers need from the validated policy and the bundle in memory. Throws
 * ContainerPolicyError when the policy cannot serve from a container (a listen address other than all
 * interfaces).
 */
export function edgeFacts(policy: Policy, bundle: Bundle, toolVersion: string): EdgeFacts {
  const conf = bundle.files.get("nginx.conf") ?? "";
  const manifest = bundle.files.get("manifest.json") ?? "";
  const listen = policy.listen ?? {};
  const httpsAddress = listen.https ? (listen.https.address ?? listen.address) : undefined;
  for (const [key, address] of [["listen.address", listen.address], ["listen.https.address", httpsAddress]] as const) {
    if (!LISTEN_ANY.has(address)) {
      throw new ContainerPolicyError(
        `${key} is "${address}": in a container the edge must listen on every interface (traffic arrives on the ` +
          `pod's or container's own address, and ${address} is not it); remove ${key} for the container build ` +
          `(a TypeScript policy can read process.env to keep it for local runs)`,
      );
    }
  }
  const refs: { path: string; name: string }[] = [];
  envRefs(policy, "", refs);
  const envPaths = refs.filter((r) => /^\/tls\/certificates\/\d+\/(certificate|key)$/.test(r.path)).map((r) => r.name);
  const env = [...new Set([...conf.matchAll(/^\s*env ([A-Za-z_][A-Za-z0-9_]*);$/gm)].map((m) => m[1]!))].sort();

  const named = hostFilePaths(policy);
  const unique = [...new Map(named.map((f) => [f.path, f])).values()];
  const keys = secretKeys(unique.map((f) => f.path));
  const hostFiles: HostFile[] = unique.map((f, i) =>
    f.relative
      ? { path: `${PREFIX}/${f.path.replace(/^\.\//, "")}`, key: keys[i]!, from: f.from, bundleRelative: f.path.replace(/^\.\//, "") }
      : { path: f.path, key: keys[i]!, from: f.from },
  );

  const writable = new Set<string>();
  for (const p of [policy.cache?.disk?.path, policy.cache?.disk?.statePath]) if (p?.startsWith("/")) writable.add(p.replace(/\/+$/, ""));
  const logPath = policy.accessLog?.path;
  if (logPath?.startsWith("/") && !logPath.startsWith("/dev/")) writable.add(dirOf(logPath));

  let redis: RedisFacts | undefined;
  if (policy.redis) {
    const host = policy.redis.host ?? "127.0.0.1";
    redis = {
      host,
      port: policy.redis.port ?? 6379,
      db: policy.redis.db ?? 0,
      ...(policy.redis.password ? { passwordEnv: policy.redis.password.env } : {}),
      loopback: host === "localhost" || host === "::1" || host === "[::1]" || /^127\./.test(host),
      hostName: /[A-Za-z]/.test(host) && !host.includes(":"),
    };
    if (host === "localhost") redis.hostName = true;
  }

  let shm = 0;
  for (const m of conf.matchAll(/^\s*lua_shared_dict \S+ (\S+);$/gm)) shm += sizeBytes(m[1]!);
  for (const m of conf.matchAll(/keys_zone=[^:\s]+:(\S+?)[\s;]/g)) shm += sizeBytes(m[1]!);

  const topLevel = [...new Set([...bundle.files.keys()].map((p) => p.split("/")[0]!))].sort();
  const health = healthPath(policy);
  return {
    name: policy.name,
    toolVersion,
    bundleSha: createHash("sha256").update(manifest).digest("hex"),
    files: bundle.files,
    topLevel,
    httpPort: listen.http ?? 80,
    ...(listen.https ? { httpsPort: listen.https.port ?? 443 } : {}),
    ...(health !== undefined ? { healthPath: health } : {}),
    env,
    envPaths,
    hostFiles,
    writableDirs: [...writable].sort(),
    accessLogDefault: (logPath ?? "logs/access.log") === "logs/access.log" && policy.accessLog?.format !== "off",
    ...(redis ? { redis } : {}),
    workersAuto: /^\s*worker_processes auto;$/m.test(conf),
    shmBytes: shm,
  };
}

/** The first line of every file we emit: how a later build recognises its own files. */
export const GENERATED = "# generated by cdn-build";

export function header(facts: EdgeFacts, what: string): string {
  return (
    `${GENERATED} ${facts.toolVersion} from policy "${facts.name}" (bundle ${facts.bundleSha.slice(0, 12)}): do not edit.\n` +
    `# ${what}\n# Rebuild with \`cdn-build build --emit\` instead.\n`
  );
}

/** YAML for one document: strings kept byte for byte, no line folding. */
export function yaml(value: unknown): string {
  return stringify(value, { lineWidth: 0, minContentWidth: 0, aliasDuplicateObjects: false });
}

/** Shell single-quoting for the start scripts. */
export function sq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The commands that link nginx's logs to the container's output streams (run in the prefix's logs/). */
export function logLinks(facts: EdgeFacts): string[] {
  const out = [`ln -sf /dev/stderr ${PREFIX}/logs/error.log`];
  if (facts.accessLogDefault) out.push(`ln -sf /dev/stdout ${PREFIX}/logs/access.log`);
  return out;
}

/** `openresty` started in the foreground on the prefix (PID 1 of the container after `exec`). */
export const START = [OPENRESTY_BIN, "-p", `${PREFIX}/`, "-c", "nginx.conf", "-g", "daemon off;"];
