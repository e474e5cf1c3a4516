import type { Reporter } from "vitest/reporters";

type Task = { type: string; mode?: string; result?: { state?: string; errors?: unknown[] }; tasks?: Task[] };

/**
 * Prints one plain closing line, `N passed, N failed`, after vitest's own summary, for CI log readers. A test
 * that was meant to run but did not (its file's or suite's beforeAll failed, e.g. a missing redis-server) counts
 * as failed: only tests filtered out on purpose (`-t`) count as skipped.
 */
export default class SummaryReporter implements Reporter {
  onFinished(files: Task[] = [], errors: unknown[] = []): void {
    const count = { passed: 0, failed: 0, skipped: 0 };
    const walk = (t: Task, suiteFailed: boolean) => {
      if (t.type === "test") {
        const s = t.result?.state;
        if (s === "pass") count.passed++;
        else if (s === "fail" || suiteFailed) count.failed++; // not run because a hook of its suite failed
        else count.skipped++;
      }
      // a suite (or file) with errors of its own: a hook failed, so its tests that did not run are failures
      for (const c of t.tasks ?? []) walk(c, suiteFailed || (t.type !== "test" && (t.result?.errors?.length ?? 0) > 0));
    };
    for (const f of files) {
      walk(f, false);
      // a file that failed to load has no tests but must count as a failure
      if (f.result?.state === "fail" && !(f.tasks ?? []).length) count.failed++;
    }
    count.failed += errors.length;
    process.stdout.write(`\n${count.passed} passed, ${count.failed} failed${count.skipped ? `, ${count.skipped} skipped` : ""}\n`);
  }
}
