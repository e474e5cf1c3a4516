/**
 * Rules of the test suite itself: nothing is ever skipped, and the harness boots bundles exactly as the CLI
 * wrote them (no permission fix-ups a user would not do).
 */
import { readdir, readFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..");

async function files(dir: string, ext = ".ts"): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await files(p, ext)));
    else if (e.name.endsWith(ext)) out.push(p);
  }
  return out;
}

async function offenders(dirs: string[], pattern: RegExp): Promise<string[]> {
  const out: string[] = [];
  for (const d of dirs) {
    for (const f of await files(join(ROOT, d))) {
      if (f === import.meta.filename) continue;
      (await readFile(f, "utf8")).split("\n").forEach((line, i) => {
        if (pattern.test(line)) out.push(`${relative(ROOT, f)}:${i + 1}: ${line.trim()}`);
      });
    }
  }
  return out;
}

describe("test suite rules", () => {
  it("skips nothing: no .skip / .skipIf / .runIf / .todo / .only, no ctx.skip()", async () => {
    expect(await offenders(["test"], /\b(?:it|test|describe|suite|bench)\s*\.\s*(?:skip|skipIf|runIf|todo|only)\b|\b(?:ctx|context|t)\.skip\(/)).toEqual([]);
  });

  it("boots bundles as written: no chmod / makeWorkerReadable in the harness or the runtime helpers", async () => {
    expect(await offenders(["test/support", "src/runtime"], /makeWorkerReadable|\bchmod\b/)).toEqual([]);
  });
});
