import { execa, type ResultPromise } from "execa";
import { createConnection } from "node:net";
import { freePort } from "../../src/runtime/nginx.js";

/** A real redis-server on 127.0.0.1, on a free port, no persistence. Tests start and stop their own. */
export interface RedisServer {
  port: number;
  address: string;
  /** Run one command through redis-cli and return its output. */
  cli(...args: string[]): Promise<string>;
  /** Stop the server (an outage); `start()` brings it back on the same port, empty. */
  stop(): Promise<void>;
  start(): Promise<void>;
}

function waitPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const s = createConnection({ host: "127.0.0.1", port }, () => {
        s.destroy();
        resolve();
      });
      s.on("error", () => {
        s.destroy();
        if (Date.now() > deadline) reject(new Error(`redis-server did not listen on ${port}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  let child: ResultPromise | undefined;
  const start = async () => {
    // already running: starting again would leave the running server orphaned (its port still taken)
    if (child) return;
    child = execa("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { reject: false });
    await waitPort(port, 5000);
  };
  const stop = async () => {
    if (!child) return;
    const c = child;
    child = undefined;
    c.kill("SIGKILL");
    await c;
  };
  process.once("exit", () => child?.kill("SIGKILL"));
  await start();
  return {
    port,
    address: `127.0.0.1:${port}`,
    async cli(...args) {
      return (await execa("redis-cli", ["-p", String(port), ...args])).stdout;
    },
    stop,
    start,
  };
}
