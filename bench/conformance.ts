/**
 * `npm run conformance [-- --policy <file>]`: the HTTP caching tests of cache-tests.fyi (the npm package
 * http-cache-tests) against a booted bundle, scored the way the suite scores, next to the results the suite
 * ships for other caches. The suite's test server is the origin (on 127.0.0.1); the policy is a default cache
 * (or the given one, its pools sent to the test server). Writes .tmp/conformance.json.
 */
import { execa } from "execa";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { bootPolicy } from "../src/testing/edge.js";
import { freePort } from "../src/runtime/nginx.js";

const SUITE = "http-cache-tests@0.4.5";
const ROOT = resolve(import.meta.dirname, "..");
const HOME = join(ROOT, ".tmp", "cache-tests");
const PKG = join(HOME, "package");

type Results = Record<string, true | [string, string] | false>;
interface Test {
  id: string;
  name: string;
  kind?: "required" | "optimal" | "check";
}

/** Unpacks the suite and its runtime dependencies once; its test server is made to bind 127.0.0.1 only. */
async function install(): Promise<void> {
  if (existsSync(join(PKG, "node_modules", "node-fetch"))) return;
  await mkdir(HOME, { recursive: true });
  await execa("npm", ["pack", SUITE, "--pack-destination", HOME], { stdio: "inherit" });
  const tgz = (await readdir(HOME)).find((f) => f.endsWith(".tgz"))!;
  await execa("tar", ["xzf", join(HOME, tgz), "-C", HOME]);
  const server = join(PKG, "server", "server.mjs");
  const text = await readFile(server, "utf8");
  if (!text.includes("server.listen(port)\n")) throw new Error(`${server}: the listen line changed; bind it to 127.0.0.1 by hand`);
  await writeFile(server, text.replace("server.listen(port)\n", "server.listen(port, '127.0.0.1')\n"));
  await execa("npm", ["install", "--omit=dev", "--no-audit", "--no-fund", "--ignore-scripts"], { cwd: PKG, stdio: "inherit" });
}

async function startOrigin(port: number): Promise<() => void> {
  const child = spawn(process.execPath, ["server/server.mjs"], {
    cwd: PKG,
    env: { ...process.env, npm_config_protocol: "http", npm_config_port: String(port), npm_config_pidfile: join(HOME, "server.pid") },
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((done, fail) => {
    const t = setTimeout(() => fail(new Error("the suite's server did not start")), 10_000);
    child.stdout!.on("data", (c: Buffer) => {
      if (c.toString().includes("Listening")) {
        clearTimeout(t);
        done();
      }
    });
    child.once("exit", (code) => fail(new Error(`the suite's server exited with ${code}`)));
  });
  return () => child.kill();
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { policy: { type: "string" } } });
  await install();
  const port = await freePort();
  const stopOrigin = await startOrigin(port);
  const policy = values.policy ?? { name: "conformance", origins: { app: { servers: [{ address: "127.0.0.1:1" }] } }, cache: {}, health: {} };
  const edge = await bootPolicy(policy, { origin: `127.0.0.1:${port}` });
  let results: Results;
  try {
    const run = await execa(process.execPath, ["--no-warnings", "cli.mjs"], {
      cwd: PKG,
      env: { npm_config_base: edge.url, npm_package_config_id: "" },
      timeout: 300_000,
    });
    results = JSON.parse(run.stdout) as Results;
    const errors = (await edge.errors()).filter((l) => /lua|runtime error|\[(crit|alert|emerg)\]/i.test(l));
    if (errors.length) console.error(`error.log has ${errors.length} Lua or critical line(s):\n${errors.slice(0, 10).join("\n")}`);
  } finally {
    await edge.stop();
    stopOrigin();
  }

  const load = async (rel: string) => ((await import(pathToFileURL(join(PKG, rel)).href)) as { default: unknown }).default;
  const suites = (await load("tests/index.mjs")) as { tests: Test[] }[];
  suites.push((await load("tests/surrogate-control.mjs")) as { tests: Test[] });
  const { determineTestResult } = (await import(pathToFileURL(join(PKG, "lib", "display.mjs")).href)) as {
    determineTestResult: (s: unknown, id: string, r: Results) => [string, string, string];
  };
  const tests = suites.flatMap((s) => s.tests);
  const score = (r: Results) => {
    const counts: Record<string, number> = {};
    for (const t of tests) {
      const key = `${t.kind ?? "required"} ${determineTestResult(suites, t.id, r)[2]}`;
      counts[key] = (counts[key] ?? 0) + 1;
    }
    return counts;
  };
  const columns = ["required ✅", "required ⛔️", "required 🔹", "required ⚪️", "optimal ✅", "optimal ⚠️", "check Y", "check N"];
  const rows: [string, Record<string, number>][] = [["cdn-build", score(results)]];
  for (const f of (await readdir(join(PKG, "results"))).filter((f) => f.endsWith(".json")).sort()) {
    rows.push([f.replace(/\.json$/, ""), score(JSON.parse(await readFile(join(PKG, "results", f), "utf8")) as Results)]);
  }
  console.log(`${SUITE}: ✅ pass, ⛔️ fail, 🔹 could not be set up, ⚪️ a test it depends on did not pass, ⚠️ optimal not met`);
  console.log(["cache".padEnd(14), ...columns.map((c) => c.padStart(13))].join(""));
  for (const [name, c] of rows) console.log([name.padEnd(14), ...columns.map((k) => String(c[k] ?? 0).padStart(12))].join(" "));
  console.log("\nrequired, not passed:");
  for (const t of tests) {
    const res = determineTestResult(suites, t.id, results)[2];
    if ((t.kind ?? "required") === "required" && res !== "✅") console.log(`  ${res} ${t.id}: ${JSON.stringify(results[t.id])}`);
  }
  await writeFile(join(ROOT, ".tmp", "conformance.json"), JSON.stringify({ suite: SUITE, at: new Date().toISOString(), results }, null, 2));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
