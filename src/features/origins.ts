import type { Feature } from "./shared/feature.js";
import { clientAddrVar } from "./client-address.js";
import type { Origin, Policy } from "../policy/types.js";
import { error, pointer, type Diagnostic } from "../validate/diagnostic.js";
import { checkDuration } from "../validate/checks.js";
import { routedPools } from "./rules/routing.js";

const ORIGIN_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,62}$/;

/** The origin pool requests go to by default (undefined when the policy does not say and cannot be guessed). */
export function defaultOriginName(policy: Policy): string | undefined {
  if (policy.defaultOrigin !== undefined) return policy.defaultOrigin;
  const names = Object.keys(policy.origins);
  return names.length === 1 ? names[0] : undefined;
}

export function upstreamName(origin: string): string {
  return `origin_${origin}`;
}

function checkOrigin(name: string, origin: Origin): Diagnostic[] {
  const out: Diagnostic[] = [];
  const at = (...s: (string | number)[]) => pointer("origins", name, ...s);
  if (!ORIGIN_NAME.test(name)) {
    out.push(error("invalidOriginName", at(), `origin name "${name}" is not allowed`, "start with a letter; use letters, digits, '_' and '-' (at most 63)"));
  }
  if (origin.servers.length > 0 && origin.servers.every((s) => s.backup)) {
    out.push(error("onlyBackupServers", at("servers"), `origin "${name}" has only backup servers`, "mark at least one server as not backup"));
  }
  const seen = new Set<string>();
  origin.servers.forEach((s, i) => {
    if (seen.has(s.address)) out.push(error("duplicateServer", at("servers", i, "address"), `server "${s.address}" is listed twice in origin "${name}"`, "remove the duplicate"));
    seen.add(s.address);
    const port = Number(s.address.slice(s.address.lastIndexOf(":") + 1));
    if (!(port >= 1 && port <= 65535)) out.push(error("serverPortOutOfRange", at("servers", i, "address"), `port of "${s.address}" is out of range`, "use a port from 1 to 65535"));
    out.push(...checkDuration(s.failTimeout, at("servers", i, "failTimeout")));
    if (s.backup && s.weight !== undefined && s.weight !== 1) {
      out.push(error("backupServerWeight", at("servers", i, "weight"), "a backup server cannot have a weight", "remove weight, or make the server not backup"));
    }
  });
  out.push(...checkDuration(origin.connectTimeout, at("connectTimeout"), { timer: true }));
  out.push(...checkDuration(origin.readTimeout, at("readTimeout"), { timer: true }));
  out.push(...checkDuration(origin.sendTimeout, at("sendTimeout"), { timer: true }));
  return out;
}

/** Named upstream pools; the default pool's proxy settings in `location /`. */
export const origins: Feature = {
  name: "origins",
  check(policy) {
    const out: Diagnostic[] = [];
    const names = Object.keys(policy.origins);
    if (names.length === 0) out.push(error("noOrigins", pointer("origins"), "no origin is defined", 'add one, e.g. origins: { app: { servers: [{ address: "127.0.0.1:3000" }] } }'));
    for (const name of names) out.push(...checkOrigin(name, policy.origins[name]!));
    if (policy.defaultOrigin !== undefined && !(policy.defaultOrigin in policy.origins)) {
      out.push(error("unknownDefaultOrigin", pointer("defaultOrigin"), `unknown origin "${policy.defaultOrigin}"`, `use one of: ${names.join(", ") || "(none defined)"}`));
    }
    if (policy.defaultOrigin === undefined && names.length > 1) {
      out.push(error("noDefaultOrigin", pointer("defaultOrigin"), "several origins are defined but none is the default", `set defaultOrigin to one of: ${names.join(", ")}`));
    }
    return out;
  },
  lower(policy, ir) {
    for (const name of Object.keys(policy.origins).sort()) {
      const o = policy.origins[name]!;
      ir.slots.http.push({
        partial: "origins-upstream",
        data: {
          name: upstreamName(name),
          keepalive: o.keepalive ?? 32,
          servers: o.servers.map((s) => ({
            address: s.address,
            weight: s.backup ? null : s.weight ?? 1,
            backup: s.backup ?? false,
            maxFails: s.maxFails ?? 1,
            failTimeout: s.failTimeout ?? "10s",
          })),
        },
      });
    }
    const name = defaultOriginName(policy)!;
    const o = policy.origins[name]!;
    const routed = routedPools(policy);
    ir.slots.proxy.push({
      partial: "origins",
      data: {
        scheme: o.scheme ?? "http",
        upstream: upstreamName(name),
        hostHeader: o.hostHeader ?? null,
        connectTimeout: o.connectTimeout ?? "5s",
        readTimeout: o.readTimeout ?? "60s",
        sendTimeout: o.sendTimeout ?? "60s",
        tries: (o.retries ?? 1) + 1,
        tls: (o.scheme ?? "http") === "https" || routed.some((p) => policy.origins[p]?.scheme === "https"),
        // rules route per request: proxy_pass $cdn_origin_url, Host from the routed pool (see features/rules.ts)
        routed: routed.length > 0,
        clientVar: clientAddrVar(policy),
      },
    });
  },
};
