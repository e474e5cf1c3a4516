import type { HeaderValueData } from "../../src/contract/index";
import { readEnv } from "./env";

/**
 * Header values of the policy (headers.*.set, rules' requestHeaders / responseHeaders): a fixed string, a
 * value read per request from an nginx variable (client address, request id, country, query argument,
 * cookie, request header), or an environment variable read once at start. A value read per request is
 * cleaned of control characters (a query argument is URL-decoded first); an empty or missing one sets no
 * header, and on a request removes the client's own (it must not pass for the edge's).
 */

/** A prepared value: a string, a variable to read, or `false` (an environment variable that is not set). */
export type PreparedValue = string | false | { var: NgxVarName; decode?: boolean };

/** Resolves the environment variables of a `set` list (setup, in the master at init). */
export function prepareSet(this: void, set: [string, HeaderValueData][], what: string): [string, PreparedValue][] {
  const out: [string, PreparedValue][] = [];
  for (const [name, v] of set) {
    if (typeof v === "string") out.push([name, v]);
    else if (v.env !== undefined) {
      const value = readEnv(v.env);
      if (value === undefined) ngx.log(ngx.WARN, what, ": the environment variable ", v.env, " for ", name, " is not set: the header is not sent");
      out.push([name, value ?? false]);
    } else out.push([name, { var: v.var as NgxVarName, decode: v.decode }]);
  }
  return out;
}

/** The value of nginx variable `name` for the current request, cleaned (undefined when empty or missing). */
function readVar(this: void, name: NgxVarName, decode: boolean | undefined): string | undefined {
  const raw = ngx.var.get(name);
  if (raw === undefined || raw === "") return undefined;
  const s = decode === true ? ngx.unescape_uri(raw) : raw;
  const [clean] = string.gsub(s, "%c", "");
  return clean === "" ? undefined : clean;
}

/** The value of a prepared value for the current request (undefined: send no header). */
export function valueNow(this: void, v: PreparedValue): string | undefined {
  if (typeof v === "string") return v;
  if (v === false) return undefined;
  return readVar(v.var, v.decode);
}

// environment variables of the rules' values, read on first use (a worker's environment is the master's)
const envCache = new LuaTable<string, string | false>();

/** The value of a header value as the policy data holds it, for the current request (the rules' values). */
export function dataNow(this: void, v: HeaderValueData): string | undefined {
  if (typeof v === "string") return v;
  if (v.env !== undefined) {
    let e = envCache.get(v.env);
    if (e === undefined) {
      e = readEnv(v.env) ?? false;
      envCache.set(v.env, e);
    }
    return e === false ? undefined : e;
  }
  return readVar(v.var as NgxVarName, v.decode);
}
