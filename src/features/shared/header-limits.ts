import { error, type Diagnostic } from "../../validate/diagnostic.js";
import type { HeaderSetValue } from "../../policy/types.js";
import { valueBytes } from "./header-values.js";

/** Largest total of the headers a `set` map adds (name, ": ", value, CRLF): requests, responses. */
export const SET_TOTAL_MAX = { request: 8192, response: 8192 } as const;

/** The headers a `set` map adds, in bytes on the wire; a diagnostic when they pass the side's bound. */
export function checkSetTotal(set: Record<string, HeaderSetValue> | undefined, side: "request" | "response", at: string): Diagnostic[] {
  // a computed value counts for its budget (COMPUTED_VALUE_BUDGET)
  const total = Object.entries(set ?? {}).reduce((n, [k, v]) => n + Buffer.byteLength(k) + valueBytes(v) + 4, 0);
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

