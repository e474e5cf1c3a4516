import type { Feature } from "./shared/feature.js";
import { error, pointer } from "../validate/diagnostic.js";
import { systemDirOf } from "../validate/host-paths.js";
import { clientAddrVar } from "./client-address.js";
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
    return [];
  },
  lower(policy, ir) {
    const format = policy.accessLog?.format ?? "json";
    // with a cache, the cache status comes from the cache feature (it knows the RAM tier)
    // the client behind trusted proxies comes from the runtime (./client-address.ts)
    const fields = JSON_FIELDS.map(([k, v]): [string, string] => [k, k === "cache" && policy.cache ? "$cdn_cache_status" : k === "client" ? "$" + clientAddrVar(policy) : k === "requestId" ? "$" + requestIdVar(policy) : v]);
    const json = "{" + fields.map(([k, v]) => `"${k}":"${v}"`).join(",") + "}";
    ir.slots.http.push({
      partial: "access-log",
      data: { path: policy.accessLog?.path ?? "logs/access.log", json: format === "json" ? json : null, combined: format === "combined" },
    });
  },
};
