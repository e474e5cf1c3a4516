import { durationMs, MAX_SECONDS_MS, MAX_TIMER_MS, sizeBytes } from "../util/units.js";
import { parseBlock } from "../util/ip-ranges.js";
import { error, type Diagnostic } from "./diagnostic.js";

/** Shared semantic checks used by several features. Each returns the diagnostics it found (0 or 1). */

export function checkDuration(
  value: string | undefined,
  path: string,
  opts: { timer?: boolean; allowZero?: boolean } = {},
): Diagnostic[] {
  if (value === undefined) return [];
  const ms = durationMs(value);
  if (ms === undefined) return [error("invalidDuration", path, `"${value}" is not a duration`, 'write a number and a unit, e.g. "30s", "5m", "1h"')];
  const max = opts.timer ? MAX_TIMER_MS : MAX_SECONDS_MS;
  if (ms > max) {
    return [error("invalidDuration", path, `duration "${value}" is too large for nginx`, opts.timer ? "timeouts must be under 24 days" : "durations must be under 68 years")];
  }
  if (ms === 0 && !opts.allowZero) return [error("invalidDuration", path, "duration must be greater than zero", 'e.g. "1s"')];
  if (!opts.timer && ms % 1000 !== 0) {
    return [error("invalidDuration", path, `duration "${value}" must be whole seconds here`, 'use "s", "m", "h" or "d", e.g. "1s"')];
  }
  return [];
}

export function checkSize(value: string | undefined, path: string, opts: { min?: number; minText?: string; max?: number; maxText?: string } = {}): Diagnostic[] {
  if (value === undefined) return [];
  const bytes = sizeBytes(value);
  if (bytes === undefined) return [error("invalidSize", path, `"${value}" is not a size`, 'write a number and an optional unit k, m or g, e.g. "10m"')];
  if (opts.min !== undefined && bytes < opts.min) {
    return [error("invalidSize", path, `size "${value}" is too small`, `use at least ${opts.minText ?? opts.min}`)];
  }
  if (opts.max !== undefined && bytes > opts.max) {
    return [error("invalidSize", path, `size "${value}" is too large: nginx maps this shared memory zone whole when it starts`, `use at most ${opts.maxText ?? opts.max}`)];
  }
  return [];
}

const GIB = 1024 ** 3;
/** The largest shared memory zones (see `Size`): tested to pass `nginx -t` and boot together. */
export const SHM_MAX = { keysZone: 4 * GIB, markers: 4 * GIB, ram: 16 * GIB, purgeIndex: 4 * GIB } as const;

export function checkCidr(value: string, path: string): Diagnostic[] {
  return parseBlock(value) ? [] : [error("invalidCidr", path, `"${value}" is not an IPv4/IPv6 address or CIDR block`, 'e.g. "10.0.0.0/8" or "2001:db8::/32"')];
}

/** Reports case-insensitive duplicates in a list of names. */
export function checkUnique(values: readonly string[], path: (i: number) => string, what: string): Diagnostic[] {
  const seen = new Map<string, number>();
  const out: Diagnostic[] = [];
  values.forEach((v, i) => {
    const k = v.toLowerCase();
    const first = seen.get(k);
    if (first !== undefined) out.push(error("duplicateListEntry", path(i), `duplicate ${what} "${v}" (also at index ${first})`, `remove one of them`));
    else seen.set(k, i);
  });
  return out;
}
