/**
 * What every feature that matches regular expressions shares (the WAF, the rules engine, gate scopes).
 *
 * Patterns reach the runtime as the PCRE text the compiler rebuilt from their parsed form
 * (src/features/shared/regex/), so they are known to be in the dialect; they are still compiled here, one by
 * one, at init (in the master, before the workers fork): a pattern this PCRE refuses stops nginx from
 * starting (`nginx -t` included) with the rule named, instead of a bundle running without it.
 *
 * At match time PCRE may give up: `lua_regex_match_limit` (set in nginx.conf) caps the backtracking of one
 * match attempt ("pcre_exec() failed: -8"), and the JIT stack caps its depth (-27). Such a result is neither
 * a match nor a miss; each feature decides what it means (the WAF by its mode, the rules engine refuses, a
 * gate scope applies the gate), and says so in one line per worker every LIMIT_LOG_INTERVAL seconds at most.
 */

/** Bytes of PCRE's JIT stack per worker (lua-nginx-module's default, 32k, stops a group repeated a few thousand times). */
const JIT_STACK_SIZE = 1024 * 1024;
/** Seconds between two lines about matches PCRE gave up on, per worker and subject. */
export const LIMIT_LOG_INTERVAL = 10;

/** Sets the JIT stack size; must run before the first regex is compiled (at the start of init_by_lua). */
export function configureRegex(): void {
  const [ok, mod] = pcall(require, "ngx.re");
  if (!ok) return; // an ngx_lua without lua-resty-core's ngx.re: keep the default stack
  const [set, err] = pcall(() => (mod as { opt: (this: void, o: "jit_stack_size", v: number) => void }).opt("jit_stack_size", JIT_STACK_SIZE));
  if (!set) ngx.log(ngx.WARN, "cdn-build: cannot set the PCRE JIT stack size: ", tostring(err));
}

/**
 * Compiles a pattern with the options it runs with; a pattern PCRE refuses is an error that stops nginx from
 * starting, naming `what` (e.g. `waf rule no-admin`).
 */
export function compileOrFail(re: string, opts: string, what: string): void {
  const [, , err] = ngx.re.find("", re, opts);
  if (err !== undefined) error("cdn-build: " + what + ": the pattern does not compile (" + err + "); refusing to start without it", 0);
}

type TimerAt = (this: void, delay: number, cb: (this: void, premature: boolean, ...args: string[]) => void, ...args: string[]) => LuaMultiReturn<[boolean | undefined, string | undefined]>;
const timerAt = (ngx as unknown as { timer: { at: TimerAt } }).timer.at;

function writeWarn(this: void, _premature: boolean, line: string): void {
  ngx.log(ngx.WARN, line);
}

/**
 * Writes a warning from a zero-delay timer: a log call in the request would get nginx's request context
 * appended (the request line, which may hold the payload). Falls back to logging in the request when no timer
 * can be created.
 */
export function warnOutsideRequest(line: string): void {
  const [ok] = timerAt(0, writeWarn, line);
  if (!ok) writeWarn(false, line);
}

const lastLine = new LuaTable<string, number>();
const heldBack = new LuaTable<string, number>();

/**
 * A warning about a match PCRE gave up on, at most one per `key` per LIMIT_LOG_INTERVAL seconds per worker;
 * the next line counts the ones held back in between.
 */
export function warnLimited(key: string, line: string): void {
  const now = ngx.now();
  const last = lastLine.get(key);
  if (last !== undefined && now - last < LIMIT_LOG_INTERVAL) {
    heldBack.set(key, (heldBack.get(key) ?? 0) + 1);
    return;
  }
  const n = heldBack.get(key) ?? 0;
  lastLine.set(key, now);
  heldBack.set(key, 0);
  warnOutsideRequest(n > 0 ? line + " (" + n + " more since the last line)" : line);
}
