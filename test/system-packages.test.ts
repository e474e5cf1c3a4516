import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { APT_PACKAGES } from "../src/runtime/nginx.js";
import { BENCH_PACKAGES, CI_PACKAGES, ensureTestPackages, missingPackages, TEST_PACKAGES } from "./support/system-packages.js";

describe("system packages: one list", () => {
  it(".ci/run installs exactly CI_PACKAGES (the tests' packages plus the bench's)", async () => {
    const script = await readFile(join(import.meta.dirname, "..", ".ci", "run"), "utf8");
    const lines = script.split("\n").filter((l) => /^PACKAGES=\(/.test(l));
    expect(lines).toHaveLength(1);
    const shell = /^PACKAGES=\(([^)]*)\)\s*$/.exec(lines[0]!)![1]!.trim().split(/\s+/);
    expect(shell).toEqual([...CI_PACKAGES]);
  });

  it("the tests' list is the nginx-lua runtime plus redis-server, luajit2 and OpenSSH; CI adds wrk", () => {
    expect(TEST_PACKAGES).toEqual([...APT_PACKAGES, "redis-server", "luajit2", "openssh-server", "openssh-client"]);
    expect(CI_PACKAGES).toEqual([...TEST_PACKAGES, ...BENCH_PACKAGES]);
    expect(BENCH_PACKAGES).toEqual(["wrk"]);
  });

  it("after the global setup, every package of the tests' list is installed (dpkg), and an absent one is seen", async () => {
    expect(await missingPackages(TEST_PACKAGES)).toEqual([]);
    expect(await missingPackages(["redis-server", "cdn-build-no-such-package"])).toEqual(["cdn-build-no-such-package"]);
  });

  it("not root and a package missing: the setup fails and says what to install (no skip, no apt-get)", async () => {
    const euid = vi.spyOn(process as { geteuid(): number }, "geteuid").mockReturnValue(1000);
    try {
      const log: string[] = [];
      await expect(ensureTestPackages((l) => log.push(l), ["redis-server", "cdn-build-no-such-package"])).rejects.toThrow(
        "not installed: cdn-build-no-such-package\nas root, run: apt-get update && apt-get install -y --no-install-recommends cdn-build-no-such-package",
      );
      expect(log).toEqual([]);
    } finally {
      euid.mockRestore();
    }
  });
});
