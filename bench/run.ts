/**
 * `npm run bench`: throughput scenarios, each measured as ratios against a baseline booted in the same run,
 * with wrk on 127.0.0.1. Timings live here, never in tests. `npm run bench -- <scenario>` runs one.
 * Env: BENCH_SECONDS (default 5), BENCH_CONNECTIONS (default 32).
 */
import { ensureNginx, type NginxBinary } from "../src/runtime/nginx.js";
import { diskHit } from "./scenarios/disk-hit.js";
import { rulesScenario } from "./scenarios/rules.js";
import { gatesScenario } from "./scenarios/gates.js";
import { ramHit } from "./scenarios/ram-hit.js";

const SCENARIOS: Record<string, (bin: NginxBinary) => Promise<void>> = {
  "disk-hit": diskHit,
  rules: rulesScenario,
  gates: gatesScenario,
  "ram-hit": ramHit,
};

const only = process.argv.slice(2);
const bin = await ensureNginx();
for (const [name, run] of Object.entries(SCENARIOS)) {
  if (only.length && !only.includes(name)) continue;
  await run(bin);
}
