import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

/**
 * The documentation's relative links: every link in README.md and docs/*.md must point to a file of the
 * repository, and every `#anchor` to a heading of the target page (GitHub's anchor rules). Needs no nginx.
 */

const ROOT = join(import.meta.dirname, "..");
const DOCS = join(ROOT, "docs");
const PAGES = [join(ROOT, "README.md"), ...readdirSync(DOCS).filter((f) => f.endsWith(".md")).sort().map((f) => join(DOCS, f))];

/**
 * Pages generated on another branch that README already links to. A link to one of them is accepted while
 * the file does not exist; once it exists, its anchors are checked like any page's. Remove entries when the
 * page lands.
 */
const PENDING = new Set<string>();

/** Lines outside fenced code blocks, with their line numbers. */
function proseLines(text: string): { line: string; n: number }[] {
  const out: { line: string; n: number }[] = [];
  let fence: string | undefined;
  text.split("\n").forEach((line, i) => {
    const m = /^\s*(`{3,}|~{3,})/.exec(line);
    if (m) {
      if (fence === undefined) fence = m[1]![0];
      else if (m[1]![0] === fence) fence = undefined;
      return;
    }
    if (fence === undefined) out.push({ line, n: i + 1 });
  });
  return out;
}

/** GitHub's heading anchor: rendered text, lower-cased, punctuation dropped, spaces to hyphens, -N for repeats. */
export function anchorsOf(text: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const { line } of proseLines(text)) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const rendered = m[1]!
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1") // links and images: their text
      .replace(/`([^`]*)`/g, "$1") // inline code: its content
      .replace(/<[^>]+>/g, ""); // inline HTML
    const base = rendered
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "")
      .replace(/ /g, "-");
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
}

interface Link {
  page: string;
  n: number;
  target: string;
}

function linksOf(page: string): Link[] {
  const links: Link[] = [];
  for (const { line, n } of proseLines(readFileSync(page, "utf8"))) {
    const prose = line.replace(/`[^`]*`/g, ""); // links inside inline code are not links
    for (const m of prose.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) links.push({ page, n, target: m[1]! });
  }
  return links;
}

const anchorCache = new Map<string, Set<string>>();
function anchorsOfFile(file: string): Set<string> {
  let a = anchorCache.get(file);
  if (!a) anchorCache.set(file, (a = anchorsOf(readFileSync(file, "utf8"))));
  return a;
}

/** The problem with one link, or undefined when it is fine. */
function check(link: Link): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(link.target)) return undefined; // http:, https:, mailto: ...
  const hash = link.target.indexOf("#");
  const pathPart = hash === -1 ? link.target : link.target.slice(0, hash);
  const anchor = hash === -1 ? undefined : decodeURIComponent(link.target.slice(hash + 1));
  const file = pathPart === "" ? link.page : resolve(dirname(link.page), decodeURIComponent(pathPart));
  if (!file.startsWith(ROOT)) return `points outside the repository`;
  if (!existsSync(file)) return PENDING.has(file) ? undefined : `${relative(ROOT, file)} does not exist`;
  if (anchor === undefined || anchor === "") return undefined;
  if (statSync(file).isDirectory() || !file.endsWith(".md")) return `an anchor into ${relative(ROOT, file)}, which is not a Markdown page`;
  return anchorsOfFile(file).has(anchor) ? undefined : `#${anchor} is not a heading of ${relative(ROOT, file)}`;
}

describe("documentation links", () => {
  it("computes GitHub's anchors", () => {
    expect([...anchorsOf("# Cache (`cache`)\n## RAM hot tier (`cache.ram`)\n## Tests\n## Tests\n```\n# not a heading\n```\n")]).toEqual([
      "cache-cache",
      "ram-hot-tier-cacheram",
      "tests",
      "tests-1",
    ]);
  });

  it.each(PAGES.map((p) => [relative(ROOT, p), p]))("%s: every relative link and anchor resolves", (_name, page) => {
    const broken = linksOf(page)
      .map((l) => ({ l, problem: check(l) }))
      .filter((x) => x.problem !== undefined)
      .map(({ l, problem }) => `${relative(ROOT, l.page)}:${l.n}: (${l.target}) ${problem}`);
    expect(broken).toEqual([]);
  });

  it("README links every page of docs/", () => {
    const linked = new Set(linksOf(join(ROOT, "README.md")).map((l) => resolve(ROOT, l.target.split("#")[0]!)));
    const missing = PAGES.slice(1).filter((p) => !linked.has(p)).map((p) => relative(ROOT, p));
    expect(missing).toEqual([]);
  });
});
