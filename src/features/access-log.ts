import type { Feature } from "./shared/feature.js";
import { error, pointer } from "../validate/diagnostic.js";
import { systemDirOf } from "../validate/host-paths.js";
import { clientAddrVar } from "./client-address.js";
import { isIP } from "node:net";

/** Why a syslog server (already matching the schema's pattern) would not load, or undefined. */
function badSyslogServer(server: string): string | undefined {
  if (server.startsWith("unix:")) return undefined;
  const m = /^(localhost|[0-9.]+|\[([^\]]+)\])(?::([0-9]+))?$/.exec(server);
  if (!m) return "not an address";
  if (m[3] !== undefined && (Number(m[3]) < 1 || Number(m[3]) > 65535)) return `port ${m[3]} is outside 1-65535`;
  if (m[1] === "localhost") return undefined;
  if (m[2] !== undefined ? isIP(m[2]) !== 6 : isIP(m[1]!) !== 4) return `${m[1]} is not an IP address`;
  return undefined;
}

/** Fields of the JSON access log that nginx always fills with a number: written unquoted. */
const NUMERIC = new Set(["status", "bytes", "duration"]);
import { requestIdVar } from "./request-id.js";

/** Fields of the JSON access log: name -> nginx variable. */
const JSON_FIELDS: [string, string][] = [
  ["time", "$time_iso8601"],
  ["client", "$remote_addr"],
  ["method", "$request_method"],
  ["host", "$host"],
  ["uri", "$request_uri"],
  ["status", "$status"],
  ["bytes", "$body_bytes_sent"],
  ["duration", "$request_time"],
  ["cache", "$upstream_cache_status"],
  ["upstream", "$upstream_addr"],
  ["upstreamStatus", "$upstream_status"],
  ["upstreamTime", "$upstream_response_time"],
  ["upstreamConnectTime", "$upstream_connect_time"],
  ["referer", "$http_referer"],
  ["userAgent", "$http_user_agent"],
  ["requestId", "$request_id"],
];

/** The access log: JSON lines (default), nginx's combined format, or off. */
export const accessLog: Feature = {
  name: "access-log",
  check(policy) {
    const path = policy.accessLog?.path;
    if (path !== undefined && path.split("/").includes("..")) {
      return [error("accessLogPathDotDot", pointer("accessLog", "path"), "the log path must not contain '..'", 'use a path inside the bundle like "logs/access.log", or an absolute path')];
    }
    const system = path === undefined ? undefined : systemDirOf(path, "log");
    if (system !== undefined) {
      return [error("systemPath", pointer("accessLog", "path"), `the access log "${path}" is in the system directory ${system}: nginx would append to a file it does not own`, 'use "logs/access.log" (in the bundle), e.g. "/var/log/edge/access.log", or "/dev/stdout"')];
    }
    const bad = policy.accessLog?.syslog === undefined ? undefined : badSyslogServer(policy.accessLog.syslog.server);
    if (bad !== undefined) {
      return [error("accessLogSyslogServer", pointer("accessLog", "syslog", "server"), `"${policy.accessLog!.syslog!.server}": ${bad}`, 'e.g. "127.0.0.1:514", "[::1]:514" or "unix:/dev/log"')];
    }
    if (policy.accessLog?.syslog !== undefined && policy.accessLog.format === "off") {
      return [error("accessLogSyslogOff", pointer("accessLog", "syslog"), "the access log is off, so nothing would be sent to syslog", 'remove `syslog`, or set `format` to "json" or "combined"')];
    }
    return [];
  },
  lower(policy, ir) {
    const format = policy.accessLog?.format ?? "json";
    // with a cache, the cache status comes from the cache feature (it knows the RAM tier)
    // the client behind trusted proxies comes from the runtime (./client-address.ts)
    const fields = JSON_FIELDS.map(([k, v]): [string, string] => [k, k === "cache" && policy.cache ? "$cdn_cache_status" : k === "client" ? "$" + clientAddrVar(policy) : k === "requestId" ? "$" + requestIdVar(policy) : v]);
    // the log hook's fields (src/features/hooks.ts)
    if (policy.hooks?.log) fields.push(["hook", "$cdn_hook_log"]);
    // numbers as JSON numbers; the upstream fields stay strings ("" without an upstream, lists on retries)
    const json = "{" + fields.map(([k, v]) => (NUMERIC.has(k) ? `"${k}":${v}` : `"${k}":"${v}"`)).join(",") + "}";
    const s = policy.accessLog?.syslog;
    ir.slots.http.push({
      partial: "access-log",
      data: {
        path: policy.accessLog?.path ?? "logs/access.log",
        json: format === "json" ? json : null,
        combined: format === "combined",
        syslog: s && format !== "off" ? { server: s.server, facility: s.facility ?? "local7", tag: s.tag ?? "nginx" } : null,
      },
    });
  },
};
