import type { Feature } from "./shared/feature.js";
import type { ClientLimits, Policy } from "../policy/types.js";
import { error, pointer, warning, type Diagnostic } from "../validate/diagnostic.js";
import { checkDuration, checkSize } from "../validate/checks.js";
import { durationMs, sizeBytes } from "../util/units.js";

/** The largest body size limit accepted (nginx counts it in an off_t; beyond this it is a typo). */
export const MAX_BODY_SIZE = 64 * 1024 ** 3;

/** What a CDN edge picks when the policy says nothing (docs/edge.md#client-limits). */
export const CLIENT_DEFAULTS = {
  headerTimeout: "5s",
  bodyTimeout: "10s",
  bodyDeadline: "60s",
  sendTimeout: "10s",
  keepaliveTimeout: "30s",
  keepaliveRequests: 1000,
  maxBodySize: "10m",
  headerBuffers: { count: 4, size: "8k" },
} as const;

/** What `templates/partials/client.hbs` renders (inside `http {}`). */
export interface ClientPart {
  headerTimeout: string;
  bodyTimeout: string;
  sendTimeout: string;
  keepaliveTimeout: string;
  keepaliveRequests: number;
  /** client_max_body_size: the largest limit of the policy (its own and its rules'), in bytes. */
  maxBodySize: number;
  headerBuffers: { count: number; size: string };
  /** limit_conn per peer address, or null. */
  connections: number | null;
  /** Discarding the body of a refused request stops after this (lingering_time). */
  lingeringTime: string;
}

/** The body size limits of the policy's rules, in bytes. */
function ruleLimits(policy: Policy): number[] {
  return (policy.rules ?? []).flatMap((r) => (r.then.maxBodySize === undefined ? [] : [sizeBytes(r.then.maxBodySize)!]));
}

/** nginx's duration for a policy duration, in seconds or milliseconds. */
function nginxTime(d: string): string {
  const ms = durationMs(d)!;
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** The partial's data. */
export function clientPart(policy: Policy): ClientPart {
  const c: ClientLimits = policy.client ?? {};
  const maxBody = sizeBytes(c.maxBodySize ?? CLIENT_DEFAULTS.maxBodySize)!;
  const bodyTimeout = c.bodyTimeout ?? CLIENT_DEFAULTS.bodyTimeout;
  return {
    headerTimeout: nginxTime(c.headerTimeout ?? CLIENT_DEFAULTS.headerTimeout),
    bodyTimeout: nginxTime(bodyTimeout),
    sendTimeout: nginxTime(c.sendTimeout ?? CLIENT_DEFAULTS.sendTimeout),
    keepaliveTimeout: nginxTime(c.keepaliveTimeout ?? CLIENT_DEFAULTS.keepaliveTimeout),
    keepaliveRequests: c.keepaliveRequests ?? CLIENT_DEFAULTS.keepaliveRequests,
    maxBodySize: Math.max(maxBody, ...ruleLimits(policy)),
    headerBuffers: {
      count: c.headerBuffers?.count ?? CLIENT_DEFAULTS.headerBuffers.count,
      size: c.headerBuffers?.size ?? CLIENT_DEFAULTS.headerBuffers.size,
    },
    connections: c.connectionsPerAddress ?? null,
    lingeringTime: nginxTime(bodyTimeout),
  };
}

/**
 * Limits and timeouts for clients: nginx's own (header, body and send timeouts, keep-alive, body size,
 * header buffers, connections per address) and, in Lua, a total deadline for request bodies and the body
 * size limits of rules.
 */
export const client: Feature = {
  name: "client",
  check(policy) {
    const out: Diagnostic[] = [];
    const c = policy.client;
    if (c) {
      const at = (...k: string[]) => pointer("client", ...k);
      for (const k of ["headerTimeout", "bodyTimeout", "sendTimeout", "keepaliveTimeout"] as const) out.push(...checkDuration(c[k], at(k), { timer: true }));
      if (c.bodyDeadline !== false) out.push(...checkDuration(c.bodyDeadline, at("bodyDeadline"), { timer: true }));
      out.push(...checkSize(c.maxBodySize, at("maxBodySize"), { max: MAX_BODY_SIZE, maxText: '"64g"' }));
      out.push(...checkSize(c.headerBuffers?.size, at("headerBuffers", "size"), { min: 1024, minText: '"1k"', max: 1024 * 1024, maxText: '"1m"' }));
      const deadline = c.bodyDeadline === false ? undefined : durationMs(c.bodyDeadline ?? CLIENT_DEFAULTS.bodyDeadline);
      const perRead = durationMs(c.bodyTimeout ?? CLIENT_DEFAULTS.bodyTimeout);
      if (deadline !== undefined && perRead !== undefined && deadline < perRead) {
        out.push(error("bodyDeadlineBelowTimeout", at("bodyDeadline"), `the body deadline (${c.bodyDeadline ?? CLIENT_DEFAULTS.bodyDeadline}) is shorter than the pause allowed between two reads (${c.bodyTimeout ?? CLIENT_DEFAULTS.bodyTimeout})`, "make bodyDeadline at least bodyTimeout"));
      }
      if (c.connectionsPerAddress !== undefined && (policy.clientAddress?.trustedProxies.length ?? 0) > 0) {
        out.push(warning("connectionsPerProxy", at("connectionsPerAddress"), "connections are counted per peer address: every client behind a trusted proxy shares that proxy's count", "raise the limit to what one proxy carries, or remove it"));
      }
    }
    return out;
  },
  lower(policy, ir) {
    const part = clientPart(policy);
    const c = policy.client ?? {};
    ir.slots.http.push({ partial: "client", data: part });
    if (part.connections !== null) ir.slots.server.push({ partial: "client-conn", data: part });
    const deadline = c.bodyDeadline === false ? 0 : durationMs(c.bodyDeadline ?? CLIENT_DEFAULTS.bodyDeadline)! / 1000;
    const maxBody = sizeBytes(c.maxBodySize ?? CLIENT_DEFAULTS.maxBodySize)!;
    // Lua runs only when it has something to do: a deadline, or a limit below nginx's (rules raised it)
    if (deadline > 0) ir.slots.proxy.push({ partial: "client-body", data: {} });
    const ruleLimit = ruleLimits(policy).length > 0;
    ir.luaData.client = { deadline, readTimeout: durationMs(c.bodyTimeout ?? CLIENT_DEFAULTS.bodyTimeout)! / 1000, maxBody, nginxMax: part.maxBodySize, ruleLimits: ruleLimit };
  },
  runtime: { key: "client", stages: { access: { "client:body": (d) => d.deadline > 0 || d.ruleLimits || d.maxBody < d.nginxMax } } },
};
