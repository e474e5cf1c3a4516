import type { Reporter } from "vitest/reporters";

type Task = { type: string; mode?: string; result?: { state?: string }; tasks?: Task[] };

/** Prints one plain closing line, `N passed, N failed`, after vitest's own summary, for CI log readers. */
export default class SummaryReporter implements Reporter {
  onFinished(files: Task[] = [], errors: unknown[] = []): void {
    const count = { passed: 0, failed: 0, skipped: 0 };
    const walk = (t: Task) => {
      if (t.type === "test") {
        const s = t.result?.state;
        if (s === "pass") count.passed++;
        else if (s === "fail") count.failed++;
        else count.skipped++;
      }
      for (const c of t.tasks ?? []) walk(c);
    };
    for (const f of files) {
      walk(f);
      // a file that failed to load has no tests but must count as a failure
      if (f.result?.state === "fail" && !(f.tasks ?? []).length) count.failed++;
    }
    count.failed += errors.length;
    process.stdout.write(`\n${count.passed} passed, ${count.failed} failed${count.skipped ? `, ${count.skipped} skipped` : ""}\n`);
  }
}
