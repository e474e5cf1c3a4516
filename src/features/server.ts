import type { Feature } from "./shared/feature.js";
import { error, pointer, type Diagnostic } from "../validate/diagnostic.js";
import { checkUnique } from "../validate/checks.js";
import { isIP } from "node:net";

/** Largest `processes × connections` (about 450 bytes of connection table each, allocated at start). */
export const MAX_TOTAL_CONNECTIONS = 4_194_304;

/** Listen address, server names and worker settings. */
export const server: Feature = {
  name: "server",
  check(policy) {
    const out: Diagnostic[] = [];
    out.push(...checkUnique(policy.serverNames ?? [], (i) => pointer("serverNames", i), "server name"));
    const address = policy.listen?.address;
    if (address !== undefined && address.startsWith("[") !== address.endsWith("]")) {
      out.push(error("listenAddressBrackets", pointer("listen", "address"), "unbalanced brackets in the listen address", 'write IPv6 as "[::1]"'));
    } else if (address !== undefined && address !== "*") {
      const ok = address.startsWith("[") ? isIP(address.slice(1, -1)) === 6 : isIP(address) === 4;
      if (!ok) out.push(error("invalidListenAddress", pointer("listen", "address"), `"${address}" is not an IPv4 address or an IPv6 address in brackets`, 'e.g. "127.0.0.1", "[::1]" or "*"'));
    }
    const processes = policy.workers?.processes;
    if (typeof processes === "number" && !(Number.isInteger(processes) && processes >= 1 && processes <= 256)) {
      out.push(error("invalidWorkerProcesses", pointer("workers", "processes"), "worker processes must be a whole number from 1 to 256, or \"auto\"", 'e.g. 2 or "auto"'));
    } else if (typeof processes === "number" && processes * (policy.workers?.connections ?? 4096) > MAX_TOTAL_CONNECTIONS) {
      const c = policy.workers?.connections ?? 4096;
      out.push(
        error("tooManyConnections", pointer("workers", "connections"), `${processes} workers × ${c} connections is ${processes * c}, above ${MAX_TOTAL_CONNECTIONS}: each worker allocates its connection table when it starts`, `at most ${Math.floor(MAX_TOTAL_CONNECTIONS / processes)} connections with ${processes} workers`),
      );
    }
    return out;
  },
  lower(policy, ir) {
    const address = policy.listen?.address;
    ir.server.listen.push({ address: address === undefined || address === "*" ? null : address, port: policy.listen?.http ?? 80 });
    ir.server.serverNames = [...(policy.serverNames ?? [])];
    // with names, every other host gets 421 from a catch-all default server (docs/security.md#unknown-hosts)
    ir.server.catchAll = ir.server.serverNames.length > 0;
    // one server without TLS; the tls feature replaces it with one per certificate
    ir.server.blocks = [{ names: ir.server.serverNames, tls: null }];
    if (ir.server.catchAll) ir.slots.http.push({ partial: "server-names", data: namesHash(ir.server.serverNames) });
    const w = policy.workers ?? {};
    ir.main.user = w.user ?? null;
    ir.main.workerProcesses = w.processes === undefined ? "auto" : String(w.processes);
    ir.main.workerConnections = w.connections ?? 4096;
    ir.main.workerRlimitNofile = w.maxOpenFiles ?? rlimitNofileFor(ir.main.workerConnections);
    ir.main.multiAccept = w.multiAccept ?? false;
  },
};

/**
 * nginx's server-name hash sizes for `names`. The default bucket (64 bytes) refuses a name longer than about
 * 50 characters at `nginx -t` ("could not build server_names_hash"); a bucket holds four entries of the
 * longest name (an entry is a pointer, the length and the name with room for a wildcard's dots, aligned to
 * 8), rounded to the 64-byte cache line. Tested with 256 names of 253 characters, wildcards included.
 */
export function namesHash(names: readonly string[]): { bucketSize: number; maxSize: number } {
  const longest = Math.max(...names.map((n) => n.length));
  const entry = 8 + Math.ceil((longest + 4) / 8) * 8;
  return { bucketSize: Math.ceil(Math.max(64, 4 * entry + 8) / 64) * 64, maxSize: 1024 };
}

/**
 * Descriptors a worker needs for `connections`: every connection is a socket (a proxied request holds two,
 * client and upstream, both counted in worker_connections), and each may also hold a file (a cache object
 * being served, a temp file being filled); plus headroom for logs, shared cache files and cosockets.
 */
export function rlimitNofileFor(connections: number): number {
  return 2 * connections + 1024;
}
