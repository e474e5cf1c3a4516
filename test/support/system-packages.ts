/**
 * The Debian packages the test suite needs: the one list. `.ci/run` installs the same list plus the bench tool
 * (`CI_PACKAGES`); test/system-packages.test.ts fails when its shell list drifts from this one.
 *
 *   APT_PACKAGES (src/runtime/nginx.ts)  nginx + Lua module + resty libraries + brotli modules: what a user's nginx-lua edge needs
 *   TEST_PACKAGES = APT_PACKAGES + redis-server (fleet tests) + luajit2 (Lua unit tests)
 *                   + openssh-server and openssh-client (deploy over SSH: the tests start their own sshd)
 *   CI_PACKAGES   = TEST_PACKAGES + wrk (npm run bench)
 */
import { execa } from "execa";
import { APT_PACKAGES } from "../../src/runtime/nginx.js";

/** Tools the tests start themselves, beyond nginx: the package that provides each, and a command it installs. */
const TOOLS = [
  { pkg: "redis-server", command: "redis-server" },
  { pkg: "luajit2", command: "luajit" },
  { pkg: "openssh-server", command: "sshd" },
  { pkg: "openssh-client", command: "ssh" },
] as const;

export const TEST_PACKAGES: readonly string[] = [...APT_PACKAGES, ...TOOLS.map((t) => t.pkg)];
/** Only for `npm run bench`, installed by CI alongside. */
export const BENCH_PACKAGES: readonly string[] = ["wrk"];
export const CI_PACKAGES: readonly string[] = [...TEST_PACKAGES, ...BENCH_PACKAGES];

async function has(command: string): Promise<boolean> {
  return (await execa("sh", ["-c", `command -v "$0"`, command], { reject: false })).exitCode === 0;
}

/** Packages of `list` that dpkg does not report as installed (undefined when there is no dpkg: not Debian). */
export async function missingPackages(list: readonly string[]): Promise<string[] | undefined> {
  if (!(await has("dpkg-query"))) return undefined;
  const r = await execa("dpkg-query", ["-W", "-f=${Package} ${db:Status-Abbrev}\n", ...list], { reject: false });
  const installed = new Set(
    r.stdout
      .split("\n")
      .filter((l) => / ii ?$/.test(l))
      .map((l) => l.split(" ")[0]),
  );
  return list.filter((p) => !installed.has(p));
}

/**
 * Makes sure every package of `list` (TEST_PACKAGES) is installed: installs the missing ones with apt-get when running
 * as root, and throws a message saying what to install otherwise. Never a skip.
 */
export async function ensureTestPackages(log: (line: string) => void, list: readonly string[] = TEST_PACKAGES): Promise<void> {
  const missing = await missingPackages(list);
  const install = (pkgs: string[]) => `apt-get update && apt-get install -y --no-install-recommends ${pkgs.join(" ")}`;
  if (missing === undefined) {
    // not Debian: the tools themselves must be there (nginx with Lua is checked by ensureNginx)
    const absent = [];
    for (const t of TOOLS) if (!(await has(t.command))) absent.push(t.command);
    if (absent.length) throw new Error(`the tests need ${absent.join(" and ")} on PATH (Debian packages: ${list.join(" ")})`);
    return;
  }
  if (missing.length === 0) return;
  const root = typeof process.geteuid === "function" && process.geteuid() === 0;
  if (!root || !(await has("apt-get"))) {
    throw new Error(`the tests need these Debian packages, which are not installed: ${missing.join(" ")}\nas root, run: ${install(missing)}`);
  }
  log(`installing missing packages: ${missing.join(" ")}`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const stdio = ["ignore", process.stderr, "inherit"] as const;
  const upd = await execa("apt-get", ["update"], { env, stdio, reject: false });
  if (upd.exitCode !== 0) log(`apt-get update exited with ${upd.exitCode}; trying the install anyway`);
  const inst = await execa("apt-get", ["install", "-y", "--no-install-recommends", ...missing], { env, stdio, reject: false });
  const still = (await missingPackages(missing)) ?? missing;
  if (inst.exitCode !== 0 || still.length) {
    throw new Error(`\`${install(missing)}\` failed (exit code ${inst.exitCode}); still missing: ${still.join(" ")}`);
  }
}
