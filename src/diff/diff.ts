/**
 * `cdn-build diff`: what changed between two policies or two bundles, by area (origins, cache, gates,
 * rules, ...), each change with its path, and a risk note for every change that empties state on reload
 * (a shared memory zone whose size changed is created anew by nginx).
 */
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { execa } from "execa";
import { parseTarget } from "../deploy/cli.js";
import { sshTransport, type SshOptions } from "../deploy/transport.js";
import { compile } from "../compile.js";
import { bundleFromDir, isDirectory, type Manifest } from "../deploy/source.js";
import type { Target } from "../ir/targets.js";
import { loadPolicy } from "../load/index.js";
import { formatDiagnostic, hasErrors } from "../validate/diagnostic.js";
import { parseLuaData } from "./lua-data.js";

export class DiffInputError extends Error {}

export interface Side {
  label: string;
  kind: "policy" | "bundle";
  /** The policy as written (policies only). */
  policy?: unknown;
  /** The policy data the runtime reads (bundles; undefined when too large to read back). */
  data?: unknown;
  manifest: Manifest;
  conf: string;
}

export interface Change {
  area: string;
  path: string;
  kind: "added" | "removed" | "changed";
  before?: unknown;
  after?: unknown;
}

export interface Risk {
  /** The shared memory zone, e.g. `lua_shared_dict cdn_ram` or `keys_zone cdn_disk`. */
  zone: string;
  before?: string;
  after?: string;
  note: string;
}

export interface DiffResult {
  a: string;
  b: string;
  /** What was compared: the policies as written, or the bundles' policy data. */
  compared: "policy" | "bundle";
  changes: Change[];
  risks: Risk[];
  notes: string[];
  /** Bundle files whose sha256 differs (bundles only). */
  filesChanged: string[];
}

export interface DiffOptions {
  target?: Target;
  /** SSH client options for a side given as `[user@]host:/prefix`. */
  ssh?: Omit<SshOptions, "destination">;
}

/** `[user@]host:/prefix`: the destination and prefix, else undefined (a local path). */
function remoteOf(input: string): { destination: string; prefix: string } | undefined {
  if (input.startsWith("/") || input.startsWith(".") || !input.includes(":")) return undefined;
  try {
    const t = parseTarget(input);
    return t.ssh ? { destination: t.ssh, prefix: t.prefix! } : undefined;
  } catch (e) {
    throw new DiffInputError((e as Error).message.replace(/^--to /, ""));
  }
}

/** The current release of a deploy prefix on a host, fetched over SSH into a temporary folder. */
async function fetchRelease(input: string, remote: { destination: string; prefix: string }, ssh: DiffOptions["ssh"], read: (dir: string) => Promise<Side>): Promise<Side> {
  const r = await sshTransport({ ...ssh, destination: remote.destination }).runBinary(["pack", remote.prefix]);
  if (r.code !== 0) throw new DiffInputError(`${input}: ${r.stderr.trim() || `exit code ${r.code}`}`);
  const dir = await mkdtemp(join(tmpdir(), "cdn-diff-"));
  try {
    const x = await execa("tar", ["-xf", "-", "-C", dir], { input: r.stdout, reject: false });
    if (x.exitCode !== 0) throw new DiffInputError(`${input}: the release could not be unpacked: ${x.stderr}`);
    return { ...(await read(dir)), label: input };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function loadSide(input: string, target?: Target, ssh?: DiffOptions["ssh"]): Promise<Side> {
  const remote = remoteOf(input);
  if (remote) return fetchRelease(input, remote, ssh, (dir) => loadSide(dir));
  let path = resolve(input);
  // a deploy prefix: its current release
  if ((await isDirectory(path)) && !(await stat(join(path, "manifest.json")).catch(() => undefined)) && (await isDirectory(join(path, "current")))) {
    path = join(path, "current");
  }
  if (await isDirectory(path)) {
    let b;
    try {
      b = await bundleFromDir(path);
    } catch (e) {
      throw new DiffInputError((e as Error).message);
    }
    const dataText = b.files.get("lua/policy_data.lua")?.toString("utf8");
    let data: unknown;
    try {
      data = dataText === undefined ? undefined : parseLuaData(dataText);
    } catch (e) {
      throw new DiffInputError(`${input}: ${(e as Error).message}`);
    }
    return { label: input, kind: "bundle", data, manifest: b.manifest, conf: b.files.get("nginx.conf")?.toString("utf8") ?? "" };
  }
  try {
    await readFile(path);
  } catch (e) {
    throw new DiffInputError(`cannot read ${input}: ${(e as Error).message}`);
  }
  const { loaded, diagnostics } = await loadPolicy(path);
  const result = loaded && !hasErrors(diagnostics) ? compile(loaded.value, { target: target ?? "openresty" }) : undefined;
  const all = [...diagnostics, ...(result?.diagnostics ?? [])];
  if (!loaded || !result?.bundle || hasErrors(all)) {
    throw new DiffInputError(`the policy ${input} is invalid:\n${all.filter((d) => d.severity === "error").map(formatDiagnostic).join("\n")}`);
  }
  const files = result.bundle.files;
  const data = parseLuaData(files.get("lua/policy_data.lua")!);
  return { label: input, kind: "policy", policy: loaded.value, data, manifest: JSON.parse(files.get("manifest.json")!) as Manifest, conf: files.get("nginx.conf")! };
}

const GATES = new Set(["originSecret", "ipRules", "rateLimit", "waf", "jwt", "signedUrls", "origin-secret", "ip-rules", "rate-limit", "signed-urls"]);

function areaOf(path: string): string {
  const seg = path.split("/").filter(Boolean);
  const top = seg[0] === "features" || seg[0] === "upstreams" ? (seg[0] === "upstreams" ? "origins" : seg[1] ?? "") : (seg[0] ?? "");
  if (top === "origins" || top === "defaultOrigin" || top === "origin-shield" || top === "origins-data") return "origins";
  if (GATES.has(top)) return "gates";
  if (top === "rules") return "rules";
  if (top === "cache" || top === "purge") return top;
  if (top === "headers" || top === "health" || top === "accessLog" || top === "access-log") return "headers";
  return top === "" ? "policy" : top;
}

const esc = (k: string) => k.replace(/~/g, "~0").replace(/\//g, "~1");
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Arrays of objects that all carry a unique string `name` (rules, WAF rules...) are matched by name. */
function byName(arr: unknown[]): Map<string, { i: number; v: unknown }> | undefined {
  const m = new Map<string, { i: number; v: unknown }>();
  for (const [i, v] of arr.entries()) {
    if (!isObj(v) || typeof v.name !== "string" || m.has(v.name)) return undefined;
    m.set(v.name, { i, v });
  }
  return m;
}

function walk(a: unknown, b: unknown, path: string, out: Change[]): void {
  if (JSON.stringify(a) === JSON.stringify(b)) return;
  const add = (kind: Change["kind"], p: string, before?: unknown, after?: unknown) => out.push({ area: areaOf(p), path: p || "/", kind, before, after });
  if (isObj(a) && isObj(b)) {
    for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
      const p = `${path}/${esc(k)}`;
      if (!(k in a) || a[k] === undefined) add("added", p, undefined, b[k]);
      else if (!(k in b) || b[k] === undefined) add("removed", p, a[k], undefined);
      else walk(a[k], b[k], p, out);
    }
    return;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    const na = byName(a);
    const nb = byName(b);
    if (na && nb && (na.size || nb.size)) {
      for (const [name, { i, v }] of na) if (!nb.has(name)) add("removed", `${path}/${i} (${name})`, v, undefined);
      for (const [name, { i, v }] of nb) {
        const old = na.get(name);
        if (!old) add("added", `${path}/${i} (${name})`, undefined, v);
        else {
          if (old.i !== i) add("changed", `${path}/${i} (${name}): position`, old.i, i);
          walk(old.v, v, `${path}/${i}`, out);
        }
      }
      return;
    }
    const n = Math.max(a.length, b.length);
    for (let i = 0; i < n; i++) {
      if (i >= a.length) add("added", `${path}/${i}`, undefined, b[i]);
      else if (i >= b.length) add("removed", `${path}/${i}`, a[i], undefined);
      else walk(a[i], b[i], `${path}/${i}`, out);
    }
    return;
  }
  add("changed", path, a, b);
}

/** The shared memory zones of a generated nginx.conf: name -> size as written. */
export function zonesOf(conf: string): Map<string, string> {
  const zones = new Map<string, string>();
  for (const m of conf.matchAll(/^\s*lua_shared_dict\s+(\S+)\s+(\S+);/gm)) zones.set(`lua_shared_dict ${m[1]}`, m[2]!);
  for (const m of conf.matchAll(/keys_zone=([^:\s]+):([^\s;]+)/g)) zones.set(`keys_zone ${m[1]}`, m[2]!);
  return zones;
}

/** The upstream blocks of a generated nginx.conf: name -> its lines. */
function upstreamsOf(conf: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const m of conf.matchAll(/^\s*upstream\s+(\S+)\s*\{([^}]*)\}/gm)) {
    out[m[1]!] = m[2]!.split("\n").map((l) => l.trim()).filter(Boolean);
  }
  return out;
}

/** What emptying each zone costs, from docs/cache.md, docs/purge.md and docs/gates.md. */
const ZONE_NOTES: Record<string, string> = {
  "lua_shared_dict cdn_meta": "cache metadata is emptied: each cached object is read back from its disk file on first use (one extra read), the Vary index is rebuilt",
  "lua_shared_dict cdn_ram": "the RAM tier is emptied: hot objects come from disk until they are hot again",
  "lua_shared_dict cdn_markers": "purge markers are recreated and replayed from the journal in the cache state folder (nothing purged comes back; the replay runs at the reload)",
  "lua_shared_dict cdn_purge": "the purge index is emptied: purges still retire everything (markers), but counts and prefix purges only see objects stored or read back after the reload",
  "lua_shared_dict cdn_ratelimit": "rate-limit buckets are emptied: every client starts again with a full burst",
  "lua_shared_dict cdn_experiments": "A/B split state is emptied",
  "keys_zone cdn_disk": "nginx's disk cache key zone is recreated: objects count as misses until nginx's cache loader has re-read the cache folder",
};

function risks(a: Side, b: Side): Risk[] {
  const za = zonesOf(a.conf);
  const zb = zonesOf(b.conf);
  const out: Risk[] = [];
  for (const [zone, before] of za) {
    const after = zb.get(zone);
    const what = ZONE_NOTES[zone] ?? "its contents are lost";
    if (after === undefined) out.push({ zone, before, note: `removed on reload: ${what.replace(/ is (emptied|recreated)/, " is dropped")}` });
    else if (after !== before) out.push({ zone, before, after, note: `size ${before} -> ${after}: nginx creates the zone anew on reload; ${what}` });
  }
  return out;
}

export async function diffInputs(aPath: string, bPath: string, opts: DiffOptions = {}): Promise<DiffResult> {
  let a = await loadSide(aPath, opts.target, opts.ssh);
  let b = await loadSide(bPath, opts.target, opts.ssh);
  // A policy against a bundle: compile the policy for the bundle's target and compare bundles.
  if (a.kind !== b.kind && !opts.target) {
    const t = (a.kind === "bundle" ? a : b).manifest.target as Target;
    if (a.kind === "policy") a = await loadSide(aPath, t, opts.ssh);
    else b = await loadSide(bPath, t, opts.ssh);
  }
  const notes: string[] = [];
  const changes: Change[] = [];
  let filesChanged: string[] = [];
  const compared = a.kind === "policy" && b.kind === "policy" ? "policy" : "bundle";
  if (compared === "policy") walk(a.policy, b.policy, "", changes);
  else {
    for (const k of ["policy", "target", "toolVersion"] as const) {
      if (a.manifest[k] !== b.manifest[k]) changes.push({ area: "bundle", path: `manifest.json: ${k}`, kind: "changed", before: a.manifest[k], after: b.manifest[k] });
    }
    walk(upstreamsOf(a.conf), upstreamsOf(b.conf), "/upstreams", changes);
    if (a.data === undefined || b.data === undefined) notes.push("the policy data of a bundle is split into functions (a very large policy): compared by file hashes only");
    else walk(a.data, b.data, "", changes);
    const fa = a.manifest.files;
    const fb = b.manifest.files;
    const files = [...new Set([...Object.keys(fa), ...Object.keys(fb)])].filter((f) => fa[f]?.sha256 !== fb[f]?.sha256).sort();
    filesChanged = files;
    if (files.length) notes.push(`${files.length} bundle file${files.length > 1 ? "s" : ""} differ: ${files.slice(0, 8).join(", ")}${files.length > 8 ? ", ..." : ""}`);
  }
  return { a: aPath, b: bPath, compared, changes, risks: risks(a, b), notes, filesChanged };
}

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? "undefined" : s.length > 100 ? `${s.slice(0, 97)}...` : s;
}

export function formatDiff(d: DiffResult): string {
  const lines: string[] = [`--- ${d.a}`, `+++ ${d.b}`];
  if (d.compared === "bundle") lines.push("(bundles: paths are into the runtime's policy data and nginx.conf's upstreams)");
  const order = ["bundle", "origins", "cache", "purge", "gates", "rules", "headers"];
  const rank = (a: string) => (order.includes(a) ? order.indexOf(a) : order.length);
  const areas = [...new Set(d.changes.map((c) => c.area))].sort((x, y) => rank(x) - rank(y) || (x < y ? -1 : x > y ? 1 : 0));
  for (const area of areas) {
    lines.push(`${area}:`);
    for (const c of d.changes.filter((x) => x.area === area)) {
      if (c.kind === "added") lines.push(`  + ${c.path}: ${show(c.after)}`);
      else if (c.kind === "removed") lines.push(`  - ${c.path}: ${show(c.before)}`);
      else lines.push(`  ~ ${c.path}: ${show(c.before)} -> ${show(c.after)}`);
    }
  }
  for (const r of d.risks) lines.push(`risk: ${r.zone}: ${r.note}`);
  for (const n of d.notes) lines.push(`note: ${n}`);
  const n = d.changes.length;
  if (n) lines.push(`${n} change${n > 1 ? "s" : ""}${d.risks.length ? `, ${d.risks.length} dropping state on reload` : ""}`);
  else lines.push(changed(d) ? "no policy change, but the bundles differ (see the notes)" : "no change");
  return lines.join("\n") + "\n";
}


/** Whether anything differs (what the exit code says). */
export function changed(d: DiffResult): boolean {
  return d.changes.length > 0 || d.risks.length > 0 || d.filesChanged.length > 0;
}
