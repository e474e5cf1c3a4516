import type { Feature } from "./shared/feature.js";
import { useEnv } from "../ir/env.js";
import { error, pointer, type Diagnostic } from "../validate/diagnostic.js";
import { checkScope } from "./shared/gate-scope.js";
import { headerVar } from "../util/nginx-var.js";
import { lowerScope } from "./shared/gate-scope.js";

export const DEFAULT_SECRET_HEADER = "X-Origin-Secret";

/** Headers that cannot carry the secret: nginx or the proxy module rewrite them, or they are hop-by-hop. */
const RESERVED = new Set(["host", "content-length", "content-type", "transfer-encoding", "connection", "cookie", "authorization", "x-forwarded-for", "x-real-ip", "upgrade", "te", "expect"]);

/**
 * Origin secret gate (policy `originSecret`): the request must carry one of the secrets (read from the
 * environment at nginx start) in a header; lowered to Lua data naming the variables, never the values.
 */
export const originSecret: Feature = {
  name: "origin-secret",
  runtime: { key: "originSecret", stages: { access: { "gate:secret": true }, initWorker: { "origin-secret": true } } },
  check(policy) {
    const g = policy.originSecret;
    if (!g) return [];
    const at = pointer("originSecret");
    const out: Diagnostic[] = [...checkScope(g, at)];
    if (g.secret === undefined && (g.secrets === undefined || g.secrets.length === 0)) {
      out.push(error("originSecretMissing", at, "the origin secret gate names no secret", 'add `secret: env("EDGE_SECRET")` (YAML: `secret: { env: EDGE_SECRET }`)'));
    }
    if (g.secret !== undefined && g.secrets !== undefined) {
      out.push(error("originSecretBothForms", pointer("originSecret", "secrets"), "give either `secret` or `secrets`, not both", "move the single secret into the `secrets` list"));
    }
    const seen = new Set<string>();
    (g.secrets ?? []).forEach((s, i) => {
      if (seen.has(s.env)) out.push(error("originSecretDuplicateEnv", pointer("originSecret", "secrets", i), `environment variable ${s.env} is listed twice`, "list each variable once"));
      seen.add(s.env);
    });
    const header = g.header ?? DEFAULT_SECRET_HEADER;
    // the name follows the one header-name rule (letters, digits, "-"), checked by the schema (src/util/header-name.ts)
    if (RESERVED.has(header.toLowerCase())) {
      out.push(error("originSecretReservedHeader", pointer("originSecret", "header"), `"${header}" cannot carry the origin secret (nginx or proxies use it)`, `use a dedicated header, e.g. "${DEFAULT_SECRET_HEADER}"`));
    }
    return out;
  },
  lower(policy, ir) {
    const g = policy.originSecret;
    if (!g) return;
    const refs = g.secrets ?? (g.secret ? [g.secret] : []);
    const header = g.header ?? DEFAULT_SECRET_HEADER;
    ir.slots.proxy.push({ partial: "origin-secret", data: { header } });
    ir.luaData.originSecret = {
      header,
      headerVar: headerVar(header),
      envs: refs.map((r) => useEnv(ir, r)),
      loopback: g.allowLoopback ?? false,
      scope: lowerScope(g),
    };
  },
};
