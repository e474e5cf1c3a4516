/**
 * The one LuaJIT runner of the tests: runs a Lua script in Debian's `luajit` (package luajit2) with the compiled
 * runtime (lua-dist/) first on package.path, and returns its stdout. A Lua error fails with LuaJIT's stderr.
 */
import { execa } from "execa";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The compiled Lua runtime (`npm run build:lua`). */
export const LUA_DIST = join(import.meta.dirname, "..", "..", "lua-dist");

/**
 * Runs `script` (any size: it goes through a file, not argv) with `input` on stdin. Resolves to stdout
 * without its final newline.
 */
export async function luajit(script: string, opts: { input?: string } = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "cdn-luajit-"));
  try {
    const file = join(dir, "test.lua");
    await writeFile(file, `package.path = ${JSON.stringify(`${LUA_DIST}/?.lua;`)} .. package.path\n${script}`);
    return await luajitFile(file, [], { input: opts.input });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Runs a Lua file that sets up its own package.path (a driver next to a bundle) with `args`; `flags` go to
 * LuaJIT itself (e.g. `-joff`). Resolves to stdout without its final newline.
 */
export async function luajitFile(file: string, args: string[], opts: { input?: string; flags?: string[] } = {}): Promise<string> {
  const r = await execa("luajit", [...(opts.flags ?? []), file, ...args], { input: opts.input ?? "", reject: false });
  if (r.exitCode !== 0 || r.failed) throw new Error(`luajit failed (exit code ${r.exitCode}):\n${r.stderr || r.message}`);
  return r.stdout;
}
