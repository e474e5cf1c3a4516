import * as ffi from "ffi";

/**
 * The few file-system calls the runtime needs beyond Lua's io library, through LuaJIT's FFI to libc
 * (Linux, glibc layouts): directories (create, give to the workers' user, list) and reading the start of a
 * file. Everything here is blocking and meant for init, timers and rare paths, never for every request.
 */

let loaded = false;
let ok = false;

function load(): boolean {
  if (loaded) return ok;
  loaded = true;
  const [defined] = pcall(() =>
    ffi.cdef(`
struct cdn_fs_dirent { uint64_t d_ino; int64_t d_off; unsigned short d_reclen; unsigned char d_type; char d_name[256]; };
struct cdn_fs_passwd { char *pw_name; char *pw_passwd; uint32_t pw_uid; uint32_t pw_gid; char *pw_gecos; char *pw_dir; char *pw_shell; };
void *opendir(const char *name);
struct cdn_fs_dirent *readdir(void *dirp);
int closedir(void *dirp);
int mkdir(const char *path, uint32_t mode);
int chown(const char *path, uint32_t owner, uint32_t group);
struct cdn_fs_passwd *getpwnam(const char *name);
uint32_t geteuid(void);
`),
  );
  ok = defined;
  return ok;
}

/** Names in a directory matching a Lua pattern ("." and ".." unless the pattern matches them). */
export function listDir(this: void, path: string, pattern: string): string[] {
  const out: string[] = [];
  if (!load()) return out;
  const dir = ffi.C.opendir(path);
  if (dir === undefined) return out;
  for (;;) {
    const e = ffi.C.readdir(dir);
    if (e === undefined) break;
    const name = ffi.string(e.d_name);
    const [s] = string.find(name, pattern);
    if (s !== undefined) out.push(name);
  }
  ffi.C.closedir(dir);
  return out;
}

/**
 * Makes sure `path` exists as a directory the workers can write: created (0755) if missing, and, when this
 * process is root (the master at init), owned by `user` (the workers' user). Returns an error or undefined.
 */
export function ensureWorkerDir(this: void, path: string, user: string): string | undefined {
  if (!load()) return "no FFI";
  ffi.C.mkdir(path, 493); // 0755; EEXIST is fine
  const [f] = io.open(path + "/.", "r");
  if (f === undefined) return "cannot create " + path;
  f.close();
  if (ffi.C.geteuid() !== 0) return undefined;
  const pw = ffi.C.getpwnam(user);
  if (pw === undefined) return "no user " + user;
  if (ffi.C.chown(path, pw.pw_uid, pw.pw_gid) !== 0) return "cannot give " + path + " to " + user;
  return undefined;
}

/** The first `max` bytes of a file, or undefined when it cannot be read. */
export function readStart(this: void, path: string, max: number): string | undefined {
  const [f] = io.open(path, "rb");
  if (f === undefined) return undefined;
  const data = f.read(max) as unknown as string | undefined;
  f.close();
  return data;
}

/** The whole file, or undefined. */
export function readAll(this: void, path: string): string | undefined {
  const [f] = io.open(path, "rb");
  if (f === undefined) return undefined;
  const data = f.read("*a") as unknown as string | undefined;
  f.close();
  return data;
}
