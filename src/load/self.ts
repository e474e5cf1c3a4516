import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Where this package's own public entry point lives, so that `"cdn-build"` in a user's policy maps to it. */
export interface SelfPaths {
  /** Package root (the directory of the package.json named "cdn-build"). */
  root: string;
  /** Public types for the type checker: `src/index.ts` from source, `dist/src/index.d.ts` when compiled. */
  typesEntry: string;
  /** Public module for evaluation: `src/index.ts` from source, `dist/src/index.js` when compiled. */
  runtimeEntry: string;
  /** Directory holding the package's own sources/declarations (diagnostics there are not the user's). */
  ownDir: string;
}

let cached: SelfPaths | undefined;

function isSelfPackageJson(file: string): boolean {
  try {
    return (JSON.parse(readFileSync(file, "utf8")) as { name?: unknown }).name === "cdn-build";
  } catch {
    return false;
  }
}

function findRoot(start: string): string | undefined {
  for (let dir = start; ; ) {
    if (isSelfPackageJson(join(dir, "package.json"))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

export function selfPaths(): SelfPaths {
  if (cached) return cached;
  const here = fileURLToPath(import.meta.url);
  const hereDir = dirname(here);
  // Running from source (vitest, tsx) the loader is src/load/self.ts; compiled it is dist/src/load/self.js.
  const fromSource = /\.[cm]?ts$/.test(here) && !here.endsWith(".d.ts");
  const root = findRoot(hereDir) ?? resolve(hereDir, fromSource ? "../.." : "../../..");
  // The public index is the loader's parent directory's index (src/index.* or dist/src/index.*).
  const siblingIndex = (ext: string) => resolve(hereDir, "..", `index${ext}`);
  const pick = (candidates: string[]) => candidates.find((f) => existsSync(f)) ?? candidates[0]!;
  const typesEntry = fromSource
    ? pick([siblingIndex(".ts"), join(root, "src/index.ts")])
    : pick([siblingIndex(".d.ts"), join(root, "dist/src/index.d.ts"), join(root, "src/index.ts")]);
  const runtimeEntry = fromSource
    ? pick([siblingIndex(".ts"), join(root, "src/index.ts")])
    : pick([siblingIndex(".js"), join(root, "dist/src/index.js")]);
  cached = { root, typesEntry, runtimeEntry, ownDir: dirname(typesEntry) };
  return cached;
}
