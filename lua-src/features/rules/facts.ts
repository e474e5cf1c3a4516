/**
 * The facts of the current request the rules look at, read once and only when needed. Module-level state:
 * a worker runs one Lua handler at a time and nothing in the evaluation yields, so no table is allocated per
 * request.
 */

let factPath = "";
let factMethod: string | undefined;
let factHost: string | undefined;
let factExt: string | undefined;

/** Starts a request: its path is always needed, the rest is read on first use. */
export function beginFacts(path: string): void {
  factPath = path;
  factMethod = undefined;
  factHost = undefined;
  factExt = undefined;
}

/** nginx's decoded, normalised `$uri` at the start of the rules stage. */
export function path(): string {
  return factPath;
}

export function method(): string {
  if (factMethod === undefined) factMethod = ngx.req.get_method();
  return factMethod;
}

/** `$host`: lower case, without the port. */
export function host(): string {
  if (factHost === undefined) factHost = ngx.var.get("host") ?? "";
  return factHost;
}

/** The path's extension, lower case ("" when none). */
export function extension(): string {
  if (factExt === undefined) {
    // what follows the last "." of the last segment (the same as matching "%.([^%./]+)$", but a byte loop
    // LuaJIT compiles, where string.match would end the trace)
    factExt = "";
    const p = factPath;
    const n = p.length;
    for (let i = n; i >= 1; i--) {
      const b = string.byte(p, i);
      if (b === 47) break;
      if (b === 46) {
        if (i < n) factExt = string.lower(string.sub(p, i + 1));
        break;
      }
    }
  }
  return factExt;
}
