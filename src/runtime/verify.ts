/**
 * `cdn-build build --verify`: checks a staged bundle before it is installed, as far as this machine can.
 *
 * 1. `nginx -t` on the bundle;
 * 2. as root: the workers' user (the bundle's `user` directive, else nginx's default `nobody`) can traverse
 *    every folder above the install path and read the bundle (a root master reads nginx.conf, but the workers
 *    load lua/ themselves);
 * 3. a smoke boot: the bundle started as it will run (root master, unprivileged workers), on a free loopback
 *    port, with one request to its health endpoint when it has one.
 *
 * Bounded in time: nginx -t 30 s, boot 10 s, request 5 s, stop 5 s.
 */
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { execa } from "execa";
import { request } from "undici";
import { freePort, startBundle, testConfig, type NginxBinary } from "./nginx.js";

export interface VerifyOptions {
  bin: NginxBinary;
  /** Where the bundle is going to be installed: its ancestors (and its existing folders) are what workers traverse. */
  outDir: string;
  /** Path of the bundle's health endpoint, requested by the smoke boot. */
  healthPath?: string;
  /** Boot the bundle on a free loopback port. @default true */
  boot?: boolean;
}

export interface VerifyReport {
  ok: boolean;
  /** What failed, one finding per entry, each saying how to fix it. */
  problems: string[];
  /** What was checked (or could not be), for the user to read. */
  notes: string[];
}

/** The worker identity of a root master: uid, gids and a name to print. */
export interface WorkerUser {
  name: string;
  uid: number;
  gids: number[];
}

/** `user NAME [GROUP];` of a rendered nginx.conf, else nginx's default (`nobody`). */
export function workerUserName(conf: string): { user: string; group?: string } {
  const m = /^\s*user\s+([^\s;]+)(?:\s+([^\s;]+))?\s*;/m.exec(conf);
  return m ? { user: m[1]!, group: m[2] } : { user: "nobody" };
}

async function lookupUser(user: string, group?: string): Promise<WorkerUser | undefined> {
  const uid = await execa("id", ["-u", user], { reject: false });
  const gids = await execa("id", ["-G", user], { reject: false });
  if (uid.exitCode !== 0 || gids.exitCode !== 0) return undefined;
  const all = gids.stdout.split(/\s+/).filter(Boolean).map(Number);
  if (group) {
    const g = await execa("getent", ["group", group], { reject: false });
    const gid = Number(g.stdout.split(":")[2]);
    if (g.exitCode === 0 && Number.isInteger(gid)) all.push(gid);
  }
  return { name: user, uid: Number(uid.stdout.trim()), gids: all };
}

/** Whether `who` has `bit` (4 read, 1 execute) on a file with this stat, by the owner/group/other rule. */
export function allowed(st: { mode: number; uid: number; gid: number }, who: WorkerUser, bit: 4 | 1): boolean {
  if (who.uid === 0) return true;
  const mode = st.mode & 0o777;
  if (st.uid === who.uid) return ((mode >> 6) & bit) !== 0;
  if (who.gids.includes(st.gid)) return ((mode >> 3) & bit) !== 0;
  return (mode & bit) !== 0;
}

const octal = (mode: number) => (mode & 0o7777).toString(8).padStart(4, "0");

async function describeOwner(st: { uid: number }): Promise<string> {
  const r = await execa("id", ["-nu", String(st.uid)], { reject: false });
  return r.exitCode === 0 ? r.stdout.trim() : String(st.uid);
}

/**
 * Folders and files the workers could not reach, as messages ("/root is 0700 (owner root): ..."). `stage` is
 * the staged bundle; `out` the install path, whose existing folders keep their modes.
 */
export async function workerAccessProblems(stage: string, out: string, who: WorkerUser): Promise<string[]> {
  const problems: string[] = [];
  const blocked = async (p: string, st: { mode: number; uid: number; gid: number }, what: string) => {
    problems.push(`${p} is ${octal(st.mode)} (owner ${await describeOwner(st)}): workers running as ${who.name} cannot ${what} it`);
  };

  // the folders above the install path
  const ancestors: string[] = [];
  for (let d = path.dirname(out); ; d = path.dirname(d)) {
    ancestors.unshift(d);
    if (path.dirname(d) === d) break;
  }
  for (const a of ancestors) {
    const st = await fs.stat(a).catch(() => undefined);
    if (st && !allowed(st, who, 1)) await blocked(a, st, "traverse");
  }

  // the bundle: folders as they will be (existing ones in `out` keep their modes), files as written
  const walk = async (rel: string): Promise<void> => {
    const staged = await fs.stat(path.join(stage, rel));
    const installed = await fs.stat(path.join(out, rel)).catch(() => undefined);
    const shown = path.join(out, rel);
    if (staged.isDirectory()) {
      const st = installed?.isDirectory() ? installed : staged;
      if (!allowed(st, who, 1)) return blocked(shown, st, "traverse");
      if (rel !== "" && !rel.includes(path.sep) && ["logs", "cache", "temp"].includes(rel)) return; // nginx's own
      for (const name of (await fs.readdir(path.join(stage, rel))).sort()) await walk(path.join(rel, name));
    } else if (staged.isFile()) {
      if (!allowed(staged, who, 4)) return blocked(shown, staged, "read");
      if (installed?.isFile() && !allowed(installed, who, 4)) return blocked(shown, installed, "read");
    }
  };
  await walk("");
  return problems;
}

/** nginx.conf for the smoke boot: the first `listen` moved to 127.0.0.1:<port>, the others dropped. */
export function smokeConf(conf: string, port: number): string {
  let first = true;
  return conf.replace(/^([ \t]*)listen[ \t][^;\n]*;[ \t]*$/gm, (_line, indent: string) => {
    if (!first) return `${indent}# (listen dropped for the verify smoke boot)`;
    first = false;
    return `${indent}listen 127.0.0.1:${port};`;
  });
}

/** error.log entries that mean the bundle is broken (a Lua file that does not load or run, a failed syscall). */
const FATAL = /\[(alert|crit|emerg)\]|failed to (?:load|run)|runtime error|stack traceback|Permission denied/;

/** error.log entries (an entry is a dated line and its continuation lines, e.g. a Lua stack traceback). */
function logEntries(log: string): string[] {
  const entries: string[] = [];
  for (const line of log.split("\n")) {
    if (/^\d{4}\/\d{2}\/\d{2} /.test(line) || entries.length === 0) entries.push(line);
    else entries[entries.length - 1] += `\n${line}`;
  }
  return entries.filter((e) => e.trim() !== "");
}

async function smokeBoot(stage: string, opts: VerifyOptions, problems: string[], notes: string[]): Promise<void> {
  const conf = path.join(stage, "nginx.conf");
  const port = await freePort();
  await fs.writeFile(conf, smokeConf(await fs.readFile(conf, "utf8"), port));
  let edge;
  try {
    edge = await startBundle(stage, { port, bin: opts.bin, readyTimeoutMs: 10_000 });
  } catch (err) {
    problems.push(`the bundle did not boot: ${(err as Error).message}`);
    return;
  }
  try {
    if (opts.healthPath) {
      try {
        const res = await request(`${edge.baseUrl}${opts.healthPath}`, { headersTimeout: 5000, bodyTimeout: 5000, headers: { connection: "close" } });
        await res.body.dump();
        if (res.statusCode !== 200) problems.push(`GET ${opts.healthPath} answered ${res.statusCode} (expected 200)`);
        else notes.push(`smoke boot: GET ${opts.healthPath} -> 200`);
      } catch (err) {
        problems.push(`GET ${opts.healthPath} got no answer: ${(err as Error).message}`);
      }
    } else {
      notes.push("smoke boot: the policy has no health endpoint, so only the start of nginx was checked");
    }
  } finally {
    await edge.stop();
  }
  const bad = logEntries(await edge.errorLog()).filter((e) => FATAL.test(e));
  if (bad.length) problems.push(`error.log of the smoke boot:\n${bad.slice(0, 5).join("\n")}`);
}

/** Runs every check on the staged bundle in `stage`. Never changes `outDir`. */
export async function verifyBundle(stage: string, opts: VerifyOptions): Promise<VerifyReport> {
  const problems: string[] = [];
  const notes: string[] = [];
  const t = await testConfig(stage, opts.bin);
  if (!t.ok) return { ok: false, problems: [`nginx -t failed:\n${t.output}`], notes };
  notes.push(`nginx -t: ok${t.output ? `\n${t.output}` : ""}`);

  if (typeof process.geteuid === "function" && process.geteuid() === 0) {
    const { user, group } = workerUserName(await fs.readFile(path.join(stage, "nginx.conf"), "utf8"));
    const who = await lookupUser(user, group);
    if (!who) problems.push(`the workers' user "${user}" does not exist on this machine (set workers.user to an existing user)`);
    else {
      const found = await workerAccessProblems(stage, path.resolve(opts.outDir), who);
      problems.push(...found);
      if (!found.length) notes.push(`workers (${who.name}) can read the bundle and traverse the folders above it`);
    }
  } else {
    notes.push("not root: nginx will run its workers as this user, so worker access was not checked");
  }

  if (opts.boot !== false && problems.length === 0) await smokeBoot(stage, opts, problems, notes);
  return { ok: problems.length === 0, problems, notes };
}
