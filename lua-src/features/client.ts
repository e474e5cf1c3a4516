import type { LuaFeature } from "../core/feature";
import { bodySize, readBody } from "../core/body";

/**
 * Client limits at run time (policy `client`, and rules' `maxBodySize`): after the rules engine (a rule may
 * set the request's body size limit in ngx.ctx.cdn_body_limit), a request with a body is held to its limit
 * (413) and its body read within the total deadline (core/body.ts). nginx's own client_max_body_size is the
 * largest limit of the policy; this enforces the lower ones. A request without a body costs two variable reads.
 */
export const client: LuaFeature<"client"> = {
  key: "client",
  setup(data) {
    const maxBody = data.maxBody;
    const nginxMax = data.nginxMax;
    const ruleLimits = data.ruleLimits;
    const deadline = data.deadline > 0;
    return {
      access: {
        "client:body": () => {
          const vars = ngx.var;
          const cl = vars.get("http_content_length");
          const te = cl === undefined ? vars.get("http_transfer_encoding") : undefined;
          if (cl === undefined && te === undefined) return;
          let limit = maxBody;
          if (ruleLimits) {
            const l = ngx.ctx.get("cdn_body_limit") as number | undefined;
            if (l !== undefined) limit = l;
          }
          if (limit < nginxMax) {
            const n = tonumber(cl ?? "");
            if (n !== undefined && n > limit) return ngx.exit(413);
            if (n === undefined) {
              // chunked: its size is known once nginx has read it
              ngx.req.read_body();
              if (bodySize() > limit) return ngx.exit(413);
              return;
            }
          }
          if (deadline) readBody();
        },
      },
    };
  },
};
