import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import type { Bundle } from "./index.js";

/** Writes a bundle into a new directory (which must not exist yet or be empty). */
export async function writeBundleTo(bundle: Bundle, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  for (const d of bundle.dirs) await mkdir(join(dir, d), { recursive: true, mode: 0o755 });
  for (const [path, text] of bundle.files) {
    const file = join(dir, path);
    await mkdir(dirname(file), { recursive: true, mode: 0o755 });
    await writeFile(file, text, { mode: 0o644 });
  }
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/**
 * Refuses to replace a directory that is not a cdn-build bundle (no manifest.json of ours) and not empty, so
 * `--out .` or a typo can never delete a user's files.
 */
async function assertReplaceable(out: string): Promise<void> {
  if (!(await exists(out))) return;
  if (!(await stat(out)).isDirectory()) throw new Error(`${out} exists and is not a directory`);
  if ((await readdir(out)).length === 0) return;
  try {
    const manifest = JSON.parse(await readFile(join(out, "manifest.json"), "utf8"));
    if (manifest.generatedBy === "cdn-build") return;
  } catch {
    // fall through
  }
  throw new Error(`${out} is not empty and is not a cdn-build bundle (no manifest.json); refusing to replace it`);
}

/**
 * Replaces `outDir` with the bundle, atomically: the bundle is written to a sibling temp dir, `check` (e.g.
 * `nginx -t`) runs on it there, and only then is it renamed into place. On any failure the previous bundle
 * is untouched and the temp dir removed. Runtime dirs of the old bundle (logs, cache) are carried over, so a
 * rebuild does not wipe a running edge's cache.
 */
export async function writeBundleAtomic(
  bundle: Bundle,
  outDir: string,
  check?: (dir: string) => Promise<void>,
): Promise<void> {
  const out = resolve(outDir);
  await assertReplaceable(out);
  await mkdir(dirname(out), { recursive: true });
  const tmp = await mkdtemp(join(dirname(out), `.${basename(out)}.tmp-`));
  let old: string | undefined;
  try {
    await writeBundleTo(bundle, tmp);
    if (check) await check(tmp);
    if (await exists(out)) {
      for (const d of bundle.dirs) {
        if (await exists(join(out, d))) {
          await rm(join(tmp, d), { recursive: true, force: true });
          await rename(join(out, d), join(tmp, d));
        }
      }
      old = `${tmp}.old`;
      await rename(out, old);
    }
    await rename(tmp, out);
  } catch (err) {
    // put back what we moved, then drop the temp dir
    if (old && !(await exists(out))) await rename(old, out);
    else if (await exists(out)) {
      for (const d of bundle.dirs) if ((await exists(join(tmp, d))) && !(await exists(join(out, d)))) await rename(join(tmp, d), join(out, d));
    }
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  if (old) await rm(old, { recursive: true, force: true });
}
