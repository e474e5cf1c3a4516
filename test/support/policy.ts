/**
 * Shared policy builders for tests: one shape of "a policy around one origin", one way to read diagnostics.
 * Feature tests specialise `policy()` (`policy(origin, { waf: gate })`), they do not copy it.
 */
import { expect } from "vitest";
import { compile } from "../../src/compile.js";
import type { Policy } from "../../src/policy/types.js";

/** A policy as tests write it: `listen` is optional (bootEdge picks a free port). */
export type TestPolicy = Omit<Policy, "listen"> & Partial<Pick<Policy, "listen">>;

/**
 * A minimal valid policy: name "edge", one origin pool `app` with one server and `retries: 0` (tests count
 * origin hits, and a retry would add one), then `extra` on top (which may replace any of these).
 */
export function policy(origin: string | { address: string }, extra: Partial<Policy> = {}): TestPolicy {
  const address = typeof origin === "string" ? origin : origin.address;
  return { name: "edge", origins: { app: { servers: [{ address }], retries: 0 } }, ...extra };
}

/** How `diagnostics()` prints each diagnostic. */
export type Shown = "code" | "code path" | "severity code path";

/** The diagnostics of compiling `value` (target openresty), one string each. */
export function diagnostics(value: unknown, show: Shown = "code path"): string[] {
  return compile(value, { target: "openresty" }).diagnostics.map((d) =>
    show === "code" ? d.code : show === "code path" ? `${d.code} ${d.path}` : `${d.severity} ${d.code} ${d.path}`,
  );
}

/** The diagnostic codes of compiling `value`. */
export function codes(value: unknown): string[] {
  return diagnostics(value, "code");
}

/** The errors ("CODE /path") of a policy that must not compile (asserts that it gives no bundle). */
export function errors(value: unknown): string[] {
  const r = compile(value, { target: "openresty" });
  expect(r.bundle).toBeUndefined();
  return r.diagnostics.filter((d) => d.severity === "error").map((d) => `${d.code} ${d.path}`);
}
