/** The pure parts of `npm run bench` (bench/stats.ts): no server, no timing. */
import { describe, expect, it } from "vitest";
import { allowedCpus, cell, coreTicks, othersShare, isAtsHit, isErrorLine, isVarnishHit, markdownTable, median, parseWrk, perRound, refusal, statCpuTicks, statusKb, summarize, textTable, type Section } from "../bench/stats.js";

const CLEAN = `Running 5s test @ http://127.0.0.1:41234/bench/obj
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   612.31us  201.02us   8.12ms   91.23%
    Req/Sec    52.41k     1.92k   55.80k    80.00%
  260788 requests in 5.00s, 313.27MB read
Requests/sec:  52150.33
Transfer/sec:     62.64MB
`;

const WITH_ERRORS = `Running 2s test @ http://127.0.0.1:41234/x
  1 threads and 32 connections
  1200 requests in 2.00s, 1.27MB read
  Socket errors: connect 0, read 3, write 0, timeout 7
  Non-2xx or 3xx responses: 12
Requests/sec:    599.50
Transfer/sec:    650.00KB
`;

const headers = (h: Record<string, string>) => ({ get: (n: string) => h[n.toLowerCase()] ?? null });

describe("wrk output", () => {
  it("reads requests, req/s, and no errors from a clean run", () => {
    const w = parseWrk(CLEAN);
    expect(w).toEqual({ requests: 260788, rps: 52150.33, non2xx: 0, socketErrors: { connect: 0, read: 0, write: 0, timeout: 0 } });
    expect(refusal(w)).toBeUndefined();
  });

  it("refuses a run with error responses or socket errors, saying why", () => {
    const w = parseWrk(WITH_ERRORS);
    expect(w.non2xx).toBe(12);
    expect(w.socketErrors).toEqual({ connect: 0, read: 3, write: 0, timeout: 7 });
    expect(refusal(w)).toBe("12 non-2xx/3xx responses; socket errors: connect 0, read 3, write 0, timeout 7");
    expect(refusal({ ...parseWrk(CLEAN), non2xx: 1 })).toMatch(/1 non-2xx/);
    expect(refusal({ ...parseWrk(CLEAN), socketErrors: { connect: 1, read: 0, write: 0, timeout: 0 } })).toMatch(/connect 1/);
  });

  it("refuses a run where nothing completed, and throws on output it cannot read", () => {
    expect(refusal({ requests: 0, rps: 0, non2xx: 0, socketErrors: { connect: 0, read: 0, write: 0, timeout: 0 } })).toBe("no request completed");
    expect(() => parseWrk("unable to connect to 127.0.0.1:1 Connection refused")).toThrow(/unreadable wrk output/);
  });
});

describe("/proc", () => {
  it("takes utime + stime from a stat line, even when the command name holds spaces and parentheses", () => {
    const stat = "4242 (nginx: worker (x) y) S 4241 4241 4241 0 -1 4194624 1000 0 0 0 250 75 0 0 20 0 1 0 100 1000000 500 18446744073709551615";
    expect(statCpuTicks(stat)).toBe(325);
    expect(() => statCpuTicks("garbage")).toThrow();
  });

  it("reads kB fields of /proc/<pid>/status and the allowed CPUs", () => {
    const status = "Name:\tnginx\nVmRSS:\t   97588 kB\nRssAnon:\t   14436 kB\nRssShmem:\t   77110 kB\nCpus_allowed_list:\t0\n";
    expect(statusKb(status, "VmRSS")).toBe(97588);
    expect(statusKb(status, "RssShmem")).toBe(77110);
    expect(statusKb(status, "VmSwap")).toBeUndefined();
    expect(allowedCpus(status)).toBe("0");
    expect(allowedCpus("Cpus_allowed_list:\t0-1\n")).toBe("0-1");
  });
});

describe("how quiet the server core was", () => {
  const before = "cpu  10 0 10 100 0 0 0 0 0 0\ncpu0 1000 0 500 8000 100 0 200 0 0 0\ncpu1 5 0 5 50 0 0 0 0 0 0\n";
  // 1,000 ticks later on cpu0: 600 user+system (400 of them the measured worker's), 100 softirq, 50 steal, 250 idle
  const after = "cpu  10 0 10 100 0 0 0 0 0 0\ncpu0 1400 0 700 8250 100 0 300 50 0 0\ncpu1 5 0 5 50 0 0 0 0 0 0\n";

  it("reads one core's line of /proc/stat (idle with iowait, interrupts apart)", () => {
    expect(coreTicks(before, 0)).toEqual({ total: 9800, idle: 8100, irq: 200 });
    expect(() => coreTicks(before, 7)).toThrow(/no cpu7/);
  });

  it("counts other processes and steal, not the measured processes nor interrupts", () => {
    expect(othersShare(coreTicks(before, 0), coreTicks(after, 0), 400)).toBeCloseTo(0.25);
    expect(othersShare(coreTicks(before, 0), coreTicks(after, 0), 650)).toBe(0);
    expect(othersShare(coreTicks(before, 0), coreTicks(before, 0), 0)).toBe(0);
  });
});

describe("rounds", () => {
  it("median of odd and even counts; summary with the range", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
    expect(summarize([1.2, 0.9, 1.1, 1.0, 1.3])).toEqual({ median: 1.1, min: 0.9, max: 1.3, n: 5 });
  });

  it("compares two configurations round by round, never across rounds", () => {
    expect(perRound([100, 80, 60], [50, 80, 30])).toEqual([2, 1, 2]);
    expect(perRound([10, 20], [5, 5], (a, b) => a - b)).toEqual([5, 15]);
    expect(() => perRound([1, 2], [1])).toThrow(/rounds differ/);
  });

  it("prints median then range", () => {
    expect(cell({ median: 1.126, min: 1.08, max: 1.15, n: 5 })).toBe("1.13 [1.08–1.15]");
    expect(cell({ median: 21.24, min: 20, max: 25.55, n: 5 }, 1)).toBe("21.2 [20.0–25.6]");
    expect(cell(undefined)).toBe("");
  });
});

describe("the report", () => {
  const sections: Section[] = [
    {
      title: "Hot 1 KiB object",
      rows: [
        { config: "stock nginx proxy_cache HIT", ratio: summarize([1, 1, 1]), cpuUs: summarize([13, 13.5, 12.9]) },
        { config: "a | pipe", ratio: summarize([1.2, 1.1, 1.3]), cpuUs: summarize([10, 11, 12]), note: "x" },
      ],
      notes: ["RAM-tier HIT / Lua floor: 0.93"],
    },
    { title: "MISS", baseline: "stock MISS", rows: [{ config: "bundle MISS", cpuUs: summarize([100, 120, 110]) }] },
    { title: "Worker memory", rows: [{ config: "worker RSS", note: "VmRSS 95 MiB" }] },
  ];

  it("is one Markdown table: a row per configuration, a bold row per further section, notes below", () => {
    const md = markdownTable(sections);
    const lines = md.trim().split("\n");
    expect(lines[0]).toMatch(/^\| config \| x stock proxy_cache/);
    expect(lines[1]).toBe("|---|---|---|---|");
    expect(lines).toContain("| stock nginx proxy_cache HIT | 1.00 [1.00–1.00] | 13.0 [12.9–13.5] |  |");
    expect(lines).toContain("| a \\| pipe | 1.20 [1.10–1.30] | 11.0 [10.0–12.0] | x |");
    expect(lines).toContain("| **MISS (ratio against: stock MISS)** | | | |");
    expect(lines).toContain("| bundle MISS |  | 110.0 [100.0–120.0] |  |");
    expect(lines).toContain("| **Worker memory** | | | |");
    expect(md).toContain("\n\nHot 1 KiB object:\n\n- RAM-tier HIT / Lua floor: 0.93\n");
    // every table line has the same number of cells
    for (const l of lines.filter((x) => x.startsWith("|"))) expect(l.replace(/\\\|/g, "").split("|").length).toBe(6);
  });

  it("is aligned plain text for the terminal", () => {
    const txt = textTable(sections);
    expect(txt).toMatch(/^config +x stock proxy_cache/);
    expect(txt).toContain("-- MISS (ratio against: stock MISS)");
    expect(txt).toContain("   * RAM-tier HIT / Lua floor: 0.93");
    const rows = txt.split("\n").filter((l) => l.startsWith("stock nginx") || l.startsWith("a | pipe"));
    expect(rows[0]!.indexOf("1.00 [")).toBe(rows[1]!.indexOf("1.20 ["));
  });
});

describe("peers' hit evidence and error logs", () => {
  it("a Varnish hit names two transactions in X-Varnish", () => {
    expect(isVarnishHit(headers({ "x-varnish": "32770 4" }))).toBe(true);
    expect(isVarnishHit(headers({ "x-varnish": "32769" }))).toBe(false);
    expect(isVarnishHit(headers({}))).toBe(false);
  });

  it("a Traffic Server hit says cH or cR in its Via codes (its Age says nothing)", () => {
    expect(isAtsHit(headers({ via: "http/1.1 traffic_server (ApacheTrafficServer/9.2.9 [cHs f ])" }))).toBe(true);
    expect(isAtsHit(headers({ via: "http/1.1 traffic_server (ApacheTrafficServer/9.2.9 [cRs f ])" }))).toBe(true);
    expect(isAtsHit(headers({ via: "http/1.1 traffic_server (ApacheTrafficServer/9.2.9 [cMsSfW])", age: "0" }))).toBe(false);
    expect(isAtsHit(headers({ age: "0" }))).toBe(false);
  });

  it("error.log lines that fail a scenario: [error] or worse, and Lua failures at any level", () => {
    expect(isErrorLine("2026/12/01 07:10:19 [error] 10442#10442: *3 lua entry thread aborted: runtime error: x")).toBe(true);
    expect(isErrorLine("2026/12/01 07:10:19 [alert] 1#1: could not allocate node")).toBe(true);
    expect(isErrorLine("2026/12/01 07:10:19 [emerg] 1#1: bind() failed")).toBe(true);
    expect(isErrorLine("2026/12/01 07:10:19 [warn] 1#1: *9 failed to run log_by_lua*: x")).toBe(true);
    expect(isErrorLine("stack traceback:")).toBe(true);
    expect(isErrorLine("2026/12/01 07:10:19 [warn] 1#1: an upstream response is buffered to a temporary file")).toBe(false);
    expect(isErrorLine("2026/12/01 07:10:19 [notice] 1#1: signal process started")).toBe(false);
    expect(isErrorLine("")).toBe(false);
  });
});
