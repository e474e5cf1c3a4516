import { execa } from "execa";
import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildForTest, nginxBinary } from "./support/edge.js";
import { freePort, startBundle } from "../src/runtime/nginx.js";
import { http, sleep } from "./support/http.js";
import { startMockOrigin } from "./support/mock-origin.js";

describe("bundle", () => {
  it("is relocatable: moved to another folder, it boots and caches there", async () => {
    const origin = await startMockOrigin();
    const port = await freePort();
    const { dir } = await buildForTest({
      name: "reloc",
      listen: { http: port, address: "127.0.0.1" },
      origins: { app: { servers: [{ address: origin.address }] } },
      cache: {},
    });
    const moved = await mkdtemp(join(tmpdir(), "cdn-moved-"));
    await cp(dir, moved, { recursive: true });
    await rm(dir, { recursive: true, force: true });
    const edge = await startBundle(moved, { port, bin: await nginxBinary() });
    try {
      await http(edge, "/r");
      expect((await http(edge, "/r")).headers["x-cache"]).toBe("HIT");
      expect(origin.hits("/r")).toBe(1);
    } finally {
      await edge.stop();
      await origin.close();
      await rm(moved, { recursive: true, force: true });
    }
  });

  it("runs with a non-root master (as nobody when the tests run as root)", async () => {
    const origin = await startMockOrigin();
    const port = await freePort();
    const { dir } = await buildForTest({
      name: "nonroot",
      listen: { http: port, address: "127.0.0.1" },
      origins: { app: { servers: [{ address: origin.address }] } },
      cache: {},
      health: {},
    });
    const bin = await nginxBinary();
    const args = ["-p", dir + "/", "-c", "nginx.conf", "-g", "daemon off;"];
    let child;
    if (userInfo().uid === 0) {
      await execa("chown", ["-R", "nobody", dir]);
      await execa("chmod", ["755", dir]);
      // setpriv execs nginx in place (no wrapper process), so signals reach the master directly
      child = execa("setpriv", ["--reuid=nobody", "--regid=nogroup", "--clear-groups", bin.path, ...args], { reject: false });
    } else {
      child = execa(bin.path, args, { reject: false });
    }
    try {
      let status = 0;
      for (let i = 0; i < 50 && status !== 200; i++) {
        await sleep(100);
        status = await http({ baseUrl: `http://127.0.0.1:${port}` }, "/health").then((r) => r.status, () => 0);
      }
      expect(status).toBe(200);
      const base = { baseUrl: `http://127.0.0.1:${port}` };
      await http(base, "/n");
      expect((await http(base, "/n")).headers["x-cache"]).toBe("HIT");
    } finally {
      child.kill("SIGQUIT");
      const killer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await child;
      clearTimeout(killer);
      await origin.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
