/**
 * Helpers of the deploy tests: run the CLI as a user does, write policies, stop the nginx of a prefix,
 * and a bounded load of parallel HTTP requests that counts every failure.
 */
import { execa } from "execa";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Agent, request } from "undici";

export const BIN = join(import.meta.dirname, "..", "..", "bin", "cdn-build.js");

export function cli(args: string[], opts: { cwd?: string; timeout?: number; env?: Record<string, string> } = {}) {
  return execa("node", [BIN, ...args], { reject: false, cwd: opts.cwd, timeout: opts.timeout ?? 90_000, env: opts.env });
}

/** A small policy: one origin, a response header naming the release, a health path, one worker. */
export function policyYaml(o: { port: number; origin: string; release: string; name?: string; ramSize?: string }): string {
  return [
    `name: ${o.name ?? "deployed"}`,
    `listen: { http: ${o.port}, address: 127.0.0.1 }`,
    `origins: { app: { servers: [{ address: "${o.origin}" }], retries: 0 } }`,
    `headers: { response: { set: { X-Release: "${o.release}" } }, cacheStatus: X-Cache }`,
    `health: { path: /health }`,
    `workers: { processes: 1, connections: 1024 }`,
    ...(o.ramSize ? [`cache: { disk: { size: 10m, keysZone: 1m }, ram: { size: ${o.ramSize} } }`] : []),
    "",
  ].join("\n");
}

async function livePid(prefix: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(join(prefix, "shared", "logs", "nginx.pid"), "utf8")).trim());
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

/** Stop the nginx master of a deploy prefix (SIGQUIT, then SIGKILL) and wait until it is gone. */
export async function stopPrefix(prefix: string): Promise<void> {
  const pid = await livePid(prefix);
  if (!pid) return;
  try {
    process.kill(pid, "SIGQUIT");
  } catch {
    return;
  }
  for (let i = 0; i < 100; i++) {
    await new Promise((r) => setTimeout(r, 50));
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
  }
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    /* gone */
  }
}

/**
 * error.log lines of a prefix that name Lua or are [alert]/[crit]/[emerg]. `expected` removes whole
 * entries (the line that matches and its continuation lines, up to the next dated line) caused on purpose.
 */
export async function badLogLines(prefix: string, expected?: RegExp): Promise<string[]> {
  const text = await readFile(join(prefix, "shared", "logs", "error.log"), "utf8").catch(() => "");
  const entries = text.split(/\n(?=\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d )/);
  const kept = expected ? entries.filter((e) => !expected.test(e)) : entries;
  return kept.join("\n").split("\n").filter((l) => /lua|runtime error|stack traceback|\[(alert|crit|emerg)\]/i.test(l));
}

export interface LoadResult {
  ok: number;
  failed: number;
  /**
   * Keep-alive requests sent again on a new connection because the edge had closed the idle connection as
   * they were sent (what browsers and HTTP clients do for idempotent requests, RFC 9112 section 9.3.1).
   */
  retried: number;
  failures: string[];
  /** The X-Release values seen, in order of first sight. */
  releases: string[];
}

/**
 * `concurrency` loops of GET `url` until `stop()` is called, at most `maxRequests` in all or `maxMs` of
 * time: bounded whatever happens. `keepAlive`: reuse connections, and send a request again once when the
 * edge closed its idle connection under it (a reload closes the old workers' idle connections at once:
 * the race every HTTP/1.1 client handles that way); otherwise one new connection per request.
 */
export function startLoad(url: string, opts: { concurrency?: number; maxRequests?: number; maxMs?: number; keepAlive?: boolean } = {}) {
  const concurrency = opts.concurrency ?? 8;
  const maxRequests = opts.maxRequests ?? 50_000;
  const deadline = Date.now() + (opts.maxMs ?? 60_000);
  const agent = new Agent({ connections: concurrency, keepAliveTimeout: 10_000 });
  const result: LoadResult = { ok: 0, failed: 0, retried: 0, failures: [], releases: [] };
  const once = async () => {
    const res = await request(url, {
      dispatcher: agent,
      headersTimeout: 5000,
      bodyTimeout: 5000,
      headers: opts.keepAlive ? {} : { connection: "close" },
    });
    await res.body.dump();
    return res;
  };
  let stopping = false;
  let sent = 0;
  const loop = async () => {
    while (!stopping && sent < maxRequests && Date.now() < deadline) {
      sent++;
      try {
        let res;
        try {
          res = await once();
        } catch (e) {
          if (!opts.keepAlive || (e as { code?: string }).code !== "UND_ERR_SOCKET") throw e;
          result.retried++;
          res = await once();
        }
        const rel = String(res.headers["x-release"] ?? "");
        if (rel && !result.releases.includes(rel)) result.releases.push(rel);
        if (res.statusCode === 200) result.ok++;
        else {
          result.failed++;
          if (result.failures.length < 20) result.failures.push(`status ${res.statusCode}`);
        }
      } catch (e) {
        result.failed++;
        if (result.failures.length < 20) result.failures.push((e as Error).message);
      }
    }
  };
  const loops = Array.from({ length: concurrency }, loop);
  return {
    result,
    async stop(): Promise<LoadResult> {
      stopping = true;
      await Promise.all(loops);
      await agent.close();
      return result;
    },
  };
}
