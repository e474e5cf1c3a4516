import { readdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { compile } from "../src/compile.js";
import { loadPolicy } from "../src/load/index.js";
import type { Policy } from "../src/policy/types.js";
import { bootEdge, buildForTest } from "./support/edge.js";
import { waitFor } from "./support/wait.js";
import { http, luaErrors } from "./support/http.js";

const ROOT = join(import.meta.dirname, "..");
const EXAMPLES = readdirSync(join(ROOT, "examples")).sort();

function policyFile(name: string): string {
  const d = join(ROOT, "examples", name);
  const f = readdirSync(d).find((x) => /^edge\.policy\.(ts|ya?ml|json)$/.test(x));
  if (!f) throw new Error(`examples/${name} has no edge.policy.* file`);
  return join(d, f);
}

/** Environment the examples read with env("NAME") (secrets), given to nginx when they are booted. */
const EXAMPLE_ENV: Record<string, string> = {
  EDGE_SECRET: "example-edge-secret",
  JWT_SECRET: "example-jwt-secret-0123456789abcdef",
  DOWNLOAD_KEY: "example-download-key-0123456789",
};

async function load(name: string): Promise<Policy> {
  const { loaded, diagnostics } = await loadPolicy(policyFile(name));
  expect(diagnostics).toEqual([]);
  return loaded!.value as Policy;
}

describe.each(EXAMPLES)("example %s", (name) => {
  it("compiles without diagnostics and matches its golden nginx.conf", async () => {
    const { bundle, diagnostics } = compile(await load(name), { target: "openresty", baseDir: dirname(policyFile(name)) });
    expect(diagnostics).toEqual([]);
    const golden = join(ROOT, "test", "golden", `${name}.nginx.conf`);
    const conf = bundle!.files.get("nginx.conf")!;
    if (process.env.UPDATE_GOLDEN === "1") writeFileSync(golden, conf);
    if (!existsSync(golden)) {
      throw new Error(`${golden} is missing: run \`UPDATE_GOLDEN=1 npx vitest run test/examples.test.ts\` to write it, then review and commit it`);
    }
    expect(conf).toBe(readFileSync(golden, "utf8"));
  });

  it("passes nginx -t", async () => {
    const { dir, remove } = await buildForTest(await load(name), { baseDir: dirname(policyFile(name)) });
    await remove();
  });

  it("boots and answers its health endpoint", async () => {
    const policy = await load(name);
    const edge = await bootEdge(policy, { env: EXAMPLE_ENV, baseDir: dirname(policyFile(name)) });
    try {
      const r = await http(edge, policy.health?.path ?? "/health");
      expect(r.status).toBe(policy.health ? 200 : 502);
      if (policy.metrics) {
        // the health check above is counted: the Prometheus endpoint shows it
        const m = await waitFor(
          async () => {
            const x = await http(edge, policy.metrics!.path ?? "/metrics");
            return x.status === 200 && /^cdn_requests_total\{.*\} 1$/m.test(x.body) && x;
          },
          { timeout: 5000, what: "the health check counted in /metrics" },
        );
        expect(m.headers["content-type"]).toContain("text/plain");
      }
      expect(luaErrors(await edge.errors())).toEqual([]);
    } finally {
      await edge.stop();
    }
  });
});
