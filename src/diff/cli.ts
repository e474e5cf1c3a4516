/** `cdn-build diff <a> <b>`. */
import { parseArgs } from "node:util";
import { TARGET_NAMES, type Target } from "../ir/targets.js";
import { changed, diffInputs, DiffInputError, formatDiff } from "./diff.js";

export const DIFF_HELP = `Usage: cdn-build diff <a> <b> [--json] [--target openresty|nginx-lua] [ssh options]

What changed from <a> to <b>, two policies (.ts, .yaml, .json) or two bundles, or one of each (the policy
is then built for the bundle's target and the two bundles are compared). A bundle is a folder written by
\`cdn-build build\`, a deploy prefix (its current release), or [user@]host:/prefix: the current release
deployed on that host, fetched over SSH. Bundles are checked against their manifests first. Changes are grouped by area (origins, cache, gates,
rules, headers...), each with its path: into the policy as written, or for bundles into the runtime's
policy data and nginx.conf's upstreams. A "risk" line names every shared memory zone whose size changes
or that disappears: nginx creates it anew on reload, so what it held is lost (cache metadata, RAM tier,
purge markers and index, rate-limit buckets, the disk cache's key zone).

  --json        print {compared, changes, risks, notes, filesChanged} as JSON on stdout
  --target <t>  build policies for this target (default: openresty, or the other side's bundle target)
  --ssh-port <n>, --identity <file>, --ssh-option <Key=Value> (repeatable)   OpenSSH client options

Exit codes (like diff): 0 no change, 1 changes, 2 error (usage, unreadable or invalid input).`;

export class DiffUsageError extends Error {}

export async function runDiff(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: {
      json: { type: "boolean" },
      target: { type: "string" },
      "ssh-port": { type: "string" },
      identity: { type: "string" },
      "ssh-option": { type: "string", multiple: true },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(DIFF_HELP + "\n");
    return 0;
  }
  if (positionals.length !== 2) throw new DiffUsageError("diff takes two policies or bundle folders: cdn-build diff <a> <b>");
  if (values.target !== undefined && !TARGET_NAMES.includes(values.target as Target)) throw new DiffUsageError(`unknown target "${values.target}" (use ${TARGET_NAMES.join(" or ")})`);
  const port = values["ssh-port"];
  if (port !== undefined && (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535)) throw new DiffUsageError(`--ssh-port must be a port number, got "${port}"`);
  for (const o of values["ssh-option"] ?? []) if (!/^[A-Za-z]+=/.test(o)) throw new DiffUsageError(`--ssh-option must be Key=Value, got "${o}"`);
  const ssh = { port: port === undefined ? undefined : Number(port), identity: values.identity, options: values["ssh-option"] };
  try {
    const d = await diffInputs(positionals[0]!, positionals[1]!, { target: values.target as Target | undefined, ssh });
    process.stdout.write(values.json ? JSON.stringify(d, null, 2) + "\n" : formatDiff(d));
    return changed(d) ? 1 : 0;
  } catch (e) {
    if (e instanceof DiffInputError) {
      process.stderr.write(`error: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}
