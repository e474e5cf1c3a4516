import type { NginxBinary } from "../../src/runtime/nginx.js";
import { startMockOrigin } from "../../test/support/mock-origin.js";
import { bootPlainProxyCache, bootPolicy, Cleanup, CONNECTIONS, report, SECONDS, wrk } from "../lib.js";

/** Disk-cache HIT of a 1 KiB object: a cdn-build bundle vs plain nginx proxy_cache, one worker each. */
export async function diskHit(bin: NginxBinary): Promise<void> {
  const cleanup = new Cleanup();
  try {
    const origin = await startMockOrigin();
    cleanup.add(() => origin.close());
    origin.route("/obj", { headers: { "content-type": "text/plain", "cache-control": "max-age=3600" }, body: "x".repeat(1024) });
    const plain = await bootPlainProxyCache(bin, origin.address, cleanup);
    const edge = await bootPolicy(
      bin,
      {
        name: "bench",
        workers: { processes: 1 },
        origins: { app: { servers: [{ address: origin.address }] } },
        cache: { ttl: { "200": "1h" }, bypass: { cookies: ["session"] } },
        headers: { response: { set: { "X-Served-By": "edge" }, remove: ["X-Powered-By"] } },
        accessLog: { format: "off" },
      },
      cleanup,
    );
    const results = [await wrk("plain nginx proxy_cache (baseline)", `${plain.baseUrl}/obj`), await wrk("cdn-build bundle, disk HIT", `${edge.baseUrl}/obj`)];
    report(`disk cache HIT, 1 KiB, 1 worker each, wrk -c${CONNECTIONS} -d${SECONDS}s (${bin.version}, ${bin.kind})`, results);
    console.log(`  origin requests: ${origin.hits("/obj")} (the caches served the rest)`);
  } finally {
    await cleanup.run();
  }
}
