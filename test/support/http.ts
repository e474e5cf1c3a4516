import { createConnection } from "node:net";
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

/**
 * One request sent byte for byte over a new connection (no client-side normalisation: absolute request
 * lines, odd Host headers, bodies on GET); `Connection: close` is the caller's to add. Resolves to the status
 * (0 when the edge closed without answering), the lower-cased headers and the body, read until the edge closes.
 */
export function rawRequest(edge: { port: number; host?: string }, text: string | Buffer, timeoutMs = 5000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ host: edge.host ?? "127.0.0.1", port: edge.port }, () => sock.write(typeof text === "string" ? Buffer.from(text, "latin1") : text));
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => sock.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    sock.on("data", (c) => chunks.push(c));
    sock.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.on("close", () => {
      clearTimeout(timer);
      const all = Buffer.concat(chunks).toString("latin1");
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(all);
      const end = all.indexOf("\r\n\r\n");
      const headers: Record<string, string> = {};
      for (const line of all.slice(0, end < 0 ? all.length : end).split("\r\n").slice(1)) {
        const i = line.indexOf(":");
        if (i > 0) {
          const k = line.slice(0, i).trim().toLowerCase();
          headers[k] = headers[k] === undefined ? line.slice(i + 1).trim() : `${headers[k]}, ${line.slice(i + 1).trim()}`;
        }
      }
      resolve({ status: m ? Number(m[1]) : 0, headers, body: end < 0 ? "" : all.slice(end + 4) });
    });
  });
}
