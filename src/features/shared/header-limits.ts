import { error, type Diagnostic } from "../../validate/diagnostic.js";

/** Largest total of the headers a `set` map adds (name, ": ", value, CRLF): requests, responses. */
export const SET_TOTAL_MAX = { request: 8192, response: 8192 } as const;

/** The headers a `set` map adds, in bytes on the wire; a diagnostic when they pass the side's bound. */
export function checkSetTotal(set: Record<string, string> | undefined, side: "request" | "response", at: string): Diagnostic[] {
  const total = Object.entries(set ?? {}).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v) + 4, 0);
  if (total <= SET_TOTAL_MAX[side]) return [];
  return [
    error(
      "headersTooLarge",
      at,
      `the ${side} headers set here total ${total} bytes, above ${SET_TOTAL_MAX[side]}`,
      side === "request"
        ? "origins refuse requests whose headers pass 8 KiB (nginx, Apache) or 16 KiB (Node.js): keep what the edge adds small"
        : "a proxy in front (nginx reads 4 to 8 KiB of response header by default) or a client (Node.js: 16 KiB) refuses larger headers: keep what the edge adds small",
    ),
  ];
}

