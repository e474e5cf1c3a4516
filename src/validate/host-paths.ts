/**
 * File system paths a policy names on the edge host (the access log, the cache and state folders), checked
 * for footguns (security issue 11 §8): the system's own directories, where nginx would append to or (a
 * purge of everything) delete files it does not own.
 */

/** Directories of the system: nothing of the edge's belongs in them. `/usr/local/<x>` is the site's own. */
const SYSTEM = ["/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/root", "/run", "/sbin", "/sys", "/usr"];
/** Exceptions under a system directory: the standard streams for logs, and tmpfs (`/dev/shm/<x>`) for a cache. */
const LOG_DEVICES = new Set(["/dev/stdout", "/dev/stderr", "/dev/null"]);

/** `/a//b/` -> `/a/b` (the path is already free of `..`: checked before). */
function clean(path: string): string {
  const out = path.replace(/\/+/g, "/").replace(/\/\.(?=\/|$)/g, "").replace(/(.)\/$/, "$1");
  return out === "" ? "/" : out;
}

/** The system directory an absolute path is (or is inside), or undefined. */
export function systemDirOf(path: string, use: "log" | "cache"): string | undefined {
  if (!path.startsWith("/")) return undefined;
  const p = clean(path);
  if (p === "/") return "/";
  if (use === "log" && LOG_DEVICES.has(p)) return undefined;
  if (use === "cache" && p.startsWith("/dev/shm/")) return undefined;
  if (p === "/usr/local" || p.startsWith("/usr/local/")) return undefined;
  return SYSTEM.find((d) => p === d || p.startsWith(d + "/"));
}

/** Directories other programs share: a cache must live in a folder of its own below them. */
const SHARED = new Set(["/tmp", "/var", "/var/tmp", "/var/cache", "/var/lib", "/var/log", "/var/www", "/var/spool", "/home", "/srv", "/opt", "/mnt", "/media", "/data", "/dev/shm", "/usr/local"]);

/** The shared directory a cache path is itself (not a folder below it), or undefined. */
export function sharedDirOf(path: string): string | undefined {
  if (!path.startsWith("/")) return undefined;
  const p = clean(path);
  return SHARED.has(p) || /^\/[^/]+$/.test(p) ? p : undefined;
}
