/**
 * cdn-build used from a user's own project, as npm installs it: the packed tarball installed into a new
 * project, `init`, the editor's type check (tsc with the project's tsconfig), `build` with an environment,
 * and `cdn-build test` running the scaffolded tests against a booted bundle.
 */
import { execa } from "execa";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { stripVTControlCharacters } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { projectDir } from "./support/edge.js";

const REPO = resolve(import.meta.dirname, "..");
let work: string;
let app: string;
let packed: string[] = [];

const run = (cmd: string, args: string[], env: Record<string, string> = {}) =>
  execa(cmd, args, { cwd: app, reject: false, timeout: 120_000, env: { ...env, FORCE_COLOR: "0" } });
const cdnBuild = (args: string[], env: Record<string, string> = {}) => run(join(app, "node_modules", ".bin", "cdn-build"), args, env);

beforeAll(async () => {
  work = await projectDir("cdn-pack-");
  app = join(work, "my-app");
  // the scripts already ran in this checkout (dist/ and lua-dist/ are built by `npm test`'s pretest)
  const pack = await execa("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", work], { cwd: REPO });
  const info = JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[];
  packed = info[0]!.files.map((f) => f.path);
  await execa("mkdir", ["-m", "755", app]);
  await writeFile(join(app, "package.json"), JSON.stringify({ name: "my-app", private: true, type: "module" }, null, 2));
  const install = await execa("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", join(work, info[0]!.filename)], { cwd: app, reject: false, timeout: 150_000 });
  if (install.exitCode !== 0) throw new Error(`npm install of the tarball failed:\n${install.stderr}`);
}, 200_000);
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe("cdn-build in a user's project (npm install of the packed tarball)", () => {
  it("the tarball holds the compiler, the runtime, templates, schemas and types; no tests or sources", () => {
    for (const f of ["bin/cdn-build.js", "dist/src/index.js", "dist/src/index.d.ts", "dist/src/testing/index.d.ts", "src/edge/api.d.ts", "schemas/policy.schema.json"]) {
      expect(packed, f).toContain(f);
    }
    expect(packed.some((f) => f.startsWith("lua-dist/"))).toBe(true);
    expect(packed.some((f) => f.startsWith("templates/"))).toBe(true);
    expect(packed.filter((f) => /^(test|lua-src|examples|\.tmp)\//.test(f) || /^src\/.*\.ts$/.test(f.replace("src/edge/api.d.ts", "")))).toEqual([]);
  });

  it("init, then the project's own tsc accepts the policy, the test and a hook, and rejects misuse", async () => {
    const init = await cdnBuild(["init", "."]);
    expect(init.exitCode, init.stderr).toBe(0);
    await writeFile(
      join(app, "tsconfig.json"),
      JSON.stringify({ compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, noEmit: true, skipLibCheck: true }, include: ["*.ts"] }),
    );
    // with skipLibCheck a declaration that failed to resolve would become `any`: the expected errors prove it did not
    await writeFile(
      join(app, "probe.ts"),
      `import { definePolicy } from "cdn-build";
import { onAccess } from "cdn-build/edge";
import { expectCacheStatus, type EdgeResponse } from "cdn-build/testing";
// @ts-expect-error: a policy's name is a string
definePolicy({ name: 1 });
declare const res: EdgeResponse;
// @ts-expect-error: not a cache status
expectCacheStatus(res, "HITT");
export const hook = onAccess((req) => {
  // @ts-expect-error: deny takes a status code
  req.deny("no");
});
`,
    );
    const tsc = await run("node", [join(app, "node_modules", "typescript", "bin", "tsc"), "-p", "."]);
    expect(tsc.exitCode, tsc.stdout + tsc.stderr).toBe(0);
  });

  it("validate and build read process.env at build time (one policy, several environments)", async () => {
    expect((await cdnBuild(["validate", "edge.policy.ts"])).exitCode).toBe(0);
    const b = await cdnBuild(["build", "edge.policy.ts", "--out", "out/staging", "--verify"], { EDGE_ORIGIN: "127.0.0.1:4555" });
    expect(b.exitCode, b.stderr).toBe(0);
    expect(await readFile(join(app, "out", "staging", "nginx.conf"), "utf8")).toMatch(/server 127\.0\.0\.1:4555 /);
  });

  it("cdn-build test runs the scaffolded tests green against a booted bundle", async () => {
    const t = await cdnBuild(["test"]);
    expect(t.exitCode, t.stdout + t.stderr).toBe(0);
    expect(stripVTControlCharacters(t.stdout)).toMatch(/Tests\s+4 passed \(4\)/);
  });

  it("a type error in the policy: validate names file:line:col, exit 1", async () => {
    const text = await readFile(join(app, "edge.policy.ts"), "utf8");
    await writeFile(join(app, "broken.policy.ts"), text.replace(`listen: { http: 8080 }`, `listen: { http: "8080" }`));
    const v = await cdnBuild(["validate", "broken.policy.ts"]);
    expect(v.exitCode).toBe(1);
    expect(v.stderr).toMatch(/broken\.policy\.ts:\d+:\d+ error CDN\d+/);
  });
});
