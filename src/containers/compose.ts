import { header, logLinks, PREFIX, sq, START, yaml, type EdgeFacts } from "./facts.js";
import type { ContainerOptions } from "./options.js";

/** The Redis image of the Compose file (a Debian one, like the edge's). */
export const REDIS_IMAGE = "redis:7.4-bookworm";

export interface ComposeOutput {
  text: string;
  warnings: string[];
}

/** A health check with what the image has (bash's /dev/tcp): no curl or wget needed. */
function healthTest(facts: EdgeFacts): string[] {
  const open = `exec 3<>/dev/tcp/127.0.0.1/${facts.httpPort}`;
  if (facts.healthPath === undefined) return ["CMD", "bash", "-c", open];
  const script = `${open} && printf 'GET %s HTTP/1.0\\r\\n\\r\\n' ${sq(facts.healthPath)} >&3 && read -r status <&3 && case "$status" in *" 200 "*) exit 0;; esac; exit 1`;
  // Compose interpolates $NAME in every string: $$ is a literal $
  return ["CMD", "bash", "-c", script.replace(/\$/g, "$$$$")];
}

/**
 * Renders `compose.yaml`, written into the bundle folder: the OpenResty service runs the folder itself as its
 * prefix (mounted read-only, with volumes for logs/, cache/ and temp/), so a rebuild into the folder followed
 * by a reload in the container is the same procedure as on a host. Pure.
 */
export function renderCompose(facts: EdgeFacts, opts: ContainerOptions): ComposeOutput {
  const warnings: string[] = [];
  const volumes: unknown[] = [
    { type: "bind", source: ".", target: PREFIX, read_only: true },
    { type: "volume", source: "logs", target: `${PREFIX}/logs` },
    { type: "volume", source: "cache", target: `${PREFIX}/cache` },
    { type: "volume", target: `${PREFIX}/temp` },
  ];
  // a file named relative to the bundle is in the bind-mounted folder already
  for (const f of facts.hostFiles) if (f.bundleRelative === undefined) volumes.push({ type: "bind", source: f.path, target: f.path, read_only: true });
  for (const dir of facts.writableDirs) volumes.push({ type: "volume", target: dir });
  if (facts.envPaths.length) {
    warnings.push(`--emit compose: the certificate paths in ${facts.envPaths.join(", ")} come from the environment: add bind mounts for those files to compose.yaml's edge service yourself`);
  }
  const environment: Record<string, string> = {};
  for (const v of facts.env) environment[v] = `\${${v}:?set ${v} in the environment or in an .env file next to compose.yaml}`;

  const start = [...logLinks(facts), `exec ${START.slice(0, -1).join(" ")} '${START.at(-1)}'`].join("\n");
  const edge: Record<string, unknown> = {
    image: opts.image,
    command: ["/bin/sh", "-c", start],
    ports: [`${facts.httpPort}:${facts.httpPort}`, ...(facts.httpsPort !== undefined ? [`${facts.httpsPort}:${facts.httpsPort}`] : [])],
    ...(facts.env.length ? { environment } : {}),
    volumes,
    healthcheck: { test: healthTest(facts), interval: "10s", timeout: "3s", retries: 3, start_period: "10s" },
    restart: "unless-stopped",
    // SIGQUIT is nginx's graceful stop: requests in flight are finished
    stop_signal: "SIGQUIT",
    stop_grace_period: "60s",
  };
  const services: Record<string, unknown> = { edge };
  const named: Record<string, object> = { logs: {}, cache: {} };
  const r = facts.redis;
  if (r?.loopback && !r.hostName) {
    // the policy's address is the edge's own loopback: Redis shares the edge's network namespace
    const args = ["redis-server", "--bind", "127.0.0.1", "-::1", "--port", String(r.port), "--databases", String(Math.max(16, r.db + 1)), "--appendonly", "yes"];
    const redis: Record<string, unknown> = {
      image: REDIS_IMAGE,
      network_mode: "service:edge",
      volumes: ["redis-data:/data"],
      restart: "unless-stopped",
      depends_on: ["edge"],
    };
    if (r.passwordEnv) {
      redis.environment = { [r.passwordEnv]: `\${${r.passwordEnv}:?set ${r.passwordEnv} in the environment or in an .env file next to compose.yaml}` };
      redis.command = ["sh", "-c", `exec ${args.join(" ")} --requirepass "$$${r.passwordEnv}"`];
    } else {
      redis.command = args;
    }
    services.redis = redis;
    named["redis-data"] = {};
  } else if (r) {
    warnings.push(
      `--emit compose: redis.host is ${r.host}${r.hostName ? " (a host name: the bundle has no DNS resolver for the Lua runtime)" : ""}; ` +
        `compose.yaml adds a Redis only for a policy whose redis.host is 127.0.0.1 (it then shares the edge's network), ` +
        `so this edge uses the Redis the policy names`,
    );
  }
  const what =
    "Run from this folder: `docker compose up -d`. After a rebuild into this folder: " +
    `\`docker compose exec edge ${START.slice(0, 5).join(" ")} -s reload\`.`;
  return { text: header(facts, what) + yaml({ services, volumes: named }), warnings };
}
