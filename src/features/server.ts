import type { Feature } from "./shared/feature.js";
import { error, pointer, type Diagnostic } from "../validate/diagnostic.js";
import { checkUnique } from "../validate/checks.js";

/** Listen address, server names and worker settings. */
export const server: Feature = {
  name: "server",
  check(policy) {
    const out: Diagnostic[] = [];
    out.push(...checkUnique(policy.serverNames ?? [], (i) => pointer("serverNames", i), "server name"));
    const address = policy.listen?.address;
    if (address !== undefined && address.startsWith("[") !== address.endsWith("]")) {
      out.push(error("listenAddressBrackets", pointer("listen", "address"), "unbalanced brackets in the listen address", 'write IPv6 as "[::1]"'));
    }
    const processes = policy.workers?.processes;
    if (typeof processes === "number" && !(Number.isInteger(processes) && processes >= 1 && processes <= 1024)) {
      out.push(error("invalidWorkerProcesses", pointer("workers", "processes"), "worker processes must be a whole number from 1 to 1024, or \"auto\"", 'e.g. 2 or "auto"'));
    }
    return out;
  },
  lower(policy, ir) {
    const address = policy.listen?.address;
    ir.server.listen.push({ address: address === undefined || address === "*" ? null : address, port: policy.listen?.http ?? 80 });
    ir.server.serverNames = [...(policy.serverNames ?? [])];
    // with names, every other host gets 421 from a catch-all default server (docs/security.md#unknown-hosts)
    ir.server.catchAll = ir.server.serverNames.length > 0;
    const w = policy.workers ?? {};
    ir.main.user = w.user ?? null;
    ir.main.workerProcesses = w.processes === undefined ? "auto" : String(w.processes);
    ir.main.workerConnections = w.connections ?? 4096;
    ir.main.workerRlimitNofile = rlimitNofileFor(ir.main.workerConnections);
  },
};

/**
 * Descriptors a worker needs for `connections`: every connection is a socket (a proxied request holds two,
 * client and upstream, both counted in worker_connections), and each may also hold a file (a cache object
 * being served, a temp file being filled); plus headroom for logs, shared cache files and cosockets.
 */
export function rlimitNofileFor(connections: number): number {
  return 2 * connections + 1024;
}
