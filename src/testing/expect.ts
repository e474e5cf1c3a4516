/**
 * Typed assertions for policy tests. They throw node's AssertionError (with `actual` and `expected`), so they
 * work in any test runner and vitest shows their difference; the message always names the request.
 */
import { AssertionError } from "node:assert";
import type { EdgeResponse, TestEdge } from "./edge.js";
import type { MockOrigin } from "./origin.js";

/**
 * What the cache status header says: `HIT` (disk), `HIT-RAM` (the RAM tier), `STALE`/`STALE-RAM` (a stale
 * copy: origin down or revalidating in the background), `UPDATING` (stale while another request refreshes),
 * `MISS`, `EXPIRED` (refetched after expiry), `REVALIDATED` (304 from the origin), `BYPASS` (not cached by rule).
 */
export type CacheStatus = "HIT" | "HIT-RAM" | "STALE" | "STALE-RAM" | "UPDATING" | "MISS" | "EXPIRED" | "REVALIDATED" | "BYPASS";

/** Statuses served from the cache without asking the origin. */
export const SERVED_FROM_CACHE: readonly CacheStatus[] = ["HIT", "HIT-RAM", "STALE", "STALE-RAM", "UPDATING"];

function fail(message: string, actual: unknown, expected: unknown, fn: (...args: never[]) => unknown): never {
  throw new AssertionError({ message, actual, expected, operator: "strictEqual", stackStartFn: fn });
}

function summary(res: EdgeResponse): string {
  const body = res.body.length > 200 ? `${res.body.slice(0, 200)}...` : res.body;
  return `${res.status} ${JSON.stringify(res.headers)} ${JSON.stringify(body)}`;
}

/**
 * The response's cache status is `expected` (or one of them).
 *
 *   expectCacheStatus(await edge.get("/"), "MISS");
 *   expectCacheStatus(await edge.get("/"), ["HIT", "HIT-RAM"]);
 */
export function expectCacheStatus(res: EdgeResponse, expected: CacheStatus | readonly CacheStatus[]): void {
  const want: readonly string[] = typeof expected === "string" ? [expected] : expected;
  if (res.cacheStatusHeader === undefined) {
    fail(`${res.request}: the policy sends no cache status header (it has no cache, or headers.cacheStatus is false)`, undefined, expected, expectCacheStatus);
  }
  if (res.cacheStatus === undefined || !want.includes(res.cacheStatus)) {
    fail(
      `${res.request}: cache status ${res.cacheStatus ?? "(no " + res.cacheStatusHeader + " header)"}, expected ${want.join(" or ")}\n  response: ${summary(res)}`,
      res.cacheStatus,
      expected,
      expectCacheStatus,
    );
  }
}

/** The response's status code is `expected` (or one of them). */
export function expectStatus(res: EdgeResponse, expected: number | readonly number[]): void {
  const want = typeof expected === "number" ? [expected] : expected;
  if (!want.includes(res.status)) fail(`${res.request}: status ${res.status}, expected ${want.join(" or ")}\n  response: ${summary(res)}`, res.status, expected, expectStatus);
}

/**
 * The response has header `name` (any case); with `expected`, its value equals the string or matches the
 * RegExp.
 */
export function expectHeader(res: EdgeResponse, name: string, expected?: string | RegExp): void {
  const value = res.headers[name.toLowerCase()];
  if (value === undefined) fail(`${res.request}: no ${name} header\n  response: ${summary(res)}`, undefined, expected ?? `a ${name} header`, expectHeader);
  if (expected === undefined) return;
  const ok = typeof expected === "string" ? value === expected : expected.test(value);
  if (!ok) fail(`${res.request}: ${name} is ${JSON.stringify(value)}, expected ${typeof expected === "string" ? JSON.stringify(expected) : String(expected)}`, value, expected, expectHeader);
}

/** The response has no header `name` (any case). */
export function expectNoHeader(res: EdgeResponse, name: string): void {
  const value = res.headers[name.toLowerCase()];
  if (value !== undefined) fail(`${res.request}: ${name} is ${JSON.stringify(value)}, expected no such header`, value, undefined, expectNoHeader);
}

/**
 * The origin received `expected` requests for `path` (query ignored), or for the exact URL when `path`
 * contains "?"; without `path`, requests for anything.
 */
export function expectOriginHits(origin: MockOrigin, path: string | undefined, expected: number): void {
  const n = origin.hits(path);
  if (n !== expected) {
    const seen = origin.requests
      .slice(-10)
      .map((r) => `${r.method} ${r.url}`)
      .join(", ");
    fail(`origin hits for ${path ?? "anything"}: ${n}, expected ${expected} (last requests: ${seen || "none"})`, n, expected, expectOriginHits);
  }
}

/** nginx's error.log has no line at level [error] or worse since the boot (no Lua error, no failed origin). */
export async function expectNoErrors(edge: TestEdge): Promise<void> {
  const lines = await edge.errors();
  if (lines.length) fail(`error.log has ${lines.length} error line(s):\n  ${lines.slice(0, 10).join("\n  ")}`, lines, [], expectNoErrors);
}
