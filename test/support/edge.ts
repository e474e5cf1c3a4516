import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compile } from "../../src/compile.js";
import { writeBundleTo } from "../../src/emit/write.js";
import type { Policy } from "../../src/policy/types.js";
import { formatDiagnostic } from "../../src/validate/diagnostic.js";
import { ensureNginx, freePort, startBundle, testConfig, type NginxBinary, type RunningNginx } from "../../src/runtime/nginx.js";

export interface Edge extends RunningNginx {
  /** The policy as booted (with the test's port). */
  policy: Policy;
  /** nginx.conf text of the booted bundle. */
  conf: string;
  /** error.log lines at level [error] or worse written since boot (Lua errors show up here). */
  errors(): Promise<string[]>;
}

let bin: NginxBinary | undefined;
export async function nginxBinary(): Promise<NginxBinary> {
  bin ??= await ensureNginx();
  return bin;
}

/** Compiles a policy for the local runtime, writes it to a temp dir, checks it with `nginx -t`. */
export async function buildForTest(policy: Policy): Promise<{ dir: string; conf: string }> {
  const b = await nginxBinary();
  const { bundle, diagnostics } = compile(policy, { target: b.kind });
  if (!bundle) throw new Error(`policy did not compile:\n${diagnostics.map(formatDiagnostic).join("\n")}`);
  const dir = await mkdtemp(join(tmpdir(), "cdn-edge-"));
  await writeBundleTo(bundle, dir);
  const t = await testConfig(dir, b);
  if (!t.ok) throw new Error(`nginx -t failed:\n${t.output}`);
  return { dir, conf: bundle.files.get("nginx.conf")! };
}

/** Compiles, writes and boots a policy on a free 127.0.0.1 port. `stop()` also removes the bundle. */
export async function bootEdge(
  policy: Omit<Policy, "listen"> & Partial<Pick<Policy, "listen">>,
  opts: { env?: Record<string, string> } = {},
): Promise<Edge> {
  const port = await freePort();
  const p = { ...policy, listen: { http: port, address: "127.0.0.1" } } as Policy;
  const { dir, conf } = await buildForTest(p);
  const running = await startBundle(dir, { port, bin: await nginxBinary(), env: opts.env });
  return {
    ...running,
    policy: p,
    conf,
    async errors() {
      const log = await running.errorLog();
      return log.split("\n").filter((l) => /\[(error|crit|alert|emerg)\]/.test(l));
    },
    async stop() {
      await running.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
