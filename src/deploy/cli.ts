/** `cdn-build deploy`, `cdn-build rollback` and `cdn-build status`. */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Ajv } from "ajv";
import { parse as parseYaml } from "yaml";
import { TARGET_NAMES, type Target } from "../ir/targets.js";
import { findNginx } from "../runtime/nginx.js";
import { autoTarget } from "../runtime/target.js";
import { deployHost, rollbackHost, rollout, statusHost, type HostConfig, type HostOutcome, type HostStatus } from "./deploy.js";
import { bundleFromDir, bundleFromPolicy, isDirectory, SourceError, tarBundle, type DeployBundle } from "./source.js";
import { localTransport, sshTransport } from "./transport.js";

export class DeployUsageError extends Error {}

const TARGET_HELP = `Targets (--to, repeatable):
  /srv/edge                 a prefix on this machine
  [user@]host:/srv/edge     a prefix on a host reached with the OpenSSH client (ssh, batch mode)
or --inventory hosts.yaml (YAML or JSON; see docs/deploy.md):
  defaults: { nginx: /usr/sbin/nginx, keep: 5, start: false }
  hosts:
    - { name: edge-1, ssh: deploy@10.0.0.1, prefix: /srv/edge, health: ["http://10.0.0.1:8080/health"] }

Host options (command line; an inventory's hosts and defaults take precedence over them):
  --nginx <path>          nginx or openresty binary on the host (default: the one found here for a
                          local prefix, \`nginx\` on the remote PATH)
  --reload-cmd <cmd>      command that reloads nginx on the host (default: SIGHUP to the master named by
                          <prefix>/shared/logs/nginx.pid)
  --health-url <url>      URL probed after the switch, must answer 2xx three times in a row (repeatable;
                          default: the policy's health path on its listen port at the host's address)
  --health-timeout <s>    seconds to wait for health (default 10)
  --ssh-port <n>, --identity <file>, --ssh-option <Key=Value> (repeatable)   OpenSSH client options
  --json                  print the result as JSON on stdout`;

export const DEPLOY_HELP = `Usage: cdn-build deploy <policy|bundle-dir> (--to <target> ... | --inventory <file>) [options]

Ships a bundle (built from the policy, or a folder written by \`cdn-build build\`, checked against its
manifest) to each host as <prefix>/releases/<UTC time>-<manifest sha>, runs \`nginx -t\` on it, switches
<prefix>/current to it atomically, reloads nginx (which runs with -p <prefix>/current/), probes health and
scans error.log. Any failure switches current back and reloads the previous release. logs/, cache/ and
temp/ live in <prefix>/shared and survive releases; secrets stay on the host (--host-env-file).

  --target <t>            auto (default, from the nginx found here) | openresty | nginx-lua (for a policy)
  --start                 start nginx when it is not running (first deploy)
  --host-env-file <path>  file on the host sourced (set -a) before nginx starts: the secrets the policy
                          names with env("NAME") (never copied into a release; read when nginx starts)
  --keep <n>              releases kept per host (default 5; the current one is never removed)
  --canary <n>            deploy to the first n hosts one by one, each healthy before the next (default 0)
  --parallel <n>          then the other hosts, n at a time (default 4)
The first failing host stops the rollout (hosts not started are skipped); that host is rolled back.
Ctrl-C lets the hosts in flight finish (checks, rollbacks) and starts no other; a second one aborts.

${TARGET_HELP}

Exit codes: 0 every host deployed, 1 a host failed (rolled back where possible), 2 usage error.`;

export const ROLLBACK_HELP = `Usage: cdn-build rollback (--to <target> ... | --inventory <file>) [--release <id>] [options]

Switches each host to the release before its current one (or --release <id>), with the same checks as a
deploy (\`nginx -t\`, reload, health probe, error.log); a failed check keeps the current release.

${TARGET_HELP}

Exit codes: 0 rolled back, 1 failed (current release kept), 2 usage error.`;

export const STATUS_HELP = `Usage: cdn-build status <target> ... | --inventory <file> [--json]

For each host: the current release, its manifest (tool version, policy name, target, sha256 of
manifest.json), the nginx master's pid, uptime and prefix, and the releases kept.

${TARGET_HELP}

Exit codes: 0 every host answered, 1 a host could not be read or runs no nginx, 2 usage error.`;

const hostFields = {
  name: { type: "string", minLength: 1 },
  ssh: { type: "string", pattern: "^([A-Za-z0-9._-]+@)?[A-Za-z0-9.:\\[\\]_-]+$" },
  port: { type: "integer", minimum: 1, maximum: 65535 },
  identity: { type: "string", minLength: 1 },
  sshOptions: { type: "array", items: { type: "string", pattern: "^[A-Za-z]+=.*$" } },
  prefix: { type: "string", pattern: "^/" },
  nginx: { type: "string", minLength: 1 },
  reload: { type: "string" },
  health: { type: "array", items: { type: "string", pattern: "^https?://" } },
  envFile: { type: "string", pattern: "^/" },
  start: { type: "boolean" },
  keep: { type: "integer", minimum: 1, maximum: 100 },
  policyEnv: { type: "object", additionalProperties: { type: "string" } },
} as const;

const INVENTORY_SCHEMA = {
  type: "object",
  additionalProperties: false,
  required: ["hosts"],
  properties: {
    defaults: { type: "object", additionalProperties: false, properties: hostFields },
    hosts: { type: "array", minItems: 1, items: { type: "object", additionalProperties: false, required: ["prefix"], properties: hostFields } },
  },
};

type HostEntry = { -readonly [K in keyof typeof hostFields]?: K extends "sshOptions" | "health" ? string[] : K extends "port" | "keep" ? number : K extends "start" ? boolean : K extends "policyEnv" ? Record<string, string> : string };

const COMMON = {
  to: { type: "string", multiple: true },
  inventory: { type: "string", short: "i" },
  nginx: { type: "string" },
  "reload-cmd": { type: "string" },
  "health-url": { type: "string", multiple: true },
  "health-timeout": { type: "string" },
  "ssh-port": { type: "string" },
  identity: { type: "string" },
  "ssh-option": { type: "string", multiple: true },
  "host-env-file": { type: "string" },
  keep: { type: "string" },
  start: { type: "boolean" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

function intOption(name: string, v: string | undefined, def: number, min: number, max: number): number {
  if (v === undefined) return def;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new DeployUsageError(`--${name} must be an integer from ${min} to ${max}, got "${v}"`);
  return Number(v);
}

/** Parse `--to` values into inventory entries. */
export function parseTarget(to: string): HostEntry {
  if (!to) throw new DeployUsageError("--to needs a prefix or [user@]host:/prefix");
  const m = /^((?:[A-Za-z0-9._-]+@)?(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+)):(.*)$/.exec(to);
  if (m && !to.startsWith("/") && !to.startsWith(".")) {
    if (!m[2]!.startsWith("/")) throw new DeployUsageError(`--to ${to}: the remote prefix must be an absolute path (host:/srv/edge)`);
    return { name: to, ssh: m[1]!, prefix: m[2]!.replace(/\/+$/, "") || "/" };
  }
  return { name: resolve(to), prefix: resolve(to) };
}

async function loadInventory(file: string): Promise<HostEntry[]> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    throw new DeployUsageError(`cannot read the inventory ${file}: ${(e as Error).message}`);
  }
  let data: unknown;
  try {
    data = /\.json$/i.test(file) ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new DeployUsageError(`the inventory ${file} is not valid ${/\.json$/i.test(file) ? "JSON" : "YAML"}: ${(e as Error).message}`);
  }
  const ajv = new Ajv({ allErrors: true });
  const ok = ajv.validate(INVENTORY_SCHEMA, data);
  if (!ok) {
    const lines = (ajv.errors ?? []).map((e) => `  ${e.instancePath || "/"}: ${e.message}${e.params && "additionalProperty" in e.params ? ` (${String(e.params.additionalProperty)})` : ""}`);
    throw new DeployUsageError(`the inventory ${file} is invalid:\n${lines.join("\n")}`);
  }
  const inv = data as { defaults?: HostEntry; hosts: HostEntry[] };
  const base = dirname(resolve(file));
  const hosts = inv.hosts.map((h, i) => {
    const merged: HostEntry = { ...inv.defaults, ...h };
    if (merged.identity && !isAbsolute(merged.identity)) merged.identity = resolve(base, merged.identity);
    merged.name ??= merged.ssh ? `${merged.ssh}:${merged.prefix}` : merged.prefix;
    void i;
    return merged;
  });
  const names = new Set<string>();
  for (const h of hosts) {
    if (names.has(h.name!)) throw new DeployUsageError(`the inventory ${file} names the host "${h.name}" twice: give each host a unique name`);
    names.add(h.name!);
  }
  return hosts;
}

type Values = { [K in keyof typeof COMMON]?: (typeof COMMON)[K] extends { multiple: true } ? string[] : (typeof COMMON)[K] extends { type: "boolean" } ? boolean : string };

/** Run `fn` over the hosts, then end their shared SSH connections and remove the socket folder. */
async function withHosts<T>(values: Values, positionalTargets: string[], fn: (hosts: HostConfig[]) => Promise<T>): Promise<T> {
  const controlDir = await mkdtemp(join(tmpdir(), "cdn-ssh-"));
  try {
    const hosts = await resolveHosts(values, positionalTargets, controlDir);
    try {
      return await fn(hosts);
    } finally {
      await Promise.all(hosts.map((h) => h.transport.close()));
    }
  } finally {
    await rm(controlDir, { recursive: true, force: true });
  }
}

async function resolveHosts(values: Values, positionalTargets: string[], controlDir: string): Promise<HostConfig[]> {
  const tos = [...(values.to ?? []), ...positionalTargets];
  if (values.inventory && tos.length) throw new DeployUsageError("use either --to or --inventory, not both");
  if (!values.inventory && !tos.length) throw new DeployUsageError("say where to deploy: --to <prefix | [user@]host:/prefix> or --inventory <file>");
  const entries = values.inventory ? await loadInventory(values.inventory) : tos.map(parseTarget);
  const cliPort = values["ssh-port"] === undefined ? undefined : intOption("ssh-port", values["ssh-port"], 22, 1, 65535);
  const keep = intOption("keep", values.keep, 5, 1, 100);
  if (values["host-env-file"] !== undefined && !values["host-env-file"].startsWith("/")) throw new DeployUsageError(`--host-env-file must be an absolute path on the host, got "${values["host-env-file"]}"`);
  for (const u of values["health-url"] ?? []) if (!/^https?:\/\/[^/]/.test(u)) throw new DeployUsageError(`--health-url must be an http(s) URL, got "${u}"`);
  for (const o of values["ssh-option"] ?? []) if (!/^[A-Za-z]+=/.test(o)) throw new DeployUsageError(`--ssh-option must be Key=Value, got "${o}"`);
  const localNginx = entries.some((e) => !e.ssh) && !values.nginx ? (await findNginx())?.path : undefined;
  return entries.map((e) => ({
    name: e.name!,
    transport: e.ssh
      ? sshTransport({ destination: e.ssh, port: e.port ?? cliPort, identity: e.identity ?? values.identity, options: e.sshOptions ?? values["ssh-option"], controlDir })
      : localTransport(),
    prefix: e.prefix!,
    nginx: e.nginx ?? values.nginx ?? (e.ssh ? "nginx" : (localNginx ?? "nginx")),
    reload: e.reload ?? values["reload-cmd"],
    health: e.health ?? values["health-url"] ?? [],
    envFile: e.envFile ?? values["host-env-file"],
    start: e.start ?? values.start ?? false,
    keep: e.keep ?? keep,
    policyEnv: e.policyEnv,
  }));
}

const progress = (host: string, line: string) => process.stderr.write(`[${host}] ${line}\n`);

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n") + "\n";
}

function summary(outcomes: HostOutcome[], json: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify({ hosts: outcomes }, null, 2) + "\n");
    return;
  }
  const rows = [["host", "result", "release", "previous", "time"]];
  for (const o of outcomes) rows.push([o.host, o.result, o.release ?? "-", o.previous ?? "-", o.ms ? `${(o.ms / 1000).toFixed(1)}s` : "-"]);
  process.stdout.write(table(rows));
  for (const o of outcomes) if (o.message && o.result !== "deployed") process.stderr.write(`\n[${o.host}] ${o.result}: ${o.message}\n`);
}

export async function runDeploy(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { ...COMMON, target: { type: "string" }, canary: { type: "string" }, parallel: { type: "string" } },
  });
  if (values.help) {
    process.stdout.write(DEPLOY_HELP + "\n");
    return 0;
  }
  if (positionals.length !== 1) throw new DeployUsageError("deploy takes exactly one policy file or bundle folder");
  const source = positionals[0]!;
  const canary = intOption("canary", values.canary, 0, 0, 10_000);
  const parallel = intOption("parallel", values.parallel, 4, 1, 256);
  const healthTimeoutMs = intOption("health-timeout", values["health-timeout"], 10, 1, 3600) * 1000;
  const requested = values.target ?? "auto";
  if (requested !== "auto" && !TARGET_NAMES.includes(requested as Target)) throw new DeployUsageError(`unknown target "${requested}" (use auto, ${TARGET_NAMES.join(" or ")})`);
  return withHosts(values, [], (hosts) => deployTo(hosts, source, values, requested, { canary, parallel, healthTimeoutMs }));
}

async function deployTo(
  hosts: HostConfig[],
  source: string,
  values: Values,
  requested: string,
  o: { canary: number; parallel: number; healthTimeoutMs: number },
): Promise<number> {
  const { canary, parallel, healthTimeoutMs } = o;
  const fromDir = await isDirectory(source);
  let target = requested as Target;
  if (!fromDir && requested === "auto") {
    const picked = autoTarget(await findNginx());
    target = picked.target;
    process.stderr.write(`target ${picked.target}: ${picked.reason}\n`);
  }
  // One bundle for the fleet, except for hosts whose inventory entry sets policyEnv (built for them).
  const cache = new Map<string, { bundle: DeployBundle; tar: Buffer }>();
  const bundleFor = async (h: HostConfig) => {
    const key = JSON.stringify(h.policyEnv ?? {});
    let b = cache.get(key);
    if (!b) {
      if (fromDir && h.policyEnv) throw new SourceError(`host ${h.name} sets policyEnv, which needs a policy, not a bundle folder`);
      const bundle = fromDir ? await bundleFromDir(source) : await bundleFromPolicy(source, target, h.policyEnv);
      b = { bundle, tar: await tarBundle(bundle) };
      cache.set(key, b);
    }
    return b;
  };
  try {
    const first = await bundleFor(hosts[0]!);
    process.stderr.write(`bundle: policy "${first.bundle.manifest.policy}", ${first.bundle.files.size} files, manifest sha256 ${first.bundle.sha.slice(0, 12)}\n`);
  } catch (e) {
    if (e instanceof SourceError) {
      process.stderr.write(`error: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  // A first Ctrl-C (or SIGTERM) lets the hosts in flight finish their checks (and rollbacks) and starts
  // no other host; a second one aborts at once.
  const abort = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (abort.signal.aborted) process.exit(130);
    abort.abort();
    process.stderr.write(`${sig}: finishing the hosts in flight (with their checks and rollbacks), starting no other; again to abort now\n`);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  let outcomes: HostOutcome[];
  try {
    outcomes = await rollout(
      hosts,
      async (h) => {
        try {
          const { bundle, tar } = await bundleFor(h);
          return await deployHost(h, bundle, { healthTimeoutMs, progress, tar });
        } catch (e) {
          return { host: h.name, result: "failed", ms: 0, message: (e as Error).message };
        }
      },
      { canary, parallel, progress, signal: abort.signal },
    );
  } finally {
    process.removeListener("SIGINT", onSignal);
    process.removeListener("SIGTERM", onSignal);
  }
  summary(outcomes, values.json ?? false);
  return outcomes.every((o) => o.result === "deployed") ? 0 : 1;
}

export async function runRollback(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: false, options: { ...COMMON, release: { type: "string" }, parallel: { type: "string" } } });
  void positionals;
  if (values.help) {
    process.stdout.write(ROLLBACK_HELP + "\n");
    return 0;
  }
  const healthTimeoutMs = intOption("health-timeout", values["health-timeout"], 10, 1, 3600) * 1000;
  const parallel = intOption("parallel", values.parallel, 4, 1, 256);
  if (values.release !== undefined && !/^[0-9A-Za-z][0-9A-Za-z.-]*$/.test(values.release)) throw new DeployUsageError(`--release must be a release folder name, got "${values.release}"`);
  return withHosts(values, [], async (hosts) => {
    const outcomes = await rollout(hosts, (h) => rollbackHost(h, { healthTimeoutMs, progress, to: values.release }), { canary: 0, parallel, progress });
    summary(outcomes, values.json ?? false);
    return outcomes.every((o) => o.result === "deployed") ? 0 : 1;
  });
}

function formatUptime(s: number | undefined): string {
  if (s === undefined) return "-";
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return d ? `${d}d${h}h` : h ? `${h}h${m}m` : `${m}m${s % 60}s`;
}

export async function runStatus(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: COMMON });
  if (values.help) {
    process.stdout.write(STATUS_HELP + "\n");
    return 0;
  }
  const all: HostStatus[] = await withHosts(values, positionals, (hosts) => Promise.all(hosts.map((h) => statusHost(h))));
  if (values.json) process.stdout.write(JSON.stringify({ hosts: all }, null, 2) + "\n");
  else {
    const rows = [["host", "release", "policy", "tool", "target", "sha256", "master", "uptime"]];
    for (const s of all) {
      rows.push([s.host, s.current ?? "-", s.manifest?.policy ?? "-", s.manifest?.toolVersion ?? "-", s.manifest?.target ?? "-", s.manifest?.sha256.slice(0, 12) ?? "-", s.pid ? String(s.pid) : "not running", formatUptime(s.uptimeSeconds)]);
    }
    process.stdout.write(table(rows));
    for (const s of all) {
      if (s.error) process.stderr.write(`[${s.host}] error: ${s.error}\n`);
      else if (s.pid && s.masterPrefix && s.masterPrefix.replace(/\/+$/, "") !== `${s.prefix}/current`) {
        process.stderr.write(`[${s.host}] warning: the master runs with -p ${s.masterPrefix}, not ${s.prefix}/current/: a deploy's reload will not move it\n`);
      }
    }
  }
  return all.every((s) => !s.error && s.pid) ? 0 : 1;
}
