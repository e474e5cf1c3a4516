/**
 * Installing the peers (Varnish, Apache Traffic Server) from Debian's packages when the bench runs as root:
 * the same route as the tests' nginx. Their post-install scripts try to start services; there is no init
 * system to start them here, so a `policy-rc.d` that refuses (exit 101) is put in place during the install
 * when none exists, and removed afterwards.
 */
import { execa } from "execa";
import { access, rm, writeFile } from "node:fs/promises";

const POLICY_RC_D = "/usr/sbin/policy-rc.d";

export function isRoot(): boolean {
  return typeof process.geteuid === "function" && process.geteuid() === 0;
}

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}

/**
 * `apt-get install` of Debian packages, services kept from starting. Returns an error message, or undefined
 * when the install succeeded. Never throws.
 */
export async function aptInstall(packages: string[], log: (line: string) => void): Promise<string | undefined> {
  if (!isRoot()) return "not root";
  const created = !(await exists(POLICY_RC_D));
  try {
    if (created) await writeFile(POLICY_RC_D, "#!/bin/sh\n# written by cdn-build's bench during an apt-get install: no service starts\nexit 101\n", { mode: 0o755 });
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    log(`installing ${packages.join(", ")} with apt-get (services kept from starting)`);
    const install = () => execa("apt-get", ["install", "-y", "--no-install-recommends", ...packages], { env, reject: false, all: true, timeout: 300_000, stdin: "ignore" });
    let r = await install();
    if (r.exitCode !== 0) {
      // an old or missing package list: update it once and try again
      await execa("apt-get", ["update"], { env, reject: false, timeout: 300_000, stdin: "ignore" });
      r = await install();
    }
    if (r.exitCode !== 0) return `apt-get install exited with ${r.exitCode}: ${(r.all ?? "").split("\n").slice(-5).join(" | ")}`;
    return undefined;
  } finally {
    if (created) await rm(POLICY_RC_D, { force: true });
  }
}
