/**
 * Helpers of the integrity tests: an edge that can be restarted and reloaded on its own folder (the cache and
 * its state stay), a bounded parallel request runner, and a tally of what was served.
 */
import { rm } from "node:fs/promises";
import { buildForTest, nginxBinary, writeForTest } from "../support/edge.js";
import { http, type Reply } from "../support/http.js";
import { compile } from "../../src/compile.js";
import { writeBundleAtomic } from "../../src/emit/write.js";
import { freePort, startBundle, testConfig, type RunningNginx } from "../../src/runtime/nginx.js";
import type { Policy } from "../../src/policy/types.js";
import { formatDiagnostic } from "../../src/validate/diagnostic.js";

export interface RestartableEdge {
  baseUrl: string;
  dir: string;
  port: number;
  running: RunningNginx;
  /** SIGQUIT, then the same bundle started again (a node restart: shared memory is gone, disk stays). */
  restart(): Promise<void>;
  /** Rebuilds the bundle in place from `policy` (as `cdn-build build` into a live folder), then reloads. */
  redeploy(policy: Omit<Policy, "listen">): Promise<void>;
  /** error.log lines at level [error] or worse, since the first start. */
  errors(): Promise<string[]>;
  stop(): Promise<void>;
}

export async function restartableEdge(policy: Omit<Policy, "listen">, env: Record<string, string> = {}): Promise<RestartableEdge> {
  const port = await freePort();
  const withPort = (p: Omit<Policy, "listen">) => ({ ...p, listen: { http: port, address: "127.0.0.1" } }) as Policy;
  const built = await buildForTest(withPort(policy));
  const bin = await nginxBinary();
  const logs: string[] = [];
  const edge: RestartableEdge = {
    baseUrl: `http://127.0.0.1:${port}`,
    dir: built.dir,
    port,
    running: await startBundle(built.dir, { port, bin, env }),
    async restart() {
      logs.push(await edge.running.errorLog());
      await edge.running.stop();
      edge.running = await startBundle(built.dir, { port, bin, env });
    },
    async redeploy(p) {
      const { bundle, diagnostics } = compile(withPort(p), { target: bin.kind });
      if (!bundle) throw new Error(diagnostics.map(formatDiagnostic).join("\n"));
      await writeBundleAtomic(bundle, built.dir, async (stage) => {
        const t = await testConfig(stage, bin);
        if (!t.ok) throw new Error(t.output);
      });
      await edge.running.reload();
    },
    async errors() {
      const all = [...logs, await edge.running.errorLog()].join("\n");
      return all.split("\n").filter((l) => /\[(error|crit|alert|emerg)\]/.test(l));
    },
    async stop() {
      await edge.running.stop();
      await built.remove();
    },
  };
  return edge;
}

/** Runs `fn` over `items` with at most `limit` in flight; results in order. */
export async function parallel<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** GETs every path; the replies in order. */
export function getAll(edge: { baseUrl: string }, paths: readonly string[], limit = 32): Promise<Reply[]> {
  return parallel(paths, limit, (p) => http(edge, p));
}

export const range = (n: number, f: (i: number) => string) => Array.from({ length: n }, (_, i) => f(i));

export { rm, writeForTest };
