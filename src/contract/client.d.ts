/** Client limits the runtime enforces (src/features/client.ts -> lua-src/features/client.ts, lua-src/core/body.ts). */
export interface ClientData {
  /** Seconds a request body may take to arrive in total (0: no deadline). */
  deadline: number;
  /** Seconds of the longest pause between two reads of a body (client_body_timeout). */
  readTimeout: number;
  /** The policy's body size limit in bytes, for requests no rule gave one. */
  maxBody: number;
  /** nginx's client_max_body_size in bytes: the largest limit of the policy; Lua enforces the lower ones. */
  nginxMax: number;
  /** Some rule has its own body size limit (ngx.ctx.cdn_body_limit, set by the rules engine). */
  ruleLimits: boolean;
}
