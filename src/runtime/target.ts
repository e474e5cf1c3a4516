/**
 * `--target auto`: the CLI picks the target from the runtime found on this machine (`findNginx()`).
 * `compile()` itself never guesses: its target is always explicit.
 */
import type { Target } from "../ir/targets.js";
import type { NginxBinary } from "./nginx.js";

/** The target for a bundle built on a machine where `findNginx()` returned `found`, and why. */
export function autoTarget(found: NginxBinary | undefined): { target: Target; reason: string } {
  if (found?.kind === "openresty") return { target: "openresty", reason: `found OpenResty (${found.path}, ${found.version})` };
  if (found?.kind === "nginx-lua") {
    return { target: "nginx-lua", reason: `found nginx with libnginx-mod-http-lua (${found.path}, ${found.version}); use --target openresty to build for OpenResty` };
  }
  return { target: "openresty", reason: "no OpenResty or nginx with the Lua module on this machine, so the production default" };
}
