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

/** What a truthy value of T can be (so `cond` may answer `ok && value`). */
export type Truthy<T> = Exclude<T, false | null | undefined | 0 | "">;

const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Resolves with the first truthy value of `cond` (sync or async); rejects after `timeout` ms. An exception
 * thrown by `cond` counts as "not yet" (the last one is reported on timeout).
 */
export async function waitFor<T>(cond: () => T | Promise<T>, opts: WaitOptions = {}): Promise<Truthy<T>> {
  const timeout = opts.timeout ?? 5000;
  const interval = opts.interval ?? 25;
  const deadline = Date.now() + timeout;
  let last: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v as Truthy<T>;
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
 * Waits for time itself to pass: only for TTLs and expiry, token-bucket refill, `exp` claims and clock-tick
 * separation, where the clock is the condition and a poll would change what is tested. Anything else waits on
 * an observable condition with waitFor().
 */
export function sleep(ms: number): Promise<void> {
  return pause(ms);
}
