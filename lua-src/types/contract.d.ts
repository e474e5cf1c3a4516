/**
 * The runtime names of the contract (src/contract/names.d.ts) as global types for the ngx typings below:
 * `ngx.var`, `ngx.shared` and `ngx.ctx` only accept declared names (or request variables like `http_*`).
 */
import type { CdnVar, CtxKey, RequestVar, SharedDictName } from "../../src/contract/index";

declare global {
  /** nginx's own variables the runtime reads. */
  type NgxBuiltinVar =
    | "args"
    | "uri"
    | "request_uri"
    | "host"
    | "scheme"
    | "https"
    | "remote_addr"
    | "server_addr"
    | "server_port"
    | "content_length"
    | "request_completion"
    | "upstream_cache_status"
    | "upstream_status"
    | "upstream_addr"
    | "request_id"
    | "bytes_sent"
    | "upstream_response_time"
    | "upstream_bytes_received"
    | "request_time";
  type NgxVarName = CdnVar | RequestVar | NgxBuiltinVar | `upstream_http_${string}` | `sent_http_${string}`;
  type NgxSharedDictName = SharedDictName;
  type NgxCtxKey = CtxKey;
}
export {};
