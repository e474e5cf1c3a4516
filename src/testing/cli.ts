/** `cdn-build test`: find a policy's own tests (`*.edge.test.ts`) and run them with vitest. */
import { spawn } from "node:child_process";
import { mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve, sep } from "node:path";
import { parseArgs } from "node:util";
import { selfPaths } from "../load/self.js";
import { policyFormat } from "../load/index.js";

export const TEST_HELP = `Usage: cdn-build test [<policy|folder|test file> ...] [--watch] [-t <name pattern>] [-- <vitest options>]

Runs the tests you wrote for your policy: every *.edge.test.ts (also .mts, .js, .mjs) next to each policy
given (in its folder), anywhere under each folder given (node_modules and dot folders skipped), or the
test files given; with no argument, under the current folder. The tests run in vitest, with \`cdn-build\` and \`cdn-build/testing\`
resolved to this copy of cdn-build; a test boots the policy in the nginx (or OpenResty) found on this
machine with \`bootPolicy\` and sends it requests (see docs/testing-policies.md):

  import { bootPolicy, expectCacheStatus, startMockOrigin } from "cdn-build/testing";
  const origin = await startMockOrigin();
  const edge = await bootPolicy(new URL("./edge.policy.ts", import.meta.url), { origin });
  expectCacheStatus(await edge.get("/"), "MISS");

  --watch               run again when a test or the policy changes (vitest's watch mode)
  -t, --grep <pattern>  only the tests whose name matches
  -- <options>          anything after -- goes to vitest as is (e.g. -- --reporter=verbose)

Timeouts are 60 s per test and per hook (booting nginx takes about a second). Tests run in at most two
worker processes.

Exit codes: 0 every test passed, 1 a test failed or no test file was found, 2 usage error.`;

export class TestUsageError extends Error {}

const TEST_FILE = /\.edge\.test\.[mc]?[jt]s$/;

/** Test files directly in `dir`, or (recursive) anywhere under it. */
async function findTests(dir: string, recursive: boolean): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isFile() && TEST_FILE.test(e.name)) out.push(p);
    else if (recursive && e.isDirectory() && e.name !== "node_modules" && !e.name.startsWith(".")) out.push(...(await findTests(p, true)));
  }
  return out;
}

function commonDir(files: string[]): string {
  let common = dirname(files[0]!);
  for (const f of files) while (!(f.startsWith(common + sep) || common === dirname(common))) common = dirname(common);
  return common;
}

/** A glob that matches exactly this relative path (vitest's include entries are globs). */
const literalGlob = (rel: string) => rel.split(sep).join("/").replace(/[*?[\]{}()!+@]/g, "\\$&");

function configText(root: string, include: string[], watch: boolean, cacheDir: string): string {
  const self = selfPaths();
  const entry = (p: string) => join(self.root, "dist", "src", p);
  const alias = [
    { find: "^cdn-build/testing$", to: entry("testing/index.js") },
    { find: "^cdn-build/edge/testing$", to: entry("edge/testing.js") },
    { find: "^cdn-build/edge$", to: entry("edge/node.js") },
    { find: "^cdn-build$", to: entry("index.js") },
  ];
  return `// written by cdn-build test; removed when the run ends
export default {
  cacheDir: ${JSON.stringify(cacheDir)},
  resolve: { alias: [${alias.map((a) => `{ find: /${a.find.replace(/\//g, "\\/")}/, replacement: ${JSON.stringify(a.to)} }`).join(", ")}] },
  test: {
    root: ${JSON.stringify(root)},
    include: ${JSON.stringify(include)},
    testTimeout: 60000,
    hookTimeout: 60000,
    maxWorkers: 2,
    minWorkers: 1,
    watch: ${watch},
  },
};
`;
}

export async function runTest(args: string[]): Promise<number> {
  const dash = args.indexOf("--");
  const own = dash === -1 ? args : args.slice(0, dash);
  const passthrough = dash === -1 ? [] : args.slice(dash + 1);
  const { values, positionals } = parseArgs({
    args: own,
    allowPositionals: true,
    options: { watch: { type: "boolean" }, grep: { type: "string", short: "t" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    process.stdout.write(TEST_HELP + "\n");
    return 0;
  }
  const files = new Set<string>();
  const places = positionals.length ? positionals : ["."];
  for (const place of places) {
    const abs = resolve(place);
    const st = await stat(abs).catch(() => undefined);
    if (!st) throw new TestUsageError(`cannot read ${place}`);
    if (st.isDirectory()) for (const f of await findTests(abs, true)) files.add(f);
    else if (TEST_FILE.test(abs)) files.add(abs);
    else if (policyFormat(abs)) for (const f of await findTests(dirname(abs), false)) files.add(f);
    else throw new TestUsageError(`${place} is neither a policy (.ts, .mts, .yaml, .yml, .json), a test file (*.edge.test.ts) nor a folder`);
  }
  if (files.size === 0) {
    process.stderr.write(`error: no policy tests (*.edge.test.ts) ${positionals.length ? `next to or under ${places.join(", ")}` : "under the current folder"}\n`);
    return 1;
  }
  const list = [...files].sort();
  const root = commonDir(list);
  const vitestDir = dirname(createRequire(import.meta.url).resolve("vitest/package.json"));
  const work = await mkdtemp(join(tmpdir(), "cdn-test-config-"));
  const config = join(work, "vitest.config.mjs");
  await writeFile(config, configText(root, list.map((f) => literalGlob(relative(root, f))), values.watch === true, join(work, "cache")));
  process.stderr.write(`cdn-build test: ${list.length} file(s): ${list.map((f) => relative(process.cwd(), f) || f).join(", ")}\n`);
  const argv = [join(vitestDir, "vitest.mjs"), values.watch ? "watch" : "run", "--config", config, "--root", root];
  if (values.grep !== undefined) argv.push("--testNamePattern", values.grep);
  argv.push(...passthrough);
  try {
    return await new Promise<number>((done, fail) => {
      const child = spawn(process.execPath, argv, { cwd: root, stdio: "inherit" });
      const forward = (sig: NodeJS.Signals) => child.kill(sig);
      process.on("SIGINT", forward);
      process.on("SIGTERM", forward);
      child.once("error", fail);
      child.once("exit", (code, signal) => {
        process.removeListener("SIGINT", forward);
        process.removeListener("SIGTERM", forward);
        done(code === 0 && !signal ? 0 : 1);
      });
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
