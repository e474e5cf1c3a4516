/** `cdn-build purge`: sign and send a purge to one or more nodes, then optionally warm a list of URLs. */
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { loadPolicy } from "../load/index.js";
import { compile } from "../compile.js";
import { formatDiagnostic, hasErrors } from "../validate/diagnostic.js";
import type { Policy } from "../policy/types.js";
import { prefetch, sendPurge, type NodeResult, type PurgeAuth, type PurgeSpec } from "./client.js";

export const PURGE_HELP = `Usage: cdn-build purge <policy> (--url U ... | --prefix P ... | --tag T ... | --all) [--soft]
                       --node http://host:port [--node ...] [--prefetch FILE] [--json]

Sends an authenticated purge to every node and reports what each purged. The policy gives the endpoint
path and the credentials: the bearer token and/or the HMAC secret are read from the environment variables
it names (purge.token / purge.hmac.secret); with an HMAC secret the request is signed.

  --url <url>          purge this URL (absolute: scheme://host/path?query); repeatable
  --prefix <prefix>    purge every indexed URL starting with it (scheme://host/...); repeatable
  --tag <tag>          purge every object the origin tagged (Cache-Tag / Surrogate-Key); repeatable
  --all                purge everything
  --soft               mark stale instead of removing (stale-while-revalidate / stale-if-error still apply)
  --node <url>         a node of the fleet (http://host:port); repeatable, at least one
  --prefetch <file>    after purging, GET each URL of the file (one per line, # comments) through each node
  --concurrency <n>    parallel prefetch requests (default 8)
  --json               print the results as JSON

Exit codes: 0 every node purged (and every prefetch answered), 1 a node failed, 2 usage error.`;

class PurgeUsage extends Error {}

function usage(msg: string): never {
  throw new PurgeUsage(msg);
}

/** The lines of a prefetch file: absolute URLs, blank lines and `#` comments skipped. */
export function parsePrefetchList(text: string): string[] {
  const urls: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    let u: URL;
    try {
      u = new URL(line);
    } catch {
      usage(`prefetch: "${line}" is not an absolute URL`);
    }
    if (u.protocol !== "http:" && u.protocol !== "https:") usage(`prefetch: "${line}" is not an http(s) URL`);
    urls.push(line);
  }
  return urls;
}

function describe(r: NodeResult): string {
  if (!r.ok) return `${r.node}: FAILED (${r.status ? `HTTP ${r.status}: ` : ""}${r.error ?? "no answer"})`;
  const a = r.answer!;
  const what = a.all ? (a.soft ? "everything marked stale" : "everything purged (files removed in the background)") : `${a.count} key${a.count === 1 ? "" : "s"} ${a.soft ? "marked stale" : `purged, ${a.files} file${a.files === 1 ? "" : "s"} removed`}`;
  const f = a.fanout;
  const fan = !f || f.status === "off" ? "" : f.status === "published" ? ", published to the fleet" : `, fan-out FAILED (${f.error})`;
  const keys = a.keys && a.keys.length ? "\n" + a.keys.map((k) => `    ${k}`).join("\n") : "";
  return `${r.node}: ok, ${what}${fan}${keys}`;
}

export async function runPurge(args: string[]): Promise<number> {
  try {
    return await purgeCommand(args);
  } catch (err) {
    if (err instanceof PurgeUsage || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      process.stderr.write(`error: ${(err as Error).message}\nrun \`cdn-build purge --help\` for usage\n`);
      return 2;
    }
    throw err;
  }
}

async function purgeCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      url: { type: "string", multiple: true },
      prefix: { type: "string", multiple: true },
      tag: { type: "string", multiple: true },
      all: { type: "boolean" },
      soft: { type: "boolean" },
      node: { type: "string", multiple: true },
      prefetch: { type: "string" },
      concurrency: { type: "string" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(PURGE_HELP + "\n");
    return 0;
  }
  if (positionals.length !== 1) usage("purge takes exactly one policy file");
  const spec: PurgeSpec = { urls: values.url ?? [], prefixes: values.prefix ?? [], tags: values.tag ?? [], all: values.all ?? false, soft: values.soft ?? false };
  const kinds = spec.urls!.length + spec.prefixes!.length + spec.tags!.length;
  if (kinds === 0 && !spec.all) usage("say what to purge: --url, --prefix, --tag or --all");
  if (kinds > 0 && spec.all) usage("--all purges everything: do not combine it with --url, --prefix or --tag");
  if (kinds > 1000) usage("at most 1000 URLs, prefixes and tags per purge");
  for (const u of [...spec.urls!, ...spec.prefixes!]) {
    if (!/^https?:\/\/[^/?#]+/i.test(u)) usage(`"${u}" must be absolute (http://host/...)`);
  }
  for (const t of spec.tags!) if (t === "" || /[\s,]/.test(t)) usage(`"${t}" is not a tag (no spaces or commas)`);
  const nodes = values.node ?? [];
  if (nodes.length === 0) usage("give at least one --node http://host:port");
  for (const n of nodes) {
    try {
      const u = new URL(n);
      if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error();
    } catch {
      usage(`--node "${n}" is not an http(s) URL`);
    }
  }
  const concurrency = values.concurrency === undefined ? 8 : Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) usage("--concurrency must be an integer from 1 to 256");
  const prefetchUrls = values.prefetch === undefined ? undefined : parsePrefetchList(await readFile(resolve(values.prefetch), "utf8").catch(() => usage(`cannot read ${values.prefetch}`)));

  const { loaded, diagnostics } = await loadPolicy(resolve(positionals[0]!));
  const all = loaded ? [...diagnostics, ...compile(loaded.value).diagnostics] : diagnostics;
  if (!loaded || hasErrors(all)) {
    for (const d of all) process.stderr.write(formatDiagnostic(d) + "\n");
    process.stderr.write("the policy is invalid: nothing sent\n");
    return 1;
  }
  const policy = loaded.value as Policy;
  const p = policy.purge ?? {};
  const auth: PurgeAuth = {};
  if (p.token) auth.token = process.env[p.token.env] || undefined;
  if (p.hmac) auth.hmacSecret = process.env[p.hmac.secret.env] || undefined;
  if (!auth.token && !auth.hmacSecret) {
    const names = [p.token?.env, p.hmac?.secret.env].filter(Boolean);
    process.stderr.write(
      names.length
        ? `error: cannot authenticate: set ${names.join(" or ")} in the environment\n`
        : "error: the policy's purge endpoint has no token or hmac: every purge would be refused\n",
    );
    return 1;
  }

  const results = await sendPurge(nodes, p.path ?? "/__purge", spec, auth);
  const warmed = prefetchUrls ? await prefetch(nodes, prefetchUrls, concurrency, (policy.headers?.cacheStatus || "x-cache").toLowerCase()) : undefined;
  const purgeOk = results.every((r) => r.ok);
  const warmOk = (warmed ?? []).every((w) => w.status > 0 && w.status < 500);

  if (values.json) {
    process.stdout.write(JSON.stringify({ ok: purgeOk && warmOk, nodes: results, ...(warmed ? { prefetch: warmed } : {}) }, null, 2) + "\n");
  } else {
    for (const r of results) process.stdout.write(describe(r) + "\n");
    if (warmed) {
      for (const w of warmed) {
        process.stdout.write(`prefetch ${w.node} ${w.url}: ${w.status ? `${w.status}${w.cache ? ` ${w.cache}` : ""}` : `FAILED (${w.error})`}\n`);
      }
      const good = warmed.filter((w) => w.status > 0 && w.status < 500).length;
      process.stdout.write(`prefetched ${good}/${warmed.length}\n`);
    }
    const failed = results.filter((r) => !r.ok).length;
    process.stdout.write(failed ? `${failed} of ${results.length} node${results.length === 1 ? "" : "s"} failed\n` : `purged on ${results.length} node${results.length === 1 ? "" : "s"}\n`);
  }
  return purgeOk && warmOk ? 0 : 1;
}
