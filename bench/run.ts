/**
 * `npm run bench`: cdn-build's bundles against stock nginx proxy_cache, nginx's own ceilings, a hand-written
 * RAM tier, Varnish and Traffic Server, on one machine, in interleaved rounds. See docs/performance.md.
 *
 *   npm run bench                      every scenario
 *   npm run bench -- hits miss         some of them
 *   BENCH_SECONDS=2 BENCH_ROUNDS=3 npm run bench -- hits
 *
 * Env: BENCH_SECONDS (one measured run, default 5), BENCH_ROUNDS (default 5, at least 3),
 * BENCH_CONNECTIONS (default 32), BENCH_PEERS=off (no Varnish / Traffic Server), BENCH_OUT (the Markdown
 * report, default bench/last-run.md).
 */
import { execa } from "execa";
import { readFile, writeFile } from "node:fs/promises";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import { ensureNginx } from "../src/runtime/nginx.js";
import { BENCH_TMP, CONNECTIONS, pinnedBinary, pinSelf, ROUNDS, runCleanup, Scenario, SECONDS, SERVER_CPU, CLIENT_CPU, type BenchContext } from "./lib.js";
import { markdownTable, textTable, type Section } from "./stats.js";
import { gatesScenario } from "./scenarios/gates.js";
import { hooksScenario } from "./scenarios/hooks.js";
import { hits } from "./scenarios/hits.js";
import { compression } from "./scenarios/compression.js";
import { large } from "./scenarios/large.js";
import { memory } from "./scenarios/memory.js";
import { miss } from "./scenarios/miss.js";
import { rulesScenario } from "./scenarios/rules.js";
import { tlsScenario } from "./scenarios/tls.js";
import { metricsScenario } from "./scenarios/metrics.js";

const SCENARIOS: Record<string, (ctx: BenchContext) => Promise<Section[]>> = {
  hits,
  miss,
  large,
  memory,
  rules: rulesScenario,
  gates: gatesScenario,
  tls: tlsScenario,
  metrics: metricsScenario,
  hooks: hooksScenario,
  compression,
};
/** Former scenario names, now rows of `hits`. */
const ALIASES: Record<string, string> = { "ram-hit": "hits", "disk-hit": "hits" };

async function loadavg(): Promise<string> {
  return (await readFile("/proc/loadavg", "utf8")).split(" ").slice(0, 3).join(" ");
}

const asked = process.argv.slice(2).map((a) => ALIASES[a] ?? a);
const unknown = asked.filter((a) => !(a in SCENARIOS));
if (unknown.length) {
  console.error(`unknown scenario(s): ${unknown.join(", ")}; known: ${Object.keys(SCENARIOS).join(", ")}`);
  process.exit(2);
}
const chosen = Object.keys(SCENARIOS).filter((n) => !asked.length || asked.includes(n));

// A bound on the whole run: each scenario's runs are bounded (wrk's own timeout), this catches anything else.
const perScenario = ROUNDS * 40 * (SECONDS + 4) * 1000 + 10 * 60_000;
const watchdog = setTimeout(() => {
  console.error(`bench: still running after ${(perScenario * chosen.length) / 60_000} minutes: giving up`);
  void Scenario.abortAll()
    .then(() => runCleanup.run())
    .finally(() => process.exit(3));
}, perScenario * chosen.length);
watchdog.unref();
let interrupted = false;
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    interrupted = true;
    console.error(`bench: ${sig}, cleaning up`);
    void Scenario.abortAll()
      .then(() => runCleanup.run())
      .finally(() => process.exit(130));
  });
}

await pinSelf();
const nginx = await ensureNginx({ install: true });
const ctx: BenchContext = { bin: await pinnedBinary(nginx, SERVER_CPU), clientBin: await pinnedBinary(nginx, CLIENT_CPU) };
const started = new Date();
const loadBefore = await loadavg();
console.log(`bench: ${chosen.join(", ")}; ${ROUNDS} rounds x ${SECONDS} s, wrk -t1 -c${CONNECTIONS}; ${cpus().length} cores; load average ${loadBefore}`);

const sections: Section[] = [];
const failed: string[] = [];
try {
  for (const name of chosen) {
    if (interrupted) break;
    console.log(`\n== ${name}`);
    try {
      sections.push(...(await SCENARIOS[name]!(ctx)));
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      console.error(`\nscenario ${name} FAILED: ${msg}`);
      failed.push(`${name}: ${msg.split("\n")[0]}`);
    }
  }
} finally {
  await runCleanup.run();
}

if (interrupted) {
  // the signal handler exits once everything is stopped; a partial run writes no report
  await new Promise(() => undefined);
}
const loadAfter = await loadavg();
const kernel = (await execa("uname", ["-r"])).stdout;
const header = [
  `Recorded ${started.toISOString().replace(/\.\d+Z$/, "Z")} (\`date\`: ${(await execa("date")).stdout}), ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), Linux ${kernel}, ${nginx.version} (${nginx.kind}).`,
  `${ROUNDS} rounds, ${SECONDS} s per run, wrk -t1 -c${CONNECTIONS} on core ${CLIENT_CPU}, servers on core ${SERVER_CPU}; bundles, caches and logs in ${BENCH_TMP}. Load average before: ${loadBefore}; after: ${loadAfter}.`,
];
const failures = failed.length ? `\nFAILED scenarios (not reported):\n${failed.map((f) => `- ${f}`).join("\n")}\n` : "";
console.log(`\n${header.join("\n")}\n\n${textTable(sections)}${failures}`);
const out = process.env.BENCH_OUT ?? fileURLToPath(new URL("./last-run.md", import.meta.url));
await writeFile(out, `${header.join("\n")}\n\n${markdownTable(sections)}${failures}`);
console.log(`Markdown table: ${out}`);
process.exitCode = failed.length ? 1 : 0;
