import type { Feature } from "./shared/feature.js";
import { clientAddrVar } from "./client-address.js";
import type { Origin, Policy, RetryCondition } from "../policy/types.js";
import { error, pointer, warning, type Diagnostic } from "../validate/diagnostic.js";
import { checkDuration } from "../validate/checks.js";
import { durationMs } from "../util/units.js";
import { routedPools } from "./rules/routing.js";
import { strippedOverrides } from "./shared/override-headers.js";
import { isIP } from "node:net";
import { checkCaFile, checkCertificatePair } from "./tls.js";

const DNS_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** Why the host of a `host:port` server address is unusable, or undefined when nginx takes it. */
export function serverHostProblem(host: string): string | undefined {
  if (host.startsWith("[")) return host.endsWith("]") && isIP(host.slice(1, -1)) === 6 ? undefined : "is not an IPv6 address";
  if (/^[0-9.]+$/.test(host)) return isIP(host) === 4 ? undefined : "is not an IPv4 address (a name of digits and dots only)";
  if (host.length > 253) return "is longer than 253 characters";
  return host.split(".").every((l) => DNS_LABEL.test(l)) ? undefined : "is not a DNS name (labels of 1 to 63 letters, digits and '-', not starting or ending with '-')";
}

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

/**
 * Defaults of a pool. Why these (see docs/origins.md): nginx counts every `proxy_next_upstream` condition
 * as a failed attempt against `max_fails`, so retrying a status a live origin answers (503 under load)
 * would take healthy servers out and turn a one-second burst into `failTimeout` of 502s. Only connection
 * errors and timeouts, which mean the server is not there, are retried and counted; three of them within
 * ten seconds leave a server out. Idle connections are closed after 4 s, before the usual origin idle
 * timeouts (5 s for Node.js, Apache, uvicorn), so the edge rarely reuses one the origin is closing.
 */
export const ORIGIN_DEFAULTS = {
  keepalive: 32,
  keepaliveTimeout: "4s",
  keepaliveRequests: 1000,
  maxFails: 3,
  failTimeout: "10s",
  connectTimeout: "5s",
  readTimeout: "60s",
  sendTimeout: "60s",
  retries: 1,
  retryOn: ["error", "timeout"] as readonly RetryCondition[],
  retryTimeout: "10s",
} as const;

/** The CA bundle an HTTPS origin's certificate is verified against by default (Debian, Ubuntu, Alpine). */
export const SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";
/** How many intermediates may sit between an origin's certificate and its CA (nginx's own default is 1). */
export const ORIGIN_VERIFY_DEPTH = 3;

/**
 * The TLS settings of an HTTPS pool with defaults applied, as nginx takes them (`proxy_ssl_*`); null for a
 * plain HTTP pool. `name` is the SNI name and the name verified: `tls.serverName`, else the Host header sent,
 * else the servers' one DNS name, else null (the client's host, `$host`).
 */
export function originTls(o: Origin) {
  if ((o.scheme ?? "http") !== "https") return null;
  const t = o.tls ?? {};
  const hosts = [...new Set(o.servers.map((s) => s.address.slice(0, s.address.lastIndexOf(":")).toLowerCase()))];
  const dnsHost = hosts.length === 1 && !hosts[0]!.startsWith("[") && isIP(hosts[0]!) === 0 ? hosts[0]! : null;
  return {
    verify: t.insecureSkipVerify !== true,
    trustedCa: t.trustedCa ?? SYSTEM_CA_BUNDLE,
    verifyDepth: t.verifyDepth ?? ORIGIN_VERIFY_DEPTH,
    clientCertificate: t.clientCertificate ?? null,
    clientKey: t.clientKey ?? null,
    name: t.serverName ?? (o.hostHeader !== undefined ? o.hostHeader.replace(/:[0-9]+$/, "") : dnsHost),
  };
}

/** The `proxy_next_upstream` keywords of `retryOn`, in nginx's order ("off" for an empty list). */
export function nextUpstreamConditions(retryOn: readonly RetryCondition[]): string[] {
  const order = ["error", "timeout", "invalidHeader", 500, 502, 503, 504, 403, 404, 429] as const;
  const out = order.filter((c) => retryOn.includes(c)).map((c) => (c === "invalidHeader" ? "invalid_header" : typeof c === "number" ? `http_${c}` : c));
  return out.length === 0 ? ["off"] : out;
}

/**
 * The per-location proxy settings of a pool, with defaults applied: the settings a pool reached through
 * rules cannot have (nginx fixes them per location), compared by the rules engine's
 * `ruleRoutedPoolSettings` warning.
 */
export function proxySettings(o: Origin) {
  return {
    connectTimeout: o.connectTimeout ?? ORIGIN_DEFAULTS.connectTimeout,
    readTimeout: o.readTimeout ?? ORIGIN_DEFAULTS.readTimeout,
    sendTimeout: o.sendTimeout ?? ORIGIN_DEFAULTS.sendTimeout,
    retries: o.retries ?? ORIGIN_DEFAULTS.retries,
    retryOn: nextUpstreamConditions(o.retryOn ?? ORIGIN_DEFAULTS.retryOn).join(" "),
    retryTimeout: o.retryTimeout ?? ORIGIN_DEFAULTS.retryTimeout,
    // one set of proxy_ssl_* per location: compared as one value (the SNI name of a routed pool is its Host)
    // (a plain HTTP pool as the default: a routed HTTPS pool gets the defaults, see lower())
    tls: JSON.stringify({ ...originTls({ ...o, scheme: "https", tls: (o.scheme ?? "http") === "https" ? o.tls : undefined }), name: undefined }),
  };
}

function checkOriginTls(name: string, origin: Origin): Diagnostic[] {
  const t = origin.tls;
  if (!t) return [];
  const out: Diagnostic[] = [];
  const at = (...s: (string | number)[]) => pointer("origins", name, "tls", ...s);
  if ((origin.scheme ?? "http") !== "https") out.push(warning("originTlsWithoutHttps", at(), `origin "${name}" is reached over plain HTTP, so its tls settings do not apply`, 'set scheme: "https", or remove tls'));
  if (t.insecureSkipVerify) {
    out.push(warning("originTlsInsecure", at("insecureSkipVerify"), `origin "${name}": any certificate is accepted, so anyone on the path to the origin can read and change what the edge caches`, 'give the origin\'s CA with tls: { trustedCa: "/etc/edge/tls/origin-ca.pem" } instead'));
  }
  if (t.trustedCa !== undefined) out.push(...checkCaFile(t.trustedCa, at("trustedCa")));
  if ((t.clientCertificate === undefined) !== (t.clientKey === undefined)) {
    const missing = t.clientCertificate === undefined ? "clientCertificate" : "clientKey";
    out.push(error("originClientKeyPair", at(t.clientCertificate === undefined ? "clientKey" : "clientCertificate"), `origin "${name}": mutual TLS needs ${missing} too`, "give both clientCertificate and clientKey"));
  } else if (t.clientCertificate !== undefined && t.clientKey !== undefined) {
    out.push(...checkCertificatePair(t.clientCertificate, t.clientKey, at("clientCertificate"), at("clientKey")).diagnostics);
  }
  return out;
}

function checkRetries(name: string, origin: Origin): Diagnostic[] {
  const out: Diagnostic[] = [];
  const at = (...s: (string | number)[]) => pointer("origins", name, ...s);
  const retryOn = origin.retryOn;
  if (retryOn !== undefined && retryOn.length > 0 && !retryOn.includes("error")) {
    out.push(warning("retryOnWithoutError", at("retryOn"), `retryOn of origin "${name}" does not list "error": a refused or dropped connection is not retried on another server`, 'add "error" (and "timeout") to the list; it replaces the default ["error", "timeout"]'));
  }
  const serverCount = origin.servers.length;
  const counts = origin.servers.some((s) => (s.maxFails ?? origin.maxFails ?? ORIGIN_DEFAULTS.maxFails) > 0);
  if (retryOn !== undefined && serverCount > 1 && counts) {
    retryOn.forEach((c, i) => {
      if (c === 503 || c === 429) {
        out.push(warning("retryOnBackoffStatus", at("retryOn", i), `retrying ${c} in origin "${name}" counts each ${c} as a failed attempt: a short burst of ${c} from a live origin takes every server out for failTimeout`, `remove ${c} from retryOn, or set maxFails: 0 on the pool`));
      }
    });
  }
  if (retryOn !== undefined && retryOn.length > 0 && origin.retries === 0) {
    out.push(warning("retrySettingsContradict", at("retryOn"), `origin "${name}" has retries: 0, so retryOn never passes a request to another server`, "remove retryOn, or allow retries"));
  } else if (retryOn !== undefined && retryOn.length === 0 && origin.retries !== undefined && origin.retries > 0) {
    out.push(warning("retrySettingsContradict", at("retryOn"), `origin "${name}" has retryOn: [], so its retries: ${origin.retries} never apply`, "remove retries, or list what to retry on"));
  }
  const settings = proxySettings(origin);
  const budget = durationMs(settings.retryTimeout);
  const connect = durationMs(settings.connectTimeout);
  const retriesTimeouts = settings.retries > 0 && nextUpstreamConditions(origin.retryOn ?? ORIGIN_DEFAULTS.retryOn).includes("timeout");
  if (retriesTimeouts && budget !== undefined && connect !== undefined && budget > 0 && budget <= connect && serverCount > 1) {
    out.push(
      warning(
        "retryTimeoutBelowConnectTimeout",
        at("retryTimeout"),
        `retryTimeout ${settings.retryTimeout} of origin "${name}" is not longer than its connectTimeout ${settings.connectTimeout}: a server that does not answer the connect is never followed by another`,
        `make retryTimeout longer than ${settings.connectTimeout}, or "0s" for no limit`,
      ),
    );
  }
  return out;
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
    const host = s.address.slice(0, s.address.lastIndexOf(":"));
    const problem = serverHostProblem(host);
    if (problem) out.push(error("invalidServerAddress", at("servers", i, "address"), `the host "${host}" of "${s.address}" ${problem}`, 'e.g. "10.0.0.5:8080", "[2001:db8::5]:8080" or "app.internal:8080"'));
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
  out.push(...checkDuration(origin.failTimeout, at("failTimeout")));
  out.push(...checkDuration(origin.keepaliveTimeout, at("keepaliveTimeout"), { timer: true }));
  out.push(...checkDuration(origin.retryTimeout, at("retryTimeout"), { timer: true, allowZero: true }));
  out.push(...checkRetries(name, origin));
  out.push(...checkOriginTls(name, origin));
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
          keepalive: o.keepalive ?? ORIGIN_DEFAULTS.keepalive,
          keepaliveTimeout: o.keepaliveTimeout ?? ORIGIN_DEFAULTS.keepaliveTimeout,
          keepaliveRequests: o.keepaliveRequests ?? ORIGIN_DEFAULTS.keepaliveRequests,
          servers: o.servers.map((s) => ({
            address: s.address,
            weight: s.backup ? null : s.weight ?? 1,
            backup: s.backup ?? false,
            maxFails: s.maxFails ?? o.maxFails ?? ORIGIN_DEFAULTS.maxFails,
            failTimeout: s.failTimeout ?? o.failTimeout ?? ORIGIN_DEFAULTS.failTimeout,
          })),
        },
      });
    }
    // an origin that ignores case in paths: gate scopes must too (lua-src/core/gate-scope.ts)
    ir.pathMatching.caseInsensitive = Object.values(policy.origins).some((p) => p.caseInsensitivePaths === true);
    const name = defaultOriginName(policy)!;
    const o = policy.origins[name]!;
    const routed = routedPools(policy);
    const settings = proxySettings(o);
    ir.slots.proxy.push({
      partial: "origins",
      data: {
        scheme: o.scheme ?? "http",
        upstream: upstreamName(name),
        hostHeader: o.hostHeader ?? null,
        connectTimeout: settings.connectTimeout,
        readTimeout: settings.readTimeout,
        sendTimeout: settings.sendTimeout,
        nextUpstream: nextUpstreamConditions(o.retryOn ?? ORIGIN_DEFAULTS.retryOn),
        tries: settings.retries + 1,
        retryTimeout: settings.retryTimeout,
        // the default pool's TLS settings, or (default pool over HTTP) the defaults for a routed HTTPS pool
        tls: originTls(o) ?? (routed.some((p) => policy.origins[p]?.scheme === "https") ? originTls({ ...o, scheme: "https", tls: undefined }) : null),
        // rules route per request: proxy_pass $cdn_origin_url, Host from the routed pool (see features/rules.ts)
        routed: routed.length > 0,
        clientVar: clientAddrVar(policy),
        // forwarding and override headers never reach the origin (./shared/override-headers.ts)
        strip: strippedOverrides(policy),
        // WebSocket paths get a copy with the upgrade headers (./websocket.ts)
        upgrade: false,
      },
    });
  },
};
