/** `cdn-build init`: a starting policy and a README snippet for a user's project. */
import { access, mkdir, writeFile } from "node:fs/promises";
import { basename, join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";

export const INIT_HELP = `Usage: cdn-build init [dir] [--name <name>] [--format ts|yaml] [--origin host:port] [--force]

Writes a starting policy into <dir> (default: the current folder): edge.policy.ts (or edge.policy.yaml),
one origin, a disk and RAM cache, a health endpoint, security-minded response headers and a JSON access
log, every line commented; and edge.edge.test.ts, the policy's first tests (booted in nginx against a mock
origin by \`cdn-build test\`). Then prints a README snippet with the commands to check, test, serve, build
and deploy it. Existing files are never overwritten unless --force.

  --name <name>         the policy's name (lower-case letters, digits and -; default: edge)
  --format ts|yaml      TypeScript (default; typed by \`import { definePolicy } from "cdn-build"\`) or YAML
  --origin host:port    the origin server (default 127.0.0.1:3000)
  --force               overwrite an existing policy or test file

Exit codes: 0 written, 1 a file exists (without --force) or cannot be written, 2 usage error.`;

export class InitUsageError extends Error {}

function tsPolicy(name: string, origin: string): string {
  return `import { definePolicy } from "cdn-build";

// The edge policy: \`npx cdn-build validate edge.policy.ts\` checks it, \`npx cdn-build test\` runs its tests,
// \`npx cdn-build dev edge.policy.ts\` serves it locally. Every key is documented in your editor and in
// docs/policy-reference.md. The policy runs at build time, so it may read the environment (one policy, several
// environments): EDGE_ORIGIN=10.0.0.5:8000 npx cdn-build build edge.policy.ts --out out/edge
const origin = process.env.EDGE_ORIGIN ?? "${origin}";

export default definePolicy({
  name: "${name}",
  listen: { http: 8080 },
  origins: {
    // where cache misses go; add servers (weights, backups) and timeouts as needed
    app: { servers: [{ address: origin }], connectTimeout: "2s", readTimeout: "30s", retries: 1 },
  },
  cache: {
    disk: { size: "1g", keysZone: "16m", inactive: "7d" },
    key: { query: "all" },                      // every query parameter, sorted
    ttl: { "200": "10m", "404": "30s" },         // only when the origin sends no Cache-Control
    staleIfError: "1h",                         // serve a stale copy while the origin fails
    ram: { size: "64m", maxObjectSize: "64k" }, // small hot objects from memory
  },
  headers: {
    response: { set: { "X-Content-Type-Options": "nosniff" }, remove: ["Server", "X-Powered-By"] },
    cacheStatus: "X-Cache",                     // HIT, MISS, STALE... on every response
  },
  health: { path: "/health" },
  accessLog: { format: "json" },
});
`;
}

function yamlPolicy(name: string, origin: string): string {
  return `# yaml-language-server: $schema=./node_modules/cdn-build/schemas/policy.schema.json
# The edge policy: \`npx cdn-build validate edge.policy.yaml\` checks it, \`npx cdn-build dev edge.policy.yaml\`
# serves it locally. Every key: docs/policy-reference.md.
name: ${name}
listen: { http: 8080 }
origins:
  # where cache misses go; add servers (weights, backups) and timeouts as needed
  app: { servers: [{ address: "${origin}" }], connectTimeout: 2s, readTimeout: 30s, retries: 1 }
cache:
  disk: { size: 1g, keysZone: 16m, inactive: 7d }
  key: { query: all }                   # every query parameter, sorted
  ttl: { "200": 10m, "404": 30s }       # only when the origin sends no Cache-Control
  staleIfError: 1h                      # serve a stale copy while the origin fails
  ram: { size: 64m, maxObjectSize: 64k } # small hot objects from memory
headers:
  response: { set: { X-Content-Type-Options: nosniff }, remove: [Server, X-Powered-By] }
  cacheStatus: X-Cache                  # HIT, MISS, STALE... on every response
health: { path: /health }
accessLog: { format: json }
`;
}

function testFile(policyFile: string): string {
  return `// Tests of the edge policy, run by \`npx cdn-build test\` (vitest): the policy is built and booted in the
// local nginx with its origin pool sent to a mock origin, then asked over HTTP. API: cdn-build/testing.
import { afterAll, beforeAll, describe, it } from "vitest";
import {
  bootPolicy,
  expectCacheStatus,
  expectNoErrors,
  expectNoHeader,
  expectOriginHits,
  expectStatus,
  startMockOrigin,
  type MockOrigin,
  type TestEdge,
} from "cdn-build/testing";

let origin: MockOrigin;
let edge: TestEdge;

beforeAll(async () => {
  origin = await startMockOrigin();
  edge = await bootPolicy(new URL("./${policyFile}", import.meta.url), { origin });
});
afterAll(async () => {
  await edge?.stop();
  await origin?.close();
});

describe("edge policy", () => {
  it("answers its health check itself", async () => {
    expectStatus(await edge.get("/health"), 200);
    expectOriginHits(origin, "/health", 0);
  });

  it("caches what the origin allows: one origin request, then hits", async () => {
    origin.route("/page", { headers: { "cache-control": "max-age=60", "x-powered-by": "app" }, body: "hello" });
    expectCacheStatus(await edge.get("/page"), "MISS");
    const hit = await edge.get("/page");
    expectCacheStatus(hit, ["HIT", "HIT-RAM"]);
    expectNoHeader(hit, "X-Powered-By");
    expectOriginHits(origin, "/page", 1);
  });

  it("does not cache what the origin marks private", async () => {
    origin.route("/account", { headers: { "cache-control": "private" }, body: "mine" });
    await edge.get("/account");
    await edge.get("/account");
    expectOriginHits(origin, "/account", 2);
  });

  it("logs no error", async () => {
    await expectNoErrors(edge);
  });
});
`;
}

function readme(file: string): string {
  return `## Edge

The edge cache in front of this app is described by \`${file}\` and compiled by cdn-build into an
OpenResty/nginx bundle.

\`\`\`sh
npx cdn-build validate ${file}                       # every problem at once
npx cdn-build test ${file}                           # its tests (*.edge.test.ts next to it), in a local nginx
npx cdn-build dev ${file} --origin 127.0.0.1:3000    # serve it locally, rebuild on save
npx cdn-build build ${file} --out out/edge --verify  # the bundle: nginx.conf, lua/, manifest.json
npx cdn-build diff ${file} /srv/edge/current         # what a deploy would change
npx cdn-build deploy ${file} --to deploy@edge-1:/srv/edge --start   # release, nginx -t, switch, reload, probe
\`\`\`
`;
}

export async function runInit(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { name: { type: "string" }, format: { type: "string" }, origin: { type: "string" }, force: { type: "boolean" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    process.stdout.write(INIT_HELP + "\n");
    return 0;
  }
  if (positionals.length > 1) throw new InitUsageError("init takes at most one folder");
  const name = values.name ?? "edge";
  if (!/^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$/.test(name)) throw new InitUsageError(`--name must be lower-case letters, digits and -, got "${name}"`);
  const format = values.format ?? "ts";
  if (format !== "ts" && format !== "yaml") throw new InitUsageError(`--format must be ts or yaml, got "${format}"`);
  const origin = values.origin ?? "127.0.0.1:3000";
  if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(origin)) throw new InitUsageError(`--origin must be host:port, got "${origin}"`);
  const dir = resolve(positionals[0] ?? ".");
  const file = join(dir, `edge.policy.${format}`);
  const test = join(dir, "edge.edge.test.ts");
  const present = async (f: string) =>
    access(f).then(
      () => true,
      () => false,
    );
  for (const f of [file, test]) {
    if (!values.force && (await present(f))) {
      process.stderr.write(`error: ${f} exists; pass --force to overwrite it (nothing was written)\n`);
      return 1;
    }
  }
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(file, format === "ts" ? tsPolicy(name, origin) : yamlPolicy(name, origin));
    await writeFile(test, testFile(basename(file)));
  } catch (e) {
    process.stderr.write(`error: cannot write into ${dir}: ${(e as Error).message}\n`);
    return 1;
  }
  const shown = relative(process.cwd(), file) || file;
  process.stderr.write(`wrote ${shown} and ${relative(process.cwd(), test) || test}\nREADME snippet (paste into your README.md):\n\n`);
  process.stdout.write(readme(shown));
  return 0;
}
