import { randomBytes } from "node:crypto";
import { lstat, mkdir, readdir, readFile, rename, rm, rmdir, stat, writeFile } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, normalize, resolve, sep } from "node:path";
import type { Bundle } from "./index.js";

/**
 * Modes asked of the OS; the process umask applies, exactly as for `mkdir` and a shell redirect
 * (umask 022 gives dirs 0755 and files 0644, so the workers of a root master can read the bundle).
 */
const DIR_MODE = 0o777;
const FILE_MODE = 0o666;

/** The marker of a complete bundle: written last. */
const MANIFEST = "manifest.json";

/** Writes a bundle into `dir` (created if missing), with `mkdir`/umask modes. For a new or empty dir. */
export async function writeBundleTo(bundle: Bundle, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: DIR_MODE });
  for (const d of bundle.dirs) await mkdir(join(dir, d), { recursive: true, mode: DIR_MODE });
  for (const [path, text] of bundle.files) {
    const file = join(dir, path);
    await mkdir(dirname(file), { recursive: true, mode: DIR_MODE });
    await writeFile(file, text, { mode: FILE_MODE });
  }
}

async function exists(p: string): Promise<boolean> {
  return lstat(p).then(
    () => true,
    () => false,
  );
}

const suffix = () => randomBytes(6).toString("hex");

/** The files listed by the manifest of the bundle in `out`, or undefined when there is none of ours. */
async function bundleFiles(out: string): Promise<string[] | undefined> {
  try {
    const manifest = JSON.parse(await readFile(join(out, MANIFEST), "utf8"));
    if (manifest?.generatedBy !== "cdn-build") return undefined;
    return Object.keys(manifest.files ?? {});
  } catch {
    return undefined;
  }
}

/** Names of our temp files (`.<name>.tmp-<12 hex>`), left behind only by an interrupted build. */
const TEMP_NAME = /^\..+\.tmp-[0-9a-f]{12}$/;

/** Bundle-relative paths of every non-directory entry under `dir`. */
async function entriesUnder(dir: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await entriesUnder(dir, p)));
    else out.push(p);
  }
  return out;
}

/**
 * Refuses to replace a directory that is not a cdn-build bundle (no manifest.json of ours) and not empty, so
 * `--out .` or a typo can never delete or overwrite a user's files. A folder holding nothing but files of the
 * new bundle (a first install that was interrupted before its manifest) is accepted. Returns the previous
 * bundle's files.
 */
async function assertReplaceable(out: string, bundle: Bundle): Promise<string[]> {
  if (!(await exists(out))) return [];
  if (!(await stat(out)).isDirectory()) throw new Error(`${out} exists and is not a directory`);
  const files = await bundleFiles(out);
  if (files) return files;
  const foreign = (await entriesUnder(out)).filter((p) => !bundle.files.has(p) && !TEMP_NAME.test(basename(p)));
  if (foreign.length === 0) return [];
  throw new Error(`${out} is not empty and is not a cdn-build bundle (no manifest.json); refusing to replace it`);
}

/** A bundle-relative path that stays inside the bundle (manifests on disk are input, not trusted). */
function isInside(rel: string): boolean {
  if (typeof rel !== "string" || rel === "" || isAbsolute(rel)) return false;
  const n = normalize(rel);
  return n !== ".." && !n.startsWith(`..${sep}`) && n !== ".";
}

/** Staging folder next to `out`, made by a plain `mkdir` (umask modes, like the bundle it stands for). */
async function makeStage(out: string): Promise<string> {
  for (;;) {
    const dir = join(dirname(out), `.${basename(out)}.tmp-${suffix()}`);
    try {
      await mkdir(dir, { mode: DIR_MODE });
      return dir;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  }
}

/** Everything in `out` that would stop the new files from being put in place (checked before the swap). */
async function obstacles(out: string, bundle: Bundle): Promise<string[]> {
  const bad = new Set<string>();
  const isDir = async (p: string) => (await stat(p).catch(() => undefined))?.isDirectory();
  for (const d of bundle.dirs) {
    const p = join(out, d);
    if ((await exists(p)) && !(await isDir(p))) bad.add(`${p} is not a directory`);
  }
  for (const path of bundle.files.keys()) {
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i++) {
      const p = join(out, ...parts.slice(0, i));
      if ((await exists(p)) && !(await isDir(p))) bad.add(`${p} is not a directory`);
    }
    const target = join(out, path);
    if (await isDir(target)) bad.add(`${target} is a directory`);
  }
  return [...bad];
}

/** Puts `text` at `target` atomically: a temp file in the same folder, then rename over the target. */
async function replaceFile(target: string, text: string): Promise<void> {
  const current = await readFile(target, "utf8").catch(() => undefined);
  if (current === text) return; // unchanged: leave the file (and its inode) alone
  const tmp = join(dirname(target), `.${basename(target)}.tmp-${suffix()}`);
  await writeFile(tmp, text, { mode: FILE_MODE, flag: "wx" });
  try {
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Removes files of the previous bundle that the new one no longer has, then the folders they leave empty. */
async function removeStale(out: string, bundle: Bundle, previous: string[]): Promise<void> {
  const keep = new Set([...bundle.files.keys(), MANIFEST]);
  const runtime = new Set(bundle.dirs);
  for (const rel of previous) {
    if (keep.has(rel) || !isInside(rel) || runtime.has(rel.split("/")[0]!)) continue;
    const file = join(out, rel);
    const st = await lstat(file).catch(() => undefined);
    if (!st || st.isDirectory()) continue;
    await rm(file, { force: true });
    for (let d = dirname(file); d.startsWith(out + sep); d = dirname(d)) {
      if (!(await rmdir(d).then(() => true, () => false))) break; // not empty (or gone): stop
    }
  }
  // temp files of an interrupted earlier build, in the bundle's own folders
  const folders = new Set([".", ...[...bundle.files.keys()].map((p) => dirname(p))]);
  for (const f of folders) {
    const names = await readdir(join(out, f)).catch(() => [] as string[]);
    for (const n of names) if (TEMP_NAME.test(n)) await rm(join(out, f, n), { force: true });
  }
}

/** Raised when a failure happened while files were being swapped into the out folder. */
export class SwapError extends Error {}

/**
 * Installs the bundle into `outDir` so that a running edge (nginx prefix = `outDir`) is never disturbed:
 *
 * 1. the new bundle is written to a sibling staging folder and `check` (e.g. `nginx -t`) runs there; a failure
 *    up to here leaves `outDir` untouched;
 * 2. each file is put into `outDir` atomically (temp file + rename; unchanged files are not rewritten);
 *    `outDir` itself and its runtime folders (cache, logs, temp) are never moved or removed;
 * 3. files of the previous bundle that the new one no longer has are removed;
 * 4. manifest.json, the marker of a complete bundle, is written last.
 *
 * A reload of nginx then picks the new bundle up. A non-empty `outDir` that is not a cdn-build bundle is
 * refused. Folders and files get `mkdir`/umask modes.
 */
export async function writeBundleAtomic(
  bundle: Bundle,
  outDir: string,
  check?: (dir: string) => Promise<void>,
): Promise<void> {
  const out = resolve(outDir);
  const previous = await assertReplaceable(out, bundle);
  await mkdir(dirname(out), { recursive: true, mode: DIR_MODE });
  const stage = await makeStage(out);
  try {
    await writeBundleTo(bundle, stage);
    if (check) await check(stage);
    const blocked = await obstacles(out, bundle);
    if (blocked.length) throw new Error(`cannot install the bundle into ${out}: ${blocked.join("; ")}`);
  } catch (err) {
    await rm(stage, { recursive: true, force: true });
    throw err;
  }
  await rm(stage, { recursive: true, force: true });

  try {
    await mkdir(out, { recursive: true, mode: DIR_MODE });
    for (const d of bundle.dirs) await mkdir(join(out, d), { recursive: true, mode: DIR_MODE });
    for (const [path, text] of bundle.files) {
      if (path === MANIFEST) continue;
      const target = join(out, path);
      await mkdir(dirname(target), { recursive: true, mode: DIR_MODE });
      await replaceFile(target, text);
    }
    await removeStale(out, bundle, previous);
    const manifest = bundle.files.get(MANIFEST);
    if (manifest !== undefined) await replaceFile(join(out, MANIFEST), manifest);
  } catch (err) {
    throw new SwapError(
      `${(err as Error).message}\nthe update of ${out} stopped part way: its manifest.json still describes the previous bundle ` +
        `and a running nginx keeps serving it until a reload; build again to complete it`,
      { cause: err },
    );
  }
}
