/**
 * The runtime of the edge API (`cdn-build/edge`, declared in src/edge/api.d.ts): what a user's compiled hook
 * calls inside nginx. A hook's `import ... from "cdn-build/edge"` is rewritten at build time to require this
 * module (src/hooks/compile.ts).
 *
 * The request, response and log objects are singletons made once per worker: their methods are plain
 * functions reading the ngx API, and their properties (`path`, `status`...) are computed on access through
 * the metatable, so a hook pays only for what it reads and a request allocates nothing unless the hook asks
 * for `state`.
 */
import type * as Api from "../../src/edge/api";
import { clientAddress } from "../core/client-address";
import { digest, hmac, toHex } from "../core/crypto";
import { decodeJson, encodeJson } from "../core/json";
import { ramHitLabel } from "../features/cache/ram";
import { diskHitLabel } from "../features/cache/hit";

const getMethod = ngx.req.get_method;
const setHeader = ngx.req.set_header;
const clearHeader = ngx.req.clear_header;
const ngxVar = ngx.var;
const ngxHeader = ngx.header;

// header name -> its nginx variable (`X-Country` -> `http_x_country`): hooks ask for a handful of literal
// names, so the table stays small; it stops growing past a bound in case a hook computes names
const headerVars = new LuaTable<string, `http_${string}`>();
let headerVarCount = 0;
function headerVar(name: string): `http_${string}` {
  let v = headerVars.get(name);
  if (v === undefined) {
    const [lower] = string.gsub(string.lower(name), "-", "_");
    v = `http_${lower}`;
    if (headerVarCount < 256) {
      headerVars.set(name, v);
      headerVarCount++;
    }
  }
  return v;
}

function state(this: void): Api.State {
  let s = ngx.ctx.get("cdn_hook_state") as Api.State | undefined;
  if (s === undefined) {
    s = {};
    ngx.ctx.set("cdn_hook_state", s);
  }
  return s;
}

function cacheStatus(this: void): string | undefined {
  let s = ramHitLabel() ?? diskHitLabel() ?? ngxVar.get("cdn_cache_status");
  if (s === undefined || s === "") s = ngxVar.get("upstream_cache_status");
  return s === "" ? undefined : s;
}

const uri = () => ngxVar.get("uri") ?? "";

function checkStatus(status: number, low: number, high: number, what: string): void {
  if (typeof status !== "number" || status % 1 !== 0 || status < low || status > high) error(`${what}: status ${tostring(status)} is not between ${low} and ${high}`, 3);
}

/** An object whose missing keys are read from `getters` (a function per property). */
function withGetters<T extends object>(methods: object, getters: Record<string, (this: void) => unknown>): T {
  const g = getters as unknown as LuaTable<string, (this: void) => unknown>;
  return setmetatable(methods, {
    __index: (_t: unknown, key: string) => {
      const f = g.get(key);
      return f === undefined ? undefined : f();
    },
  }) as unknown as T;
}

function responseHeader(name: string): string | undefined {
  const v = ngxHeader.get(name);
  if (v === undefined) return undefined;
  if (type(v) === "table") return table.concat(v as string[], ", ");
  return v as string;
}

export const request: Api.Request = withGetters<Api.Request>(
  {
    header: (name: string) => ngxVar.get(headerVar(name)),
    cookie: (name: string) => ngxVar.get(`cookie_${name}`),
    arg: (name: string) => ngxVar.get(`arg_${name}`),
    claim: (name: string) => {
      const claims = ngx.ctx.get("cdn_jwt_claims");
      if (type(claims) !== "table") return undefined;
      const v = (claims as LuaTable<string, unknown>).get(name);
      const t = type(v);
      return t === "string" || t === "number" || t === "boolean" ? (v as string | number | boolean) : undefined;
    },
    setHeader: (name: string, value: string) => setHeader(name, value),
    removeHeader: (name: string) => clearHeader(name),
    rewrite: (path: string, query?: string) => {
      if (typeof path !== "string" || string.sub(path, 1, 1) !== "/") error("rewrite: the path must start with /", 2);
      ngx.req.set_uri(path, false);
      if (query !== undefined) ngx.req.set_uri_args(query);
    },
    deny: (status: number, body?: string) => {
      checkStatus(status, 400, 599, "deny");
      ngx.status = status;
      ngxHeader.set("Content-Type", "text/plain");
      ngxHeader.set("Cache-Control", "no-store");
      ngx.print(body ?? "");
      return ngx.exit(ngx.HTTP_OK);
    },
    redirect: (status: number, location: string) => {
      if (status !== 301 && status !== 302 && status !== 303 && status !== 307 && status !== 308) error(`redirect: status ${tostring(status)} is not 301, 302, 303, 307 or 308`, 2);
      return ngx.redirect(location, status);
    },
    respond: (status: number, body: string, headers?: Record<string, string>) => {
      checkStatus(status, 200, 599, "respond");
      ngx.status = status;
      if (headers !== undefined) for (const [k, v] of pairs(headers)) ngxHeader.set(k as string, v as string);
      ngx.print(body);
      return ngx.exit(ngx.HTTP_OK);
    },
  },
  {
    method: getMethod,
    path: uri,
    query: () => ngxVar.get("args") ?? "",
    host: () => ngxVar.get("host") ?? "",
    clientAddress,
    state,
  },
);

export const response: Api.Response = withGetters<Api.Response>(
  {
    header: responseHeader,
    requestHeader: (name: string) => ngxVar.get(headerVar(name)),
    setHeader: (name: string, value: string) => ngxHeader.set(name, value),
    removeHeader: (name: string) => ngxHeader.set(name, undefined),
  },
  {
    status: () => ngx.status,
    cacheStatus,
    method: getMethod,
    path: uri,
    state,
  },
);

export const bodyResponse: Api.BodyResponse = withGetters<Api.BodyResponse>(
  { header: responseHeader },
  {
    status: () => ngx.status,
    cacheStatus,
    method: getMethod,
    path: uri,
    state,
  },
);

export const logContext: Api.LogContext = withGetters<Api.LogContext>(
  {
    field: (name: string, value: string | number | boolean) => {
      const cur = ngxVar.get("cdn_hook_log");
      const item = `${name}=${tostring(value)}`;
      ngxVar.set("cdn_hook_log", cur === undefined || cur === "" ? item : `${cur} ${item}`);
    },
  },
  {
    status: () => ngx.status,
    cacheStatus,
    method: getMethod,
    path: uri,
    duration: () => tonumber(ngxVar.get("request_time")) ?? 0,
    state,
  },
);

// the markers: in Lua a hook is its function
export const onAccess = ((fn: unknown) => fn) as typeof Api.onAccess;
export const onHeaders = ((fn: unknown) => fn) as typeof Api.onHeaders;
export const onLog = ((fn: unknown) => fn) as typeof Api.onLog;
export const onBody = ((fn: unknown) => fn) as typeof Api.onBody;

// the hooks' store (policy hooks.store): undefined when the policy declares none (the build refuses a hook
// that imports it then)
const dict = ngx.shared.get("cdn_hooks");
function storeDict(this: void): NgxSharedDict {
  if (dict === undefined) return error("store: the policy declares no hooks.store", 3);
  return dict;
}

export const store: Api.Store = {
  get: (key) => {
    const [v] = storeDict().get(key);
    return v as string | number | boolean | undefined;
  },
  set: (key, value, ttl) => {
    const [ok, err] = storeDict().set(key, value, ttl ?? 0);
    if (!ok) error(`store.set: ${err}`, 2);
  },
  incr: (key, by, ttl) => {
    const [v, err] = storeDict().incr(key, by ?? 1, 0, ttl ?? 0);
    if (v === undefined) return error(`store.incr: ${err}`, 2);
    return v;
  },
  delete: (key) => storeDict().delete(key),
};

export const now: typeof Api.now = () => ngx.now();
export const sha256Hex: typeof Api.sha256Hex = (data) => toHex(digest("sha256", data));
export const hmacSha256Hex: typeof Api.hmacSha256Hex = (key, message) => toHex(hmac("sha256", key, message));
export const base64Encode: typeof Api.base64Encode = (data) => ngx.encode_base64(data);
export const base64Decode: typeof Api.base64Decode = (text) => ngx.decode_base64(text);
export const jsonEncode: typeof Api.jsonEncode = (value) => encodeJson(value);
export const jsonDecode: typeof Api.jsonDecode = (text) => {
  const [ok, v] = pcall(decodeJson, text);
  return ok ? v : undefined;
};
