import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { compileFile } from "./compile.js";
import { formatDiagnostic, hasErrors, type Diagnostic } from "./validate/diagnostic.js";
import { SwapError, writeBundleAtomic } from "./emit/write.js";
import { healthPath } from "./features/health.js";
import { TARGET_NAMES } from "./ir/targets.js";
import type { Target } from "./ir/targets.js";
import { findNginx } from "./runtime/nginx.js";
import { autoTarget } from "./runtime/target.js";
import { verifyBundle } from "./runtime/verify.js";
import { toolVersion } from "./util/package.js";
import { runSign, SIGN_HELP, SignUsageError } from "./sign-cli.js";
import { PURGE_HELP, runPurge } from "./purge/cli.js";
import { runStats, STATS_HELP } from "./stats/cli.js";
import { INIT_HELP, InitUsageError, runInit } from "./init/init.js";
import { DEV_HELP, DevUsageError, runDev } from "./dev/dev.js";
import { runTest, TEST_HELP, TestUsageError } from "./testing/cli.js";
import { DIFF_HELP, DiffUsageError, runDiff } from "./diff/cli.js";
import { CONTAINER_ARGS, CONTAINER_HELP, ContainerPolicyError, ContainerUsageError, installContainers, parseContainerOptions, prepareContainers } from "./containers/index.js";
import { DEPLOY_HELP, DeployUsageError, ROLLBACK_HELP, runDeploy, runRollback, runStatus, STATUS_HELP } from "./deploy/cli.js";

const USAGE = `cdn-build: compile a typed CDN edge policy into an OpenResty/nginx bundle

Usage:
  cdn-build validate <policy>                       check a policy, write nothing
  cdn-build build <policy> --out <dir> [options]    write the bundle to <dir>
  cdn-build sign <policy> <path> [--ttl 1h]         print a signed URL for the signedUrls gate
  cdn-build purge <policy> --url U --node N ...      purge URLs / prefixes / tags / all on nodes
  cdn-build stats <node> [<node> ...] [--watch 5]    fleet totals and per-node stats (policy metrics)
  cdn-build deploy <policy|bundle> --to <target>    ship a release, switch, reload, probe, roll back on failure
  cdn-build rollback --to <target>                  switch back to the previous release
  cdn-build status <target>                         which release runs where, and since when
  cdn-build diff <a> <b>                            what changed between two policies or bundles
  cdn-build dev <policy> [--origin host:port]       serve the policy locally, rebuild and reload on save
  cdn-build test [<policy|folder>]                  run the policy's own tests (*.edge.test.ts) in vitest
  cdn-build init [dir]                              write a starting policy and print a README snippet
  cdn-build <command> --help                        help for one command
  cdn-build --version

A policy is a .ts file (export default definePolicy({...})), or .yaml / .yml / .json.
Exit codes: 0 success, 1 invalid policy, failed verify or failed deploy, 2 usage error
(diff: 0 no change, 1 changes, 2 error).`;

const HELP: Record<string, string> = {
  validate: `Usage: cdn-build validate <policy> [--json]

Loads the policy (type-checks a .ts file first), validates it against the schema and the semantic checks,
and prints every problem with its code, policy path, hint and file:line:col. Writes nothing.

  --json     print diagnostics as JSON`,
  build: `Usage: cdn-build build <policy> --out <dir> [--target auto|openresty|nginx-lua] [--verify] [--json]
                      [--emit k8s|compose] [container options]

Compiles the policy into <dir>: nginx.conf, lua/ (hooks and runtime), manifest.json. Safe to run on the folder
of a running edge: the bundle is written to a temporary folder next to <dir> and checked there, then each
file is put into <dir> atomically, files the new bundle no longer has are removed, and manifest.json is
written last; <dir> itself and its cache/, logs/ and temp/ are never moved. Reload nginx to use the new
bundle. An invalid policy or a failed verify leaves the previous bundle untouched. Folders are created
0777 and files 0666 minus the umask (0755/0644 with the usual umask 022), so a root master's workers can
read them.

  --out <dir>        output directory (required); a non-empty folder that is not a bundle is refused
  --target <t>       auto (default): openresty when the \`openresty\` binary is found, nginx-lua when
                     Debian/Ubuntu nginx with libnginx-mod-http-lua is, otherwise openresty (says which
                     on stderr); openresty: stock OpenResty (what production uses); nginx-lua: Debian/Ubuntu
                     nginx with libnginx-mod-http-lua, lua-resty-core and lua-resty-lrucache
  --verify           before installing: \`nginx -t\` (or \`openresty -t\`); as root, check that the workers'
                     user (workers.user, else nobody) can traverse the folders above <dir> and read the
                     bundle; boot the bundle on a free 127.0.0.1 port and request its health endpoint
  --json             print diagnostics as JSON

Containers (docs/containers.md):
${CONTAINER_HELP}`,
  sign: SIGN_HELP,
  purge: PURGE_HELP,
  stats: STATS_HELP,
  deploy: DEPLOY_HELP,
  rollback: ROLLBACK_HELP,
  status: STATUS_HELP,
  diff: DIFF_HELP,
  dev: DEV_HELP,
  test: TEST_HELP,
  init: INIT_HELP,
};

class UsageError extends Error {}

function print(diags: Diagnostic[], json: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify({ diagnostics: diags }, null, 2) + "\n");
    return;
  }
  for (const d of diags) process.stderr.write(formatDiagnostic(d) + "\n");
  const errors = diags.filter((d) => d.severity === "error").length;
  if (errors) process.stderr.write(`${errors} error${errors > 1 ? "s" : ""}, nothing written\n`);
}

async function runValidate(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { json: { type: "boolean" }, help: { type: "boolean", short: "h" } } });
  if (values.help) return help("validate");
  if (positionals.length !== 1) throw new UsageError("validate takes exactly one policy file");
  const { diagnostics } = await compileFile(resolve(positionals[0]!));
  print(diagnostics, values.json ?? false);
  if (hasErrors(diagnostics)) return 1;
  if (!values.json) process.stderr.write("policy is valid\n");
  return 0;
}

async function runBuild(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      out: { type: "string", short: "o" },
      target: { type: "string" },
      verify: { type: "boolean" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
      ...CONTAINER_ARGS,
    },
  });
  if (values.help) return help("build");
  if (positionals.length !== 1) throw new UsageError("build takes exactly one policy file");
  if (!values.out) throw new UsageError("build needs --out <dir>");
  const requested = values.target ?? "auto";
  if (requested !== "auto" && !TARGET_NAMES.includes(requested as Target)) {
    throw new UsageError(`unknown target "${values.target}" (use auto, ${TARGET_NAMES.join(" or ")})`);
  }
  const containers = parseContainerOptions(values);
  if (containers && requested === "nginx-lua") {
    throw new UsageError(`--emit ${containers.emit.join(",")} runs the OpenResty image: build it with --target openresty (or auto), not nginx-lua`);
  }
  const json = values.json ?? false;
  const found = (requested === "auto" && !containers) || values.verify ? await findNginx() : undefined;
  let target = requested as Target;
  if (requested === "auto" && containers) {
    target = "openresty";
    process.stderr.write(`target openresty: --emit ${containers.emit.join(",")} runs the OpenResty image\n`);
  } else if (requested === "auto") {
    const picked = autoTarget(found);
    target = picked.target;
    process.stderr.write(`target ${picked.target}: ${picked.reason}\n`);
  }
  const { bundle, diagnostics, policy } = await compileFile(resolve(positionals[0]!), { target });
  print(diagnostics, json);
  if (!bundle || hasErrors(diagnostics)) return 1;
  let prepared;
  try {
    prepared = await prepareContainers(policy!, bundle, toolVersion(), containers, values.out);
  } catch (err) {
    if (!(err instanceof ContainerPolicyError)) throw err;
    process.stderr.write(`error: ${err.message}\nnothing written\n`);
    return 1;
  }
  for (const w of prepared.warnings) process.stderr.write(`warning: ${w}\n`);
  let notes: string[] = [];
  const verify = values.verify
    ? async (dir: string) => {
        if (!found) throw new Error("--verify needs nginx with the Lua module or OpenResty on PATH");
        if (found.kind !== target) process.stderr.write(`note: verifying a ${target} bundle with ${found.kind} (${found.path})\n`);
        const report = await verifyBundle(dir, { bin: found, outDir: values.out!, healthPath: policy && healthPath(policy) });
        notes = report.notes;
        if (!report.ok) throw new Error(`verify failed:\n${report.problems.map((p) => `  - ${p.replace(/\n/g, "\n    ")}`).join("\n")}`);
      }
    : undefined;
  try {
    await writeBundleAtomic(bundle, values.out, verify);
  } catch (err) {
    const untouched = err instanceof SwapError ? "" : `\nthe previous bundle in ${values.out} is untouched`;
    process.stderr.write(`error: ${(err as Error).message}${untouched}\n`);
    return 1;
  }
  try {
    notes.push(...(await installContainers(prepared, values.out)));
  } catch (err) {
    process.stderr.write(`error: the bundle was installed in ${values.out}, but writing its container files failed: ${(err as Error).message}\n`);
    return 1;
  }
  if (!json) {
    process.stderr.write(`wrote ${bundle.files.size} files to ${values.out} (target ${target})\n`);
    for (const n of notes) process.stderr.write(`${n}\n`);
  }
  return 0;
}

function help(cmd?: string): number {
  process.stdout.write((cmd ? HELP[cmd]! : USAGE) + "\n");
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case "validate":
        return await runValidate(rest);
      case "build":
        return await runBuild(rest);
      case "sign":
        return await runSign(rest, { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t), env: process.env, now: Date.now });
      case "purge":
        return await runPurge(rest);
      case "stats":
        return await runStats(rest, { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t), sleep: (ms) => new Promise((r) => setTimeout(r, ms)) });
      case "deploy":
        return await runDeploy(rest);
      case "rollback":
        return await runRollback(rest);
      case "status":
        return await runStatus(rest);
      case "diff":
        return await runDiff(rest);
      case "dev":
        return await runDev(rest);
      case "init":
        return await runInit(rest);
      case "test":
        return await runTest(rest);
      case "help":
        return help(rest[0] && HELP[rest[0]] ? rest[0] : undefined);
      case "--help":
      case "-h":
        return help();
      case "--version":
      case "-v":
        process.stdout.write(toolVersion() + "\n");
        return 0;
      case undefined:
        process.stderr.write(USAGE + "\n");
        return 2;
      default:
        throw new UsageError(`unknown command "${cmd}"`);
    }
  } catch (err) {
    const usage = [UsageError, SignUsageError, DeployUsageError, DiffUsageError, DevUsageError, TestUsageError, InitUsageError, ContainerUsageError];
    if (usage.some((c) => err instanceof c) || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      process.stderr.write(`error: ${(err as Error).message}\nrun \`cdn-build --help\` for usage\n`);
      return 2;
    }
    process.stderr.write(`internal error: ${(err as Error).stack ?? err}\n`);
    return 70;
  }
}
