import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { isIP } from "node:net";
import { loadPolicy } from "./load/index.js";
import { validate } from "./compile.js";
import { formatDiagnostic, hasErrors } from "./validate/diagnostic.js";
import { durationMs } from "./util/units.js";
import { signedUrlSettings } from "./features/signed-urls.js";
import { lowerScope, type PathSetData } from "./features/shared/gate-scope.js";
import { signPath } from "./sign.js";

export const SIGN_HELP = `Usage: cdn-build sign <policy> <path> [--ttl 1h] [--ip ADDR] [--base URL] [--expires UNIX]

Prints a signed URL for <path> (optionally with a query string) that the policy's signedUrls gate accepts
until it expires. The HMAC key is read from the environment variable the policy names in
signedUrls.secret; the encoding and parameter names come from the policy.

  --ttl <duration>   how long the URL stays valid (default 1h), e.g. 30m, 2h, 7d
  --expires <unix>   an exact expiry in Unix seconds instead of --ttl
  --ip <addr>        bind the URL to this client address (the edge's $remote_addr)
  --base <url>       prefix for the printed URL, e.g. https://cdn.example.com

Exit codes: 0 printed, 1 invalid policy / no signedUrls gate / key not set, 2 usage error.`;

/** The latest expiry the gate accepts: 12 digits of Unix seconds. */
export const MAX_EXPIRES = 999_999_999_999;

/** A usage problem (exit 2). */
export class SignUsageError extends Error {}

function inSet(set: PathSetData, path: string): boolean {
  return set.exact[path] === true || set.prefix.some((p) => path.startsWith(p)) || set.re.some((re) => new RegExp(re).test(path));
}

/** `cdn-build sign`; returns the exit code. */
export async function runSign(args: string[], io: { out: (s: string) => void; err: (s: string) => void; env: NodeJS.ProcessEnv; now: () => number }): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ttl: { type: "string" },
      expires: { type: "string" },
      ip: { type: "string" },
      base: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    io.out(SIGN_HELP + "\n");
    return 0;
  }
  if (positionals.length !== 2) throw new SignUsageError("sign takes a policy file and a path");
  const path = positionals[1]!;
  if (!path.startsWith("/")) throw new SignUsageError(`the path must start with "/" (got "${path}")`);
  if (values.ttl !== undefined && values.expires !== undefined) throw new SignUsageError("give --ttl or --expires, not both");
  let expires: number;
  if (values.expires !== undefined) {
    if (!/^[0-9]{1,12}$/.test(values.expires)) throw new SignUsageError(`--expires must be Unix seconds (got "${values.expires}")`);
    expires = Number(values.expires);
  } else {
    const ms = durationMs(values.ttl ?? "1h");
    if (ms === undefined || ms === 0 || ms % 1000 !== 0) throw new SignUsageError(`--ttl must be a duration in whole seconds like 30m, 1h, 7d (got "${values.ttl}")`);
    expires = Math.floor(io.now() / 1000) + ms / 1000;
  }
  // the gate reads at most 12 digits (lua-src/features/signed-urls.ts): a later expiry would print a URL it refuses
  if (expires > MAX_EXPIRES) throw new SignUsageError(`the expiry ${expires} is past what the gate accepts (Unix seconds of at most 12 digits, ${MAX_EXPIRES}): use a shorter --ttl`);
  if (values.ip !== undefined && isIP(values.ip) === 0) throw new SignUsageError(`--ip must be an IPv4 or IPv6 address (got "${values.ip}")`);
  let base = "";
  if (values.base !== undefined) {
    let u: URL;
    try {
      u = new URL(values.base);
    } catch {
      throw new SignUsageError(`--base must be an absolute URL like https://cdn.example.com (got "${values.base}")`);
    }
    if (u.search || u.hash) throw new SignUsageError("--base must not have a query or fragment");
    base = values.base.replace(/\/+$/, "");
  }

  const { loaded, diagnostics: loadDiags } = await loadPolicy(resolve(positionals[0]!));
  if (!loaded || hasErrors(loadDiags)) {
    for (const d of loadDiags) io.err(formatDiagnostic(d) + "\n");
    return 1;
  }
  const { policy, diagnostics } = validate(loaded.value);
  if (!policy) {
    for (const d of diagnostics) io.err(formatDiagnostic({ ...d, file: loaded.file }) + "\n");
    io.err("the policy is invalid; fix it first (cdn-build validate)\n");
    return 1;
  }
  const gate = policy.signedUrls;
  if (!gate) {
    io.err("error: the policy has no signedUrls gate\n");
    return 1;
  }
  const key = io.env[gate.secret.env];
  if (key === undefined || key === "") {
    io.err(`error: the environment variable ${gate.secret.env} (signedUrls.secret) is not set\n`);
    return 1;
  }
  const s = signedUrlSettings(gate);
  let url: string;
  try {
    url = signPath({ path, expires, key, ip: values.ip, settings: s });
  } catch (e) {
    throw new SignUsageError((e as Error).message);
  }
  const scope = lowerScope(gate);
  const pathOnly = url.slice(0, url.indexOf("?"));
  let decoded = pathOnly;
  try {
    decoded = decodeURIComponent(pathOnly);
  } catch {
    /* keep the raw path */
  }
  if (scope && ((scope.only && !inSet(scope.only, decoded)) || (scope.except && inSet(scope.except, decoded)))) {
    io.err(`note: ${decoded} is outside the gate's paths: the edge does not check signatures there\n`);
  }
  if (s.requireIp && values.ip === undefined) io.err("note: the gate requires IP-bound URLs (requireIp), so this URL will be refused: add --ip\n");
  io.out(base + url + "\n");
  return 0;
}
