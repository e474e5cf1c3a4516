import type { LuaFeature } from "../core/feature";
import { readEnv } from "../core/env";
import { compileScope } from "../core/gate-scope";
import { refuse } from "../core/gate-deny";
import { clientAddress } from "../core/client-address";
import * as bitlib from "bit";

/**
 * Origin secret gate: the request must carry one of the accepted secrets in the policy's header.
 *
 * The secrets are read from the environment once, in init_by_lua (the bundle only names the variables).
 * When none is set the gate fails closed: it refuses every request, and worker 0 logs one error at start. The
 * comparison runs over every byte of every accepted secret whatever the input, so its time does not tell
 * how much of a guess was right. The header is removed before the request goes to the origin by nginx
 * itself (`proxy_set_header <header> "";` in the proxy locations), which costs less than clearing it here.
 */

const bxor = bitlib.bxor;
const bor = bitlib.bor;
const byte = string.byte;

/** 0 when `a` equals `secret`; the loop always walks the whole secret (no early exit). */
function diff(a: string, secret: string): number {
  const n = secret.length;
  let d = a.length === n ? 0 : 1;
  const al = a.length;
  for (let i = 1; i <= n; i++) {
    // past the end of `a`, compare against a byte that differs from the secret's, keeping the same work
    const x = i <= al ? byte(a, i) : bxor(byte(secret, i), 0xff);
    d = bor(d, bxor(x, byte(secret, i)));
  }
  return d;
}

function isLoopback(addr: string | undefined): boolean {
  return addr === "127.0.0.1" || addr === "::1" || addr === "::ffff:127.0.0.1";
}

export const originSecret: LuaFeature<"originSecret"> = {
  key: "originSecret",
  setup(data) {
    const secrets: string[] = [];
    const missing: string[] = [];
    for (const name of data.envs) {
      const v = readEnv(name);
      if (v === undefined) missing.push(name);
      else secrets.push(v);
    }
    const failClosed = secrets.length === 0;
    // logged from worker 0's init_worker: at init_by_lua time the error log of the bundle is not open yet
    const report = () => {
      if (ngx.worker.id() !== 0) return;
      if (failClosed) {
        ngx.log(ngx.ERR, "origin-secret: environment variable ", table.concat(missing, ", "), " is not set; refusing every request (fail closed)");
      } else if (missing.length > 0) {
        ngx.log(ngx.WARN, "origin-secret: environment variable ", table.concat(missing, ", "), " is not set; accepting the other secrets");
      }
    };
    const count = secrets.length;
    const headerVar = data.headerVar;
    const loopback = data.loopback;
    const inScope = compileScope(data.scope);
    return {
      initWorker: { "origin-secret": report },
      access: {
        "gate:secret": () => {
        if (!inScope()) return;
        const vars = ngx.var;
        if (loopback && isLoopback(clientAddress())) return;
        if (failClosed) return refuse(403, "origin-secret");
        const got = vars.get(headerVar);
        if (got === undefined) return refuse(403, "origin-secret");
        let ok = false;
        for (let i = 0; i < count; i++) {
          if (diff(got, secrets[i]) === 0) ok = true; // no break: every secret is compared
        }
        if (!ok) return refuse(403, "origin-secret");
        },
      },
    };
  },
};
