import { execa } from "execa";
import { chown, rename, rm, writeFile } from "node:fs/promises";
import { userInfo } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildForTest, nginxBinary, projectDir } from "./support/edge.js";
import { freePort, startBundle } from "../src/runtime/nginx.js";
import { http } from "./support/http.js";
import { startMockOrigin } from "./support/mock-origin.js";
import { waitFor } from "./support/wait.js";

const BIN = join(import.meta.dirname, "..", "bin", "cdn-build.js");

/** A YAML policy as a user writes it: one origin, a cache, a health endpoint. */
const policyYaml = (name: string, port: number, origin: string) => `name: ${name}
listen:
  http: ${port}
  address: 127.0.0.1
origins:
  app:
    servers:
      - address: ${origin}
cache:
  ttl:
    "200": 1m
health: {}
headers:
  cacheStatus: X-Cache
`;

describe("bundle", () => {
  it("is relocatable: moved to another folder, it boots and caches there", async () => {
    const origin = await startMockOrigin();
    const port = await freePort();
    const { dir, remove } = await buildForTest({
      name: "reloc",
      listen: { http: port, address: "127.0.0.1" },
      origins: { app: { servers: [{ address: origin.address }] } },
      cache: { ttl: { "200": "1m" } },
    });
    const elsewhere = await projectDir("cdn-moved-");
    const moved = join(elsewhere, "edge");
    await rename(dir, moved); // `mv out/edge /srv/edge`
    await remove();
    const edge = await startBundle(moved, { port, bin: await nginxBinary() });
    try {
      await http(edge, "/r");
      expect((await http(edge, "/r")).headers["x-cache"]).toBe("HIT");
      expect(origin.hits("/r")).toBe(1);
    } finally {
      await edge.stop();
      await origin.close();
      await rm(elsewhere, { recursive: true, force: true });
    }
  });

  it("built by `cdn-build build` and started as root (workers as nobody), it serves /health and cached objects", async () => {
    const origin = await startMockOrigin();
    const port = await freePort();
    const project = await projectDir("cdn-cli-boot-");
    try {
      await writeFile(join(project, "edge.policy.yaml"), policyYaml("cli-boot", port, origin.address));
      const built = await execa("node", [BIN, "build", "edge.policy.yaml", "--out", "out/edge"], { cwd: project, reject: false });
      expect(built.exitCode, built.stderr).toBe(0);
      const edge = await startBundle(join(project, "out", "edge"), { port, bin: await nginxBinary() });
      try {
        const health = await http(edge, "/health");
        expect(health.status).toBe(200);
        const first = await http(edge, "/obj");
        expect(first.status).toBe(200);
        expect(first.headers["x-cache"]).toBe("MISS");
        const second = await http(edge, "/obj");
        expect(second.headers["x-cache"]).toBe("HIT");
        expect(second.body).toBe(first.body);
        expect(origin.hits("/obj")).toBe(1);
        const log = await edge.errorLog();
        expect(log.split("\n").filter((l) => /\[(error|crit|alert|emerg)\]/.test(l))).toEqual([]);
        if (userInfo().uid === 0) {
          // the workers really are unprivileged: they run as nobody, the master as root
          const ps = await execa("ps", ["-o", "user=", "--ppid", String(edge.pid)]);
          expect([...new Set(ps.stdout.split("\n").map((s) => s.trim()))]).toEqual(["nobody"]);
        }
      } finally {
        await edge.stop();
      }
    } finally {
      await origin.close();
      await rm(project, { recursive: true, force: true });
    }
  });

  it("runs with a non-root master (as nobody when the tests run as root)", async () => {
    const origin = await startMockOrigin();
    const port = await freePort();
    const project = await projectDir("cdn-nonroot-");
    const bin = await nginxBinary();
    // the user's own checkout: everything in it, the bundle included, is written by the user who runs nginx
    const asUser = (file: string, args: string[]) =>
      userInfo().uid === 0
        ? // setpriv execs in place (no wrapper process), so signals reach nginx's master directly
          execa("setpriv", ["--reuid=nobody", "--regid=nogroup", "--clear-groups", file, ...args], { cwd: project, reject: false })
        : execa(file, args, { cwd: project, reject: false });
    if (userInfo().uid === 0) await chown(project, 65534, 65534);
    let child: ReturnType<typeof asUser> | undefined;
    try {
      await writeFile(join(project, "edge.policy.yaml"), policyYaml("nonroot", port, origin.address));
      const built = await asUser("node", [BIN, "build", "edge.policy.yaml", "--out", "out/edge"]);
      expect(built.exitCode, built.stderr).toBe(0);
      const dir = join(project, "out", "edge");
      child = asUser(bin.path, ["-p", dir + "/", "-c", "nginx.conf", "-g", "daemon off;"]);
      const base = { baseUrl: `http://127.0.0.1:${port}` };
      await waitFor(async () => (await http(base, "/health").then((r) => r.status, () => 0)) === 200, { timeout: 5000, what: "GET /health = 200" });
      await http(base, "/n");
      expect((await http(base, "/n")).headers["x-cache"]).toBe("HIT");
    } finally {
      if (child) {
        child.kill("SIGQUIT");
        const killer = setTimeout(() => child!.kill("SIGKILL"), 5000);
        await child;
        clearTimeout(killer);
      }
      await origin.close();
      await rm(project, { recursive: true, force: true });
    }
  });
});
