/**
 * Waiting on conditions instead of fixed sleeps: poll until the condition holds, fail with what was awaited
 * (and the last value seen) when it does not within the timeout.
 */
export interface WaitOptions {
  /** Give up after this long. @default 5000 */
  timeout?: number;
  /** Pause between two polls. @default 25 */
  interval?: number;
  /** What is awaited, for the error message. */
  what?: string;
}

const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Resolves with the first truthy value of `cond` (sync or async); rejects after `timeout` ms. An exception
 * thrown by `cond` counts as "not yet" (the last one is reported on timeout).
 */
export async function waitFor<T>(cond: () => T | Promise<T>, opts: WaitOptions = {}): Promise<NonNullable<T>> {
  const timeout = opts.timeout ?? 5000;
  const interval = opts.interval ?? 25;
  const deadline = Date.now() + timeout;
  let last: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v as NonNullable<T>;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      const seen = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeout} ms waiting for ${opts.what ?? "a condition"} (last: ${seen})`);
    }
    await pause(interval);
  }
}

/**
 * Waits until a clock-based deadline has passed: for TTLs, expiry and token buckets, which are about time
 * itself and have no other condition to observe. `until` is an absolute Date.now() value.
 */
export async function waitUntil(until: number): Promise<void> {
  const left = until - Date.now();
  if (left > 0) await pause(left);
}
