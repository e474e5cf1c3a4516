/**
 * `cdn-build dev` as a child process: boots the policy, serves it, prints a line per request, rebuilds and
 * reloads when a file the policy imports changes, keeps serving through an invalid edit, and stops nginx on
 * SIGTERM (no orphan).
 */
import { execa, type ResultPromise } from "execa";
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../src/runtime/nginx.js";
import { BIN } from "./support/deploy.js";
import { projectDir } from "./support/edge.js";
import { startMockOrigin, type MockOrigin } from "./support/mock-origin.js";
import { waitFor } from "./support/wait.js";

let dir: string;
let origin: MockOrigin;
let port: number;
let child: ResultPromise | undefined;
let out = "";
let err = "";
let masterPid = 0;

const POLICY = (deadOrigin: string) => `import { release } from "./release";

export default {
  name: "devloop",
  listen: { http: 80 },
  origins: { app: { servers: [{ address: "${deadOrigin}" }], retries: 0 } },
  cache: { disk: { size: "10m", keysZone: "1m" }, ttl: { "200": "1m" } },
  headers: { response: { set: { "X-Release": release } }, cacheStatus: "X-Cache" },
  health: { path: "/health" },
  workers: { processes: 1, connections: 256 },
};
`;

async function get(path: string): Promise<{ status: number; release: string; cache: string }> {
  const res = await request(`http://127.0.0.1:${port}${path}`, { headers: { connection: "close" } });
  await res.body.dump();
  return { status: res.statusCode, release: String(res.headers["x-release"] ?? ""), cache: String(res.headers["x-cache"] ?? "") };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** nginx processes whose command line names a dev folder of ours. */
async function devNginx(): Promise<number[]> {
  const pids: number[] = [];
  for (const p of await readdir("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    const cmd = await readFile(`/proc/${p}/cmdline`, "utf8").catch(() => "");
    if (cmd.includes("nginx") && cmd.includes("/cdn-dev-")) pids.push(Number(p));
  }
  return pids;
}

beforeAll(async () => {
  dir = await projectDir("cdn-devtest-");
  origin = await startMockOrigin();
  origin.setDefault({ status: 200, headers: { "cache-control": "max-age=60" }, body: "hello" });
  port = await freePort();
  const dead = `127.0.0.1:${await freePort()}`;
  await writeFile(join(dir, "release.ts"), `export const release = "one";\n`);
  await writeFile(join(dir, "edge.policy.ts"), POLICY(dead));
  child = execa("node", [BIN, "dev", join(dir, "edge.policy.ts"), "--port", String(port), "--origin", origin.address], { reject: false, timeout: 120_000 });
  child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (err += c.toString()));
});

afterAll(async () => {
  if (child && child.exitCode === null) child.kill("SIGKILL");
  await child?.catch(() => undefined);
  if (masterPid && alive(masterPid)) process.kill(-masterPid, "SIGKILL");
  await origin?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("cdn-build dev", () => {
  it("boots the policy on the given port, with --origin instead of the policy's origin, and prints its URL", async () => {
    await waitFor(() => /serving edge\.policy\.ts at http:\/\/127\.0\.0\.1:(\d+)\//.test(out), { timeout: 40_000, what: `dev's URL line\n${out}\n${err}` });
    masterPid = Number(/nginx master (\d+)/.exec(out)![1]);
    expect(out).toContain(`http://127.0.0.1:${port}/`);
    const r = await get("/page");
    expect(r).toMatchObject({ status: 200, release: "one" });
  });

  it("prints one line per request: method, path, status, cache status, milliseconds", async () => {
    await get("/page");
    await waitFor(() => /^GET \/page 200 HIT\S* \d+ms$/m.test(out), { timeout: 10_000, what: `a HIT line\n${out}` });
    expect(out).toMatch(/^GET \/page 200 MISS \d+ms$/m);
  });

  it("a change to a file the policy imports is rebuilt and reloaded", async () => {
    const before = (out.match(/rebuilt and reloaded/g) ?? []).length;
    await writeFile(join(dir, "release.ts"), `export const release = "two";\n`);
    await waitFor(() => (out.match(/rebuilt and reloaded/g) ?? []).length > before, { timeout: 40_000, what: `a reload\n${out}\n${err}` });
    expect((await get("/page")).release).toBe("two");
  });

  it("an invalid edit prints the diagnostic inline and the last good build keeps serving", async () => {
    await writeFile(join(dir, "release.ts"), `export const release = 42;\n`);
    await waitFor(() => /still serving the last good build/.test(err), { timeout: 40_000, what: `the invalid-policy message\n${err}` });
    expect(err).toMatch(/edge\.policy\.ts.*error CDN\d+/);
    expect(await get("/page")).toMatchObject({ status: 200, release: "two" });
    expect(child!.exitCode).toBeNull();
  });

  it("SIGTERM stops nginx and exits 0: no nginx left, the temporary bundle is gone", async () => {
    const bundle = /bundle in (\S+)\)/.exec(out)![1]!;
    const log = await readFile(join(bundle, "logs", "error.log"), "utf8");
    expect(log.split("\n").filter((l) => /lua|runtime error|\[(alert|crit|emerg)\]/i.test(l))).toEqual([]);
    child!.kill("SIGTERM");
    const r = await child!;
    expect(r.exitCode).toBe(0);
    expect(out).toMatch(/SIGTERM: stopping nginx/);
    await waitFor(() => !alive(masterPid), { timeout: 10_000, what: "the nginx master to exit" });
    expect(await devNginx()).toEqual([]);
    await expect(get("/page")).rejects.toThrow();
    await expect(readdir(bundle)).rejects.toThrow(/ENOENT/);
  });
});
