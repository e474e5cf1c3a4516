/**
 * Security issue 11 §8: policy values that build but do something dangerous get a diagnostic with a hint:
 * logs and caches in system directories (or a cache in a shared one), a purge endpoint open to the internet,
 * a redirect to `//host`, endpoints on `/`, rewrites with `..`. Each class is tried in its spellings, next to
 * values that must stay clean.
 */
import { describe, expect, it } from "vitest";
import { compile } from "../../src/compile.js";
import type { Policy } from "../../src/policy/types.js";
import { env } from "../../src/policy/env.js";
import { policy } from "../support/policy.js";
import { tally } from "../support/tally.js";

const ORIGIN = "127.0.0.1:9";
const run = (extra: Partial<Policy>) => compile(policy(ORIGIN, extra), { target: "openresty" });

/** [class, value, policy, code, JSON pointer, severity] */
type Case = [string, string, Partial<Policy>, string, string, "error" | "warning"];
const log = (path: string): Partial<Policy> => ({ accessLog: { path } });
const disk = (path: string): Partial<Policy> => ({ cache: { disk: { path } } });
const state = (path: string): Partial<Policy> => ({ cache: { disk: { statePath: path } } });
const allow = (c: string): Partial<Policy> => ({ cache: {}, purge: { token: env("T"), allow: [c] } });
const rule = (then: Policy["rules"] extends (infer R)[] | undefined ? R extends { then: infer T } ? T : never : never): Partial<Policy> => ({ rules: [{ name: "r", when: { path: "/old" }, then }] });

const FOOTGUNS: Case[] = [
  ...["/etc/passwd", "/etc/nginx/access.log", "//etc/passwd", "/./etc/shadow", "/bin/sh", "/usr/bin/log", "/sbin/x", "/boot/log", "/root/.bashrc", "/proc/self/environ", "/sys/kernel/x", "/lib/x", "/lib64/x", "/run/x", "/dev/sda", "/"].map((p): Case => ["access log in a system directory", p, log(p), "CDN2069", "/accessLog/path", "error"]),
  ...["/etc", "/", "/usr", "/usr/share/x", "/boot/cache", "/dev/sda", "/dev/shm", "/root/cache"].map((p): Case => ["cache in a system directory", p, disk(p), "CDN2069", "/cache/disk/path", "error"]),
  ...["/etc", "/sys/cache"].map((p): Case => ["cache state in a system directory", p, state(p), "CDN2069", "/cache/disk/statePath", "error"]),
  ...["/tmp", "/var", "/var/cache", "/var/lib", "/var/log", "/home", "/srv", "/opt", "/data", "/mnt", "/tmp/", "/usr/local"].map((p): Case => ["cache in a shared directory", p, disk(p), "CDN2070", "/cache/disk/path", "warning"]),
  ...["0.0.0.0/0", "::/0", "0.0.0.0/1", "128.0.0.0/7", "2000::/3", "0::/0"].map((c): Case => ["purge open to the internet", c, allow(c), "CDN4053", "/purge/allow/0", "warning"]),
  ...["//evil.com/x", "//evil.com", "///evil.com/x", "//127.0.0.1:8080/"].map((to): Case => ["redirect to //host", to, rule({ redirect: { to } }), "CDN5040", "/rules/0/then/redirect/to", "error"]),
  ["endpoint on /", "health /", { health: { path: "/" } }, "CDN2068", "/health/path", "error"],
  ["endpoint on /", "purge /", { purge: { path: "/" } }, "CDN2068", "/purge/path", "error"],
  ...["/../../etc/passwd", "/a/../b", "/./a", "/a/.", "/%2e%2e/etc/passwd", "/%2E./x", "/.%2e/x", "/a/%2e"].map((p): Case => ["rewrite with dot segments", p, rule({ rewrite: { path: p } }), "CDN5041", "/rules/0/then/rewrite/path", "error"]),
  ...["/..", "/x/../.."].map((p): Case => ["rewrite with dot segments", `addPrefix ${p}`, rule({ rewrite: { addPrefix: p } }), "CDN5041", "/rules/0/then/rewrite/addPrefix", "error"]),
  ["rewrite with dot segments", "image url /../{path}", rule({ image: { url: "/../{path}" } }), "CDN5041", "/rules/0/then/image/url", "error"],
];

/** Values next to the footguns that must stay clean. */
const CLEAN: [string, Partial<Policy>][] = [
  ...["logs/access.log", "/var/log/edge/access.log", "/dev/stdout", "/dev/stderr", "/dev/null", "/usr/local/openresty/nginx/logs/access.log", "/srv/edge/logs/a.log"].map((p): [string, Partial<Policy>] => [`access log ${p}`, log(p)]),
  ...["cache/disk", "/var/cache/edge", "/dev/shm/edge", "/srv/edge/cache", "/data/cache"].map((p): [string, Partial<Policy>] => [`cache ${p}`, disk(p)]),
  ...["10.0.0.0/8", "fd00::/8", "127.0.0.1/32", "192.168.0.0/16"].map((c): [string, Partial<Policy>] => [`purge allow ${c}`, allow(c)]),
  ...["/new", "https://www.example.com/x", "/a//b"].map((to): [string, Partial<Policy>] => [`redirect ${to}`, rule({ redirect: { to } })]),
  ...["/a..b/c", "/.well-known/x", "/a/b.", "/%2e%2ex"].map((p): [string, Partial<Policy>] => [`rewrite ${p}`, rule({ rewrite: { path: p } })]),
  ["health /health", { health: { path: "/health" } }],
];

describe("§8 footguns get a diagnostic with a hint", () => {
  it("reports every footgun at its path, with its severity and a hint", () => {
    const t = tally("§8 footguns");
    for (const [what, value, extra, code, at, severity] of FOOTGUNS) {
      const r = run(extra);
      const d = r.diagnostics.find((x) => x.code === code && x.path === at);
      t.refused(d !== undefined && d.severity === severity && (d.hint ?? "").length > 10 && (severity === "warning" || r.bundle === undefined), `${what} ${JSON.stringify(value)}: ${r.diagnostics.map((x) => `${x.severity} ${x.code} ${x.path}`).join(", ") || "nothing"}`);
    }
    for (const [what, extra] of CLEAN) {
      const r = run(extra);
      t.accepted(r.bundle !== undefined && !r.diagnostics.some((d) => ["CDN2068", "CDN2069", "CDN2070", "CDN4053", "CDN5040", "CDN5041"].includes(d.code)), `${what}: ${r.diagnostics.map((x) => `${x.code} ${x.path}`).join(", ")}`);
    }
    t.done();
  });

  it("names the redirect's real host and the directory in the message", () => {
    const r = run(rule({ redirect: { to: "//evil.com/x" } }));
    expect(r.diagnostics.find((d) => d.code === "CDN5040")!.message).toContain("evil.com");
    const l = run(log("/etc/passwd"));
    expect(l.diagnostics.find((d) => d.code === "CDN2069")!.message).toContain("/etc");
  });
});
