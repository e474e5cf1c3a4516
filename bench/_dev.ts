import { execa } from "execa";
import { readFile, writeFile } from "node:fs/promises";
import { ensureNginx } from "../src/runtime/nginx.js";
import { pinnedBinary, pinSelf, Scenario, startOrigin, runCleanup, nginxWorkers } from "./lib.js";
import { bootStock } from "./scenarios/hits.js";
await pinSelf();
const nginx = await ensureNginx();
const s = new Scenario(await pinnedBinary(nginx, 0), await pinnedBinary(nginx, 1));
const ut = async (pid: number) => { const f = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]!.split(" "); return [Number(f[11]), Number(f[12])]; };
await s.run(async () => {
  const origin = await startOrigin(s);
  const st = await bootStock(s, origin);
  const [w] = await nginxWorkers(st.pid);
  for (const [label, url] of [["miss", `${st.baseUrl}/bench/obj`], ["origin direct", `http://${origin.address}/bench/obj`]] as const) {
  for (let i = 0; i < 3; i++) {
    await writeFile("/tmp/miss.lua", `local n = 0\nrequest = function() n = n + 1 return wrk.format(nil, "/bench/obj?r=${i}${label[0]}&n=" .. n) end\n`);
    const a = await ut(w!); const h0 = await origin.hits();
    const r = await execa("taskset", ["-c", "1", "wrk", "-t1", "-c32", "-d3s", "-s", "/tmp/miss.lua", url]);
    const b = await ut(w!); const h1 = await origin.hits();
    const reqs = Number(/(\d+) requests in/.exec(r.stdout)![1]);
    console.log(label, reqs, "req", "user", ((b[0]! - a[0]!) * 1e4 / reqs).toFixed(1), "µs sys", ((b[1]! - a[1]!) * 1e4 / reqs).toFixed(1), "µs origin", h1 - h0);
  }}
});
await runCleanup.run();
