/** Durations and sizes as nginx parses them. */

const DURATION = /^([0-9]{1,9})(ms|s|m|h|d|w)$/;
const MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Milliseconds of a duration like "30s", or undefined when it is not one. */
export function durationMs(value: string): number | undefined {
  const m = DURATION.exec(value);
  if (!m) return undefined;
  return Number(m[1]) * MS[m[2]!]!;
}

/** Largest value nginx accepts for a millisecond timer (ngx_msec_t timers are 32-bit signed in practice). */
export const MAX_TIMER_MS = 2_147_483_647;
/** Largest value nginx accepts for a duration counted in seconds. */
export const MAX_SECONDS_MS = 2_147_483_647 * 1000;

const SIZE = /^([0-9]{1,9})([kKmMgG]?)$/;
const MUL: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** Bytes of a size like "10m", or undefined when it is not one. */
export function sizeBytes(value: string): number | undefined {
  const m = SIZE.exec(value);
  if (!m) return undefined;
  return Number(m[1]) * MUL[m[2]!.toLowerCase()]!;
}

/**
 * A shared memory size as nginx's `lua_shared_dict` and `keys_zone=` read it: they parse sizes with
 * `ngx_parse_size`, which knows `k` and `m` but not `g` ("1g" fails `nginx -t`), so the size is written in
 * megabytes, or kilobytes (rounded up) when it is not a whole number of megabytes.
 */
export function shmSize(value: string): string {
  const bytes = sizeBytes(value);
  if (bytes === undefined) throw new Error(`not a size: ${value}`);
  return bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)}m` : `${Math.ceil(bytes / 1024)}k`;
}

/** Seconds, rounded up, for nginx directives that only take seconds. */
export function durationSeconds(value: string): number | undefined {
  const ms = durationMs(value);
  return ms === undefined ? undefined : Math.ceil(ms / 1000);
}
