/**
 * `cdn-build/edge/testing`: runs a hook in Node against an in-memory implementation of the edge API, for a
 * user's unit tests (no nginx). It follows the Lua runtime (lua-src/edge/index.ts) call for call: the same
 * argument checks and error messages, the same answers for `deny`/`redirect`/`respond`, header names
 * case-insensitive, a repeated request header's first value, an empty header value removing the header.
 * test/features/hooks.test.ts runs the same hooks through both and compares the outcomes.
 */
import type { AccessHook, BodyHook, BodyResponse, HeadersHook, LogContext, LogHook, Request, Response, State } from "cdn-build/edge";

/** A request as the access hook would see it. */
export interface TestRequest {
  /** @default "GET" */
  method?: string;
  /** The decoded path. @default "/" */
  path?: string;
  /** The raw query string without `?`. @default "" */
  query?: string;
  /** @default "localhost" */
  host?: string;
  /** @default "127.0.0.1" */
  clientAddress?: string;
  /** Request headers (any case); `Cookie` is where `cookie()` reads. */
  headers?: Record<string, string>;
  /** What earlier hooks left in `state`. */
  state?: State;
  /** The claims of the token the `jwt` gate verified (none: the gate did not check this request). */
  claims?: Record<string, unknown>;
}

/** What an access hook did with a request. */
export interface AccessOutcome {
  /** `continue`: the hook returned and the request goes on to the origin; `error`: it threw. */
  action: "continue" | "deny" | "redirect" | "respond" | "error";
  /** The answer's status when the hook ended the request, 500 for an error (the default, without `failOpen`). */
  status?: number;
  body?: string;
  /** The redirect target. */
  location?: string;
  /** Response headers of the answer the hook made (names as the hook wrote them). */
  responseHeaders: Record<string, string>;
  /** The request headers the origin would receive, lower-case names. */
  requestHeaders: Record<string, string>;
  /** The path and query after `rewrite()`. */
  path: string;
  query: string;
  state: State;
  /** What the hook threw. */
  error?: unknown;
}

/** A response as the headers hook would see it. */
export interface TestResponse {
  /** @default 200 */
  status?: number;
  cacheStatus?: string;
  /** @default "GET" */
  method?: string;
  /** @default "/" */
  path?: string;
  /** Response headers (any case). */
  headers?: Record<string, string>;
  /** Request headers (any case). */
  requestHeaders?: Record<string, string>;
  state?: State;
}

export interface HeadersOutcome {
  /** The response headers after the hook, lower-case names. */
  headers: Record<string, string>;
  state: State;
  error?: unknown;
}

export interface TestLog {
  /** @default 200 */
  status?: number;
  cacheStatus?: string;
  /** @default "GET" */
  method?: string;
  /** @default "/" */
  path?: string;
  /** @default 0 */
  duration?: number;
  state?: State;
}

export interface LogOutcome {
  /** The `hook` field of the JSON access log line (`""` when the hook added none). */
  field: string;
  error?: unknown;
}

/** Thrown by deny/redirect/respond to end the hook, as ngx.exit does in nginx. */
class Exit {
  constructor(readonly outcome: Partial<AccessOutcome>) {}
}

/** What the headers, body and log phases read of a finished response, fixed for one run. */
function responseView(init: { status?: number; cacheStatus?: string; method?: string; path?: string }, state: State) {
  return { status: init.status ?? 200, cacheStatus: init.cacheStatus, method: init.method ?? "GET", path: init.path ?? "/", state };
}

function lowerKeys(h: Record<string, string> | undefined): Map<string, string> {
  const m = new Map<string, string>();
  for (const [k, v] of Object.entries(h ?? {})) if (!m.has(k.toLowerCase())) m.set(k.toLowerCase(), v);
  return m;
}

function checkStatus(status: number, low: number, high: number, what: string): void {
  if (typeof status !== "number" || status % 1 !== 0 || status < low || status > high) throw new Error(`${what}: status ${String(status)} is not between ${low} and ${high}`);
}

function cookieOf(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const i = part.indexOf("=");
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

function argOf(query: string, name: string): string | undefined {
  for (const part of query.split("&")) {
    const i = part.indexOf("=");
    const key = i < 0 ? part : part.slice(0, i);
    if (key.toLowerCase() === name.toLowerCase()) return i < 0 ? "" : part.slice(i + 1);
  }
  return undefined;
}

/** Runs an access hook on a request and tells what it did. */
export function runAccess(hook: AccessHook, init: TestRequest = {}): AccessOutcome {
  const headers = lowerKeys(init.headers);
  let path = init.path ?? "/";
  let query = init.query ?? "";
  const state: State = { ...(init.state ?? {}) };
  const req: Request = {
    get method() {
      return init.method ?? "GET";
    },
    get path() {
      return path;
    },
    get query() {
      return query;
    },
    get host() {
      return (init.host ?? "localhost").toLowerCase();
    },
    get clientAddress() {
      return init.clientAddress ?? "127.0.0.1";
    },
    get state() {
      return state;
    },
    // as nginx's $http_* variables: the request's headers as they are now (setHeader included)
    header: (name) => headers.get(name.toLowerCase()),
    cookie: (name) => cookieOf(headers.get("cookie"), name),
    arg: (name) => argOf(query, name),
    claim: (name) => {
      const v = init.claims?.[name];
      return typeof v === "string" || typeof v === "number" || typeof v === "boolean" ? v : undefined;
    },
    // as ngx.req.set_header: an empty value removes the header
    setHeader: (name, value) => void (value === "" ? headers.delete(name.toLowerCase()) : headers.set(name.toLowerCase(), value)),
    removeHeader: (name) => void headers.delete(name.toLowerCase()),
    rewrite: (p, q) => {
      if (typeof p !== "string" || !p.startsWith("/")) throw new Error("rewrite: the path must start with /");
      path = p;
      if (q !== undefined) query = q;
    },
    deny: (status, body) => {
      checkStatus(status, 400, 599, "deny");
      throw new Exit({ action: "deny", status, body: body ?? "", responseHeaders: { "Content-Type": "text/plain", "Cache-Control": "no-store" } });
    },
    redirect: (status, location) => {
      if (![301, 302, 303, 307, 308].includes(status)) throw new Error(`redirect: status ${String(status)} is not 301, 302, 303, 307 or 308`);
      throw new Exit({ action: "redirect", status, location, responseHeaders: { Location: location } });
    },
    respond: (status, body, h) => {
      checkStatus(status, 200, 599, "respond");
      throw new Exit({ action: "respond", status, body, responseHeaders: { ...(h ?? {}) } });
    },
  };
  const base = () => ({ responseHeaders: {}, requestHeaders: Object.fromEntries(headers), path, query, state });
  try {
    hook(req);
    return { action: "continue", ...base() };
  } catch (err) {
    if (err instanceof Exit) return { ...base(), ...err.outcome } as AccessOutcome;
    return { action: "error", status: 500, ...base(), error: err };
  }
}

/** Runs a headers hook on a response and returns its headers after the hook. */
export function runHeaders(hook: HeadersHook, init: TestResponse = {}): HeadersOutcome {
  const headers = lowerKeys(init.headers);
  const reqHeaders = lowerKeys(init.requestHeaders);
  const state: State = { ...(init.state ?? {}) };
  const res: Response = {
    ...responseView(init, state),
    header: (name) => headers.get(name.toLowerCase()),
    requestHeader: (name) => reqHeaders.get(name.toLowerCase()),
    setHeader: (name, value) => void headers.set(name.toLowerCase(), value),
    removeHeader: (name) => void headers.delete(name.toLowerCase()),
  };
  try {
    hook(res);
    return { headers: Object.fromEntries(headers), state };
  } catch (err) {
    return { headers: Object.fromEntries(headers), state, error: err };
  }
}

/** Runs a log hook and returns the `hook` field it wrote. */
export function runLog(hook: LogHook, init: TestLog = {}): LogOutcome {
  let field = "";
  const state: State = { ...(init.state ?? {}) };
  const ctx: LogContext = {
    ...responseView(init, state),
    duration: init.duration ?? 0,
    field: (name, value) => {
      const item = `${name}=${String(value)}`;
      field = field === "" ? item : `${field} ${item}`;
    },
  };
  try {
    hook(ctx);
    return { field };
  } catch (err) {
    return { field, error: err };
  }
}

export interface TestBody {
  /** @default 200 */
  status?: number;
  cacheStatus?: string;
  /** @default "GET" */
  method?: string;
  /** @default "/" */
  path?: string;
  /** Response headers (any case). */
  headers?: Record<string, string>;
  state?: State;
  /** The policy's `maxBytes`. @default 1048576 */
  maxBytes?: number;
}

export interface BodyOutcome {
  /** The body the client receives. */
  body: string;
  /** False when the hook was not called (HEAD, 204, 304, a compressed or too long body). */
  called: boolean;
  error?: unknown;
}

/** Runs a body hook on a body, with the edge's rules on which bodies it sees. */
export function runBody(hook: BodyHook, body: string, init: TestBody = {}): BodyOutcome {
  const headers = lowerKeys(init.headers);
  const status = init.status ?? 200;
  const enc = headers.get("content-encoding");
  const bytes = Buffer.byteLength(body, "latin1");
  if (status === 204 || status === 304 || (init.method ?? "GET") === "HEAD" || (enc !== undefined && enc !== "" && enc !== "identity") || bytes > (init.maxBytes ?? 1048576)) {
    return { body, called: false };
  }
  const res: BodyResponse = {
    ...responseView(init, init.state ?? {}),
    header: (name) => headers.get(name.toLowerCase()),
  };
  try {
    const out = hook(res, body);
    return { body: typeof out === "string" ? out : body, called: true };
  } catch (err) {
    return { body, called: true, error: err };
  }
}
