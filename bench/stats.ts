/**
 * The pure parts of `npm run bench`: reading wrk's output and /proc, refusing runs with errors, medians and
 * ranges over rounds, and the report table (text and Markdown). No I/O here: `test/bench-stats.test.ts`
 * checks all of it without running anything.
 */

/** What one wrk run reported. */
export interface WrkOutput {
  requests: number;
  rps: number;
  /** "Non-2xx or 3xx responses" (0 when wrk printed no such line). */
  non2xx: number;
  socketErrors: { connect: number; read: number; write: number; timeout: number };
}

/** Parses wrk's summary (wrk 4.x). Throws when the numbers it always prints are missing. */
export function parseWrk(stdout: string): WrkOutput {
  const requests = /(\d+) requests in /.exec(stdout);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
  if (!requests || !rps) throw new Error(`unreadable wrk output:\n${stdout}`);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(stdout);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  return {
    requests: Number(requests[1]),
    rps: Number(rps[1]),
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    socketErrors: {
      connect: Number(sock?.[1] ?? 0),
      read: Number(sock?.[2] ?? 0),
      write: Number(sock?.[3] ?? 0),
      timeout: Number(sock?.[4] ?? 0),
    },
  };
}

/** Why a run must be refused (never reported), or undefined when it is clean. */
export function refusal(w: WrkOutput): string | undefined {
  const problems: string[] = [];
  if (w.requests === 0) problems.push("no request completed");
  if (w.non2xx > 0) problems.push(`${w.non2xx} non-2xx/3xx responses`);
  const s = w.socketErrors;
  const sockets = s.connect + s.read + s.write + s.timeout;
  if (sockets > 0) problems.push(`socket errors: connect ${s.connect}, read ${s.read}, write ${s.write}, timeout ${s.timeout}`);
  return problems.length ? problems.join("; ") : undefined;
}

/**
 * CPU time (user + system) in clock ticks from the text of `/proc/<pid>/stat` (fields 14 and 15; the command
 * name in parentheses may itself hold spaces and parentheses, so fields are counted after the last ')').
 */
export function statCpuTicks(stat: string): number {
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(f[11]);
  const stime = Number(f[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`unreadable /proc stat: ${stat}`);
  return utime + stime;
}

/** One core's counters from `/proc/stat`, in clock ticks. */
export interface CoreTicks {
  total: number;
  /** idle + iowait */
  idle: number;
  /** irq + softirq: interrupts, including the network work of the measured server itself */
  irq: number;
}

export function coreTicks(procStat: string, cpu: number): CoreTicks {
  const line = procStat.split("\n").find((l) => l.startsWith(`cpu${cpu} `));
  if (!line) throw new Error(`no cpu${cpu} line in /proc/stat`);
  const f = line.trim().split(/\s+/).slice(1, 9).map(Number); // user nice system idle iowait irq softirq steal
  return { total: f.reduce((a, b) => a + b, 0), idle: f[3]! + f[4]!, irq: f[5]! + f[6]! };
}

/**
 * The share of a core that went to other processes and to the hypervisor (steal) during a run, i.e. not to
 * the measured processes, nor to interrupts (which carry the measured server's own network work): 0 on a
 * quiet core.
 */
export function othersShare(before: CoreTicks, after: CoreTicks, ownTicks: number): number {
  const total = after.total - before.total;
  if (total <= 0) return 0;
  const busy = total - (after.idle - before.idle) - (after.irq - before.irq);
  return Math.min(1, Math.max(0, (busy - ownTicks) / total));
}

/** A `kB` field of `/proc/<pid>/status` (VmRSS, RssAnon, RssShmem...), in KiB; undefined when absent. */
export function statusKb(status: string, field: string): number | undefined {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
  return m ? Number(m[1]) : undefined;
}

/** Median (the mean of the two middle values for an even count). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Median and range of a set of per-round values. */
export interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function summarize(xs: readonly number[]): Summary {
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length };
}

/** Per-round quotient a[i] / b[i] (the same round of two configurations). */
export function perRound(a: readonly number[], b: readonly number[], f: (x: number, y: number) => number = (x, y) => x / y): number[] {
  if (a.length !== b.length) throw new Error(`rounds differ: ${a.length} vs ${b.length}`);
  return a.map((x, i) => f(x, b[i]!));
}

/** "1.12 [1.08–1.15]": median, then the range over rounds. */
export function cell(s: Summary | undefined, digits = 2): string {
  if (!s || s.n === 0 || !Number.isFinite(s.median)) return "";
  return `${s.median.toFixed(digits)} [${s.min.toFixed(digits)}–${s.max.toFixed(digits)}]`;
}

/** One line of the report. */
export interface Row {
  config: string;
  /** req/s of this configuration / req/s of its baseline, per round. */
  ratio?: Summary;
  /** Worker CPU µs per request. */
  cpuUs?: Summary;
  note?: string;
}

/** A block of rows: the main table, or an extra measurement with its own baseline. */
export interface Section {
  title: string;
  /** What the ratio column compares against in this section. */
  baseline?: string;
  rows: Row[];
  /** Lines printed under the table (targets met or not, compile times...). */
  notes?: string[];
}

const HEADER = ["config", "x stock proxy_cache (req/s; or the section's baseline), median [range]", "worker CPU µs/req, median [range]", "note"];

function rowCells(r: Row): string[] {
  return [r.config, cell(r.ratio), cell(r.cpuUs, 1), r.note ?? ""];
}

function sectionTitle(s: Section): string {
  return s.baseline ? `${s.title} (ratio against: ${s.baseline})` : s.title;
}

/** Markdown escaping for table cells: a `|` would end the cell. */
function md(x: string): string {
  return x.replace(/\|/g, "\\|");
}

/** The whole report as one Markdown table; sections after the first get a bold row of their own. */
export function markdownTable(sections: readonly Section[]): string {
  const lines = [`| ${HEADER.join(" | ")} |`, `|${HEADER.map(() => "---").join("|")}|`];
  sections.forEach((s, i) => {
    if (i > 0 || s.baseline) lines.push(`| **${md(sectionTitle(s))}** | | | |`);
    for (const r of s.rows) lines.push(`| ${rowCells(r).map(md).join(" | ")} |`);
  });
  const notes = sections.filter((s) => s.notes?.length).map((s) => `${s.title}:\n\n${s.notes!.map((n) => `- ${n}`).join("\n")}`);
  return lines.join("\n") + (notes.length ? `\n\n${notes.join("\n\n")}` : "") + "\n";
}

/** The same report as aligned plain text for the terminal. */
export function textTable(sections: readonly Section[]): string {
  const rows = sections.flatMap((s) => s.rows.map(rowCells));
  const width = HEADER.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: string[]) => cells.map((x, c) => (c === cells.length - 1 ? x : x.padEnd(width[c]!))).join("  ").trimEnd();
  const out = [line(HEADER), line(width.map((w) => "-".repeat(w)))];
  for (const s of sections) {
    out.push(`-- ${sectionTitle(s)}`);
    for (const r of s.rows) out.push(line(rowCells(r)));
    for (const n of s.notes ?? []) out.push(`   * ${n}`);
  }
  return out.join("\n") + "\n";
}

/** `X-Varnish` of a hit carries two transaction ids (this request's and the one that stored the object). */
export function isVarnishHit(headers: { get(name: string): string | null }): boolean {
  return (headers.get("x-varnish") ?? "").trim().split(/\s+/).length === 2;
}

/**
 * Traffic Server's `Via` (with `proxy.config.http.insert_response_via_str 2`) codes the cache lookup after the
 * product name: `[cHs f ]` is a fresh hit (`cH`; `cR` a hit from its RAM cache), `[cMsSfW]` a miss. (Its `Age`
 * says nothing: it sends `Age: 0` on a miss too.)
 */
export function isAtsHit(headers: { get(name: string): string | null }): boolean {
  return /ApacheTrafficServer\/[^\s]+ \[c[HR]/.test(headers.get("via") ?? "");
}

/** The CPUs a thread may run on, from the `Cpus_allowed_list` line of /proc/<pid>/task/<tid>/status. */
export function allowedCpus(status: string): string | undefined {
  return /^Cpus_allowed_list:\s+(\S+)/m.exec(status)?.[1];
}

/** A line of nginx's error.log that fails a scenario: an error or worse, or any Lua failure. */
export function isErrorLine(line: string): boolean {
  return /\[(error|crit|alert|emerg)\]/.test(line) || /lua entry thread aborted|stack traceback|runtime error:|failed to run/i.test(line);
}
