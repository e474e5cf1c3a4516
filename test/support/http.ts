import { Agent, request } from "undici";

export interface Reply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

// A fresh agent per test file would be cleaner, but one short-keepalive agent keeps sockets few.
const agent = new Agent({ keepAliveTimeout: 1000, connections: 128 });

/** One HTTP request to an edge; header names come back lower-cased, multi-values joined with ", ". */
export async function http(
  base: { baseUrl: string },
  path: string,
  opts: { method?: "GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "PATCH"; headers?: Record<string, string>; body?: string } = {},
): Promise<Reply> {
  const res = await request(base.baseUrl + path, {
    method: opts.method ?? "GET",
    headers: opts.headers,
    body: opts.body,
    dispatcher: agent,
  });
  const body = await res.body.text();
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(", ") : v;
  return { status: res.statusCode, headers, body };
}

/** Lua runtime errors in an error.log text (proxy connection errors are expected in some tests). */
export function luaErrors(lines: string[]): string[] {
  return lines.filter((l) => /lua|runtime error|stack traceback/i.test(l));
}
