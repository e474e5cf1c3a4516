import type { Feature } from "./shared/feature.js";
import type { Actions, Condition, HeaderRules, Policy, Rule } from "../policy/types.js";
import { error, pointer, warning, type Diagnostic } from "../validate/diagnostic.js";
import { checkCidr, checkDuration, checkSize, checkUnique } from "../validate/checks.js";
import { durationSeconds, sizeBytes } from "../util/units.js";
import { MAX_BODY_SIZE } from "./client.js";
import { compileRanges } from "../util/ip-ranges.js";
import { headerVar } from "../util/nginx-var.js";
import type { CdnVar, RuleCond, RuleData, RulePoolTarget } from "../contract/index.js";
import { defaultOriginName, proxySettings, upstreamName } from "./origins.js";
import { and, conjuncts, countryVar, decodePath, type CondNode } from "./rules/conditions.js";
import { CoverCandidates, covers, prepare, staticEval, type Prepared } from "./rules/analysis.js";
import { buildRulesIndex, PathLookup, residual, ruleKeys } from "./rules/rule-index.js";
import { poolsOfActions, routedPools } from "./rules/routing.js";
import { checkPattern, quote, toPcre } from "./shared/regex/index.js";
import { CATALOGUE } from "../validate/catalogue.js";
import { checkSetTotal } from "./shared/header-limits.js";
import { targetFootguns } from "./rules/footguns.js";
import { lowerSet } from "./shared/header-values.js";
import type { EdgeIR } from "../ir/types.js";

/* Diagnostics of the rules engine: the `rule*` and `experiment*` entries of src/validate/catalogue.ts. */

const PROTECTED = new Set(["content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer", "host"]);
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/;
/** Statuses a TTL override applies to. */
const TTL_STATUSES = ["200", "203", "206", "301", "302", "307", "308"];

type At = (...s: (string | number)[]) => string;

/** What the pattern checks of one rule share: the rule's opt-in, and whether any pattern needed it. */
interface PatternScope {
  unsafe: boolean;
  needed: boolean;
}

/** `matchesAll`: what to say when the pattern matches every value; `ci`: matched case-insensitively. */
function checkRegex(source: string, at: string, out: Diagnostic[], scope: PatternScope, ci: boolean, matchesAll: string): void {
  const { diagnostics, analysis } = checkPattern(source, { at, ci, unsafe: scope.unsafe, invalid: "ruleInvalidRegex" });
  out.push(...diagnostics);
  if (!analysis) return;
  if (analysis.verdict !== "linear") scope.needed = true;
  if (analysis.matchesEverything) out.push(warning("regexMatchesEverything", at, `pattern ${quote(source)} matches the empty string in any value, so it holds for every request that has one`, matchesAll));
}

function checkCondition(c: Condition, at: At, out: Diagnostic[], scope: PatternScope): void {
  const paths = c.path === undefined ? [] : Array.isArray(c.path) ? c.path : [c.path];
  paths.forEach((p, i) => {
    const where = Array.isArray(c.path) ? at("path", i) : at("path");
    if (typeof p === "object") {
      const n = ["exact", "prefix", "glob", "regex"].filter((k) => (p as Record<string, unknown>)[k] !== undefined).length;
      if (n !== 1) out.push(error("ruleContradictoryCondition", where, "a path match needs exactly one of exact, prefix, glob, regex", 'e.g. { prefix: "/api/" }'));
      if (p.regex !== undefined) checkRegex(p.regex, where + "/regex", out, scope, false, 'anchor it to what the path must contain (e.g. "^/u/[0-9]+$"), or use { prefix: "/" } for every path');
    }
  });
  if (Array.isArray(c.path) && c.path.length === 0) out.push(error("ruleEmptyList", at("path"), "the path list is empty", "list at least one pattern, or remove the key"));
  for (const key of ["extension", "method", "host", "clientIp", "userAgent"] as const) {
    const list = c[key];
    if (list !== undefined && list.length === 0) out.push(error("ruleEmptyList", at(key), `the ${key} list is empty`, "list at least one value, or remove the key"));
  }
  if (c.header) {
    const h = c.header;
    if (h.equals !== undefined && h.matches !== undefined) out.push(error("ruleContradictoryCondition", at("header"), "give either equals or matches, not both", "keep one"));
    if (h.exists === false && (h.equals !== undefined || h.matches !== undefined)) {
      out.push(error("ruleContradictoryCondition", at("header", "exists"), "a header cannot be absent and have a value", "remove exists: false, or the value test"));
    }
    if (h.matches !== undefined) checkRegex(h.matches, at("header", "matches"), out, scope, false, "anchor it to what the value must contain, or use exists: true");
  }
  for (const key of ["cookie", "query"] as const) {
    const v = c[key];
    if (v && v.exists === false && v.equals !== undefined) out.push(error("ruleContradictoryCondition", at(key, "exists"), `a ${key} cannot be absent and have a value`, "remove exists: false, or equals"));
  }
  (c.clientIp ?? []).forEach((cidr, i) => out.push(...checkCidr(cidr, at("clientIp", i))));
  (c.userAgent ?? []).forEach((p, i) => checkRegex(p, at("userAgent", i), out, scope, true, "name what the user agent must contain, e.g. \"googlebot\""));
  for (const key of ["all", "any"] as const) {
    const list = c[key];
    if (list === undefined) continue;
    if (list.length === 0) out.push(error("ruleEmptyList", at(key), `the ${key} list is empty`, "list at least one condition, or remove the key"));
    list.forEach((sub, i) => checkCondition(sub, (...s) => at(key, i, ...s), out, scope));
  }
  if (c.not) checkCondition(c.not, (...s) => at("not", ...s), out, scope);
}

function checkHeaderChanges(rules: HeaderRules | undefined, at: At, out: Diagnostic[]): void {
  if (!rules) return;
  const names = Object.keys(rules.set ?? {});
  for (const name of names) {
    // the name follows the one header-name rule, checked by the schema (src/util/header-name.ts)
    if (PROTECTED.has(name.toLowerCase())) out.push(error("ruleBadHeaderChange", at("set", name), `the ${name} header cannot be changed by a rule`, "nginx manages it; remove this entry"));
    const v = rules.set![name]!;
    if (typeof v === "string" && CONTROL.test(v)) out.push(error("ruleBadHeaderChange", at("set", name), `the value of ${name} contains a control character`, "remove line breaks and control characters"));
  }
  out.push(...checkUnique(names, (i) => at("set", names[i]!), "header"));
  const remove = rules.remove ?? [];
  out.push(...checkUnique(remove, (i) => at("remove", i), "header"));
  remove.forEach((name, i) => {
    if (PROTECTED.has(name.toLowerCase())) out.push(error("ruleBadHeaderChange", at("remove", i), `the ${name} header cannot be removed by a rule`, "nginx manages it; remove this entry"));
    if (names.some((n) => n.toLowerCase() === name.toLowerCase())) out.push(error("ruleBadHeaderChange", at("remove", i), `${name} is both set and removed`, "keep it in one list only"));
  });
}

/** The endings of a rule: actions that answer the client themselves. */
function endings(a: Actions): string[] {
  return (["redirect", "respond", "deny"] as const).filter((k) => a[k] !== undefined);
}

function hasActions(a: Actions): boolean {
  return Object.values(a).some((v) => v !== undefined);
}

function checkActions(policy: Policy, rule: Rule, at: At, out: Diagnostic[]): void {
  const a = rule.then;
  const pools = Object.keys(policy.origins);
  const pool = (name: string, where: string) => {
    if (!(name in policy.origins)) out.push(error("ruleUnknownOrigin", where, `rule "${rule.name}" routes to unknown origin pool "${name}"`, `use one of: ${pools.join(", ")}`));
  };
  if (a.origin !== undefined) pool(a.origin, at("then", "origin"));
  if (a.geo) {
    for (const [country, p] of Object.entries(a.geo.map)) {
      if (!/^[A-Z]{2}$/.test(country)) out.push(error("ruleInvalidCountry", at("then", "geo", "map", country), `"${country}" is not a country code`, 'use two upper-case letters (ISO 3166-1), e.g. "DE"'));
      pool(p, at("then", "geo", "map", country));
    }
    pool(a.geo.default, at("then", "geo", "default"));
  }
  if (a.image?.origin !== undefined) pool(a.image.origin, at("then", "image", "origin"));
  const routes = [a.origin !== undefined && "origin", a.geo && "geo", a.image?.origin !== undefined && "image.origin"].filter(Boolean);
  if (routes.length > 1) out.push(error("ruleConflictingActions", at("then"), `rule "${rule.name}" routes in several ways (${routes.join(", ")})`, "keep one, or split the rule in two with continue"));
  out.push(...checkSize(a.maxBodySize, at("then", "maxBodySize"), { max: MAX_BODY_SIZE, maxText: '"64g"' }));
  if (a.image?.url !== undefined && a.rewrite) out.push(error("ruleConflictingActions", at("then", "rewrite"), `rule "${rule.name}" both rewrites the path and builds an image URL`, "keep one of rewrite and image.url"));

  const ends = endings(a);
  if (ends.length > 1) out.push(error("ruleConflictingEndings", at("then", ends[1]!), `rule "${rule.name}" has several endings (${ends.join(", ")})`, "a request can only be answered once: keep one"));
  if (ends.length > 0 && rule.continue) out.push(error("ruleConflictingEndings", at("continue"), `rule "${rule.name}" ends the request (${ends[0]}), so continue has no effect`, "remove continue"));
  if (!hasActions(a)) out.push(warning("ruleWithoutActions", at("then"), `rule "${rule.name}" has no actions`, "add an action, or remove the rule"));

  if (a.cache) {
    if (!policy.cache) out.push(error("ruleCacheWithoutCache", at("then", "cache"), `rule "${rule.name}" changes caching but the policy has no cache`, "add a cache section, or remove the cache action"));
    if (a.cache.ttl !== undefined && a.cache.bypass === true) {
      out.push(error("ruleTtlOnBypass", at("then", "cache", "ttl"), `rule "${rule.name}" sets a TTL for requests it bypasses the cache for`, "remove ttl or bypass"));
    }
    out.push(...checkDuration(a.cache.ttl, at("then", "cache", "ttl")));
    const k = a.cache.key;
    if (k) {
      out.push(...checkUnique(k.headers ?? [], (i) => at("then", "cache", "key", "headers", i), "header"));
      out.push(...checkUnique(k.cookies ?? [], (i) => at("then", "cache", "key", "cookies", i), "cookie"));
    }
  }
  checkHeaderChanges(a.requestHeaders, (...s) => at("then", "requestHeaders", ...s), out);
  checkHeaderChanges(a.responseHeaders, (...s) => at("then", "responseHeaders", ...s), out);
  out.push(...checkSetTotal(a.requestHeaders?.set, "request", at("then", "requestHeaders", "set")), ...checkSetTotal(a.responseHeaders?.set, "response", at("then", "responseHeaders", "set")));
  out.push(...targetFootguns(a, (...s) => at("then", ...s)));
  if (a.rewrite && a.rewrite.path === undefined && a.rewrite.stripPrefix === undefined && a.rewrite.addPrefix === undefined) {
    out.push(error("ruleEmptyRewrite", at("then", "rewrite"), "the rewrite changes nothing", "give path, stripPrefix or addPrefix"));
  }
  if (a.rewrite?.path !== undefined && a.rewrite.stripPrefix !== undefined) {
    out.push(error("ruleConflictingActions", at("then", "rewrite", "stripPrefix"), "stripPrefix has no effect when path replaces the whole path", "remove one of them"));
  }
  const e = a.experiment;
  if (e) {
    const sum = e.variants.reduce((s, v) => s + v.weight, 0);
    if (Math.abs(sum - 100) > 1e-9) out.push(error("experimentWeights", at("then", "experiment", "variants"), `the weights of experiment "${e.name}" add up to ${sum}, not 100`, "make the percentages add up to 100"));
    out.push(...checkUnique(e.variants.map((v) => v.name), (i) => at("then", "experiment", "variants", i, "name"), "variant"));
    if (e.pathPrefix && e.cacheKey === false) {
      out.push(error("experimentPathPrefixUncached", at("then", "experiment", "cacheKey"), `experiment "${e.name}" sends each variant to a different path, so the variant must be part of the cache key`, "remove cacheKey: false"));
    }
    if (e.by === "ip" && (e.cookie !== undefined || e.cookieMaxAge !== undefined)) {
      out.push(error("experimentIpWithCookie", at("then", "experiment", "by"), `experiment "${e.name}" is keyed by IP but sets cookie options`, 'use by: "cookie", or remove cookie / cookieMaxAge'));
    }
    out.push(...checkDuration(e.cookieMaxAge, at("then", "experiment", "cookieMaxAge")));
    if (e.cacheKey && !policy.cache) out.push(error("ruleCacheWithoutCache", at("then", "experiment", "cacheKey"), "cacheKey needs a cache in the policy", "add a cache section, or remove cacheKey"));
  }
  const img = a.image;
  if (img) {
    const w = img.widths ?? [];
    if (w.some((x) => !Number.isInteger(x) || x < 1 || x > 10000)) out.push(error("ruleInvalidImage", at("then", "image", "widths"), "widths must be whole numbers from 1 to 10000", "e.g. [320, 640, 1280]"));
    out.push(...checkUnique(w.map(String), (i) => at("then", "image", "widths", i), "width"));
    if (img.formats !== undefined && new Set(img.formats).size !== img.formats.length) out.push(error("ruleInvalidImage", at("then", "image", "formats"), "a format is listed twice", "list each format once"));
    if (img.url !== undefined && !img.url.startsWith("/") && !img.url.startsWith("{path}")) {
      out.push(error("ruleInvalidImage", at("then", "image", "url"), "the image URL must start with / or {path}", 'e.g. "/resize/{width}{path}"'));
    }
  }
  if (a.respond && a.respond.status >= 300 && a.respond.status < 400) {
    out.push(error("ruleRespondRedirect", at("then", "respond", "status"), "use redirect for 3xx answers", "redirect: { to, status }"));
  }
}

interface Analysed {
  rule: Rule;
  index: number;
  conj: CondNode[];
  prepared: Prepared;
}

function ruleCovers(a: Analysed, b: Analysed): boolean {
  return covers(a.prepared, b.prepared);
}

/** Requests a rule's condition requires a cookie/header for, which the global cache bypass already excludes. */
function bypassedBy(policy: Policy, conj: CondNode[]): string | undefined {
  const b = policy.cache?.bypass ?? {};
  const cookies = new Set(b.cookies ?? []);
  const headers = new Set([...(b.authorization === false ? [] : ["authorization"]), ...(b.headers ?? []).map((h) => h.toLowerCase())]);
  for (const c of conj) {
    if (c.t === "cookie" && c.op !== "absent" && cookies.has(c.name)) return `cookie ${c.name}`;
    if (c.t === "header" && c.op !== "absent" && headers.has(c.name)) return `header ${c.name}`;
  }
  return undefined;
}

/** The path and host a redirect target leads to (undefined host: same host as the request). */
function redirectTarget(to: string): { path: string; host?: string } {
  const m = /^https?:\/\/([^/:]+)(:[0-9]+)?(\/.*)$/.exec(to);
  return m ? { path: decodePath(m[3]!), host: m[1]!.toLowerCase() } : { path: decodePath(to) };
}

function analyse(policy: Policy, rules: Rule[], out: Diagnostic[]): void {
  const list: Analysed[] = rules.map((rule, index) => {
    const conj = conjuncts(rule.when);
    return { rule, index, conj, prepared: prepare(conj) };
  });
  // shadowing: an earlier rule without continue matches everything this one matches
  // bypass contradiction: an earlier bypass rule with continue covers a TTL rule
  // (only the earlier rules that may cover a rule are compared with it, not every pair)
  const coverers = new CoverCandidates(list.map((s) => s.prepared));
  for (let j = 0; j < list.length; j++) {
    const b = list[j]!;
    const ttl = b.rule.then.cache?.ttl !== undefined;
    const earlier = coverers.candidates(b.prepared);
    coverers.add(j, b.prepared);
    for (const i of earlier) {
      const a = list[i]!;
      const bypass = a.rule.then.cache?.bypass === true;
      if (a.rule.continue && !(bypass && ttl)) continue;
      if (!ruleCovers(a, b)) continue;
      if (!a.rule.continue) {
        out.push(
          warning(
            "ruleShadowed",
            pointer("rules", j),
            `rule "${b.rule.name}" can never match: the earlier rule "${a.rule.name}" (rules/${i}) matches every request it matches and does not continue`,
            `move "${b.rule.name}" before "${a.rule.name}", narrow "${a.rule.name}", or add continue: true to it`,
          ),
        );
        break;
      }
      if (b.rule.then.cache?.bypass !== false) {
        out.push(
          error(
            "ruleTtlOnBypass",
            pointer("rules", j, "then", "cache", "ttl"),
            `rule "${b.rule.name}" sets a TTL, but every request it matches was excluded from the cache by rule "${a.rule.name}" (rules/${i})`,
            `remove the TTL, narrow "${a.rule.name}", or set bypass: false in "${b.rule.name}"`,
          ),
        );
      }
    }
    if (ttl && policy.cache) {
      const why = bypassedBy(policy, b.conj);
      if (why) {
        out.push(
          error(
            "ruleTtlOnBypass",
            pointer("rules", j, "then", "cache", "ttl"),
            `rule "${b.rule.name}" sets a TTL for requests with ${why}, which cache.bypass always excludes from the cache`,
            "remove the TTL, or drop that condition",
          ),
        );
      }
    }
  }
  // redirect loops: follow each redirect to the rule that definitely answers its target, among the rules
  // the index finds for the target's path
  const conds = list.map((s) => and(s.conj));
  const lookup = new PathLookup(list.map((s) => ruleKeys(s.conj)));
  const next = new Map<number, number>();
  for (const r of list) {
    const to = r.rule.then.redirect?.to;
    if (to === undefined) continue;
    const t = redirectTarget(to);
    for (const i of lookup.candidates(t.path, "GET")) {
      const s = list[i]!;
      const v = staticEval(conds[i]!, { path: t.path, method: "GET", ...(t.host !== undefined ? { host: t.host } : {}) });
      if (v === false) continue;
      if (v === undefined) break; // depends on the request: not a definite loop
      if (s.rule.then.redirect) next.set(r.index, s.index);
      if (!s.rule.continue) break;
      if (s.rule.then.redirect) break;
    }
  }
  const reported = new Set<number>();
  for (const start of next.keys()) {
    const seen: number[] = [];
    let cur: number | undefined = start;
    while (cur !== undefined && !seen.includes(cur)) {
      seen.push(cur);
      cur = next.get(cur);
    }
    if (cur === undefined || reported.has(cur)) continue;
    const cycle = seen.slice(seen.indexOf(cur));
    cycle.forEach((i) => reported.add(i));
    const first = Math.min(...cycle);
    const names = [...cycle, cycle[0]!].map((i) => `"${list[i]!.rule.name}"`).join(" -> ");
    out.push(
      cycle.length === 1
        ? error("ruleRedirectsToItself", pointer("rules", first, "then", "redirect", "to"), `rule "${list[first]!.rule.name}" redirects to a URL it matches itself: an endless redirect`, "change the target, or narrow the condition")
        : error("ruleRedirectLoop", pointer("rules", first, "then", "redirect", "to"), `redirect loop between rules ${names}`, "change one of the targets so the chain ends"),
    );
  }
  // routed pools whose location settings cannot apply per request
  const def = defaultOriginName(policy);
  const d = def === undefined ? undefined : policy.origins[def];
  if (d) {
    const mine = proxySettings(d);
    for (const name of routedPools(policy)) {
      if (name === def || !(name in policy.origins)) continue;
      const theirs = proxySettings(policy.origins[name]!);
      const differ = (Object.keys(mine) as (keyof typeof mine)[]).filter((k) => theirs[k] !== mine[k]);
      if (differ.length) {
        out.push(
          warning(
            "ruleRoutedPoolSettings",
            pointer("origins", name),
            `origin "${name}" is reached through rules, which use the proxy settings of the default origin "${def}": its ${differ.join(", ")} will not apply`,
            `give "${name}" the same ${differ.join(", ")} as "${def}"`,
          ),
        );
      }
    }
  }
}

function check(policy: Policy): Diagnostic[] {
  const rules = policy.rules;
  if (!rules) return [];
  const out: Diagnostic[] = [];
  const names = new Map<string, number>();
  const experiments = new Map<string, number>();
  rules.forEach((rule, i) => {
    const at: At = (...s) => pointer("rules", i, ...s);
    const first = names.get(rule.name);
    if (first !== undefined) out.push(error("ruleDuplicateName", at("name"), `rule name "${rule.name}" is already used by rules/${first}`, "give every rule its own name"));
    else names.set(rule.name, i);
    const e = rule.then.experiment;
    if (e) {
      const f = experiments.get(e.name);
      if (f !== undefined) out.push(error("experimentDuplicateName", at("then", "experiment", "name"), `experiment "${e.name}" is already defined by rules/${f}`, "name each experiment once; a client gets one variant per experiment"));
      else experiments.set(e.name, i);
    }
    const scope: PatternScope = { unsafe: rule.unsafeRegex === true, needed: false };
    if (rule.when) checkCondition(rule.when, (...s) => at("when", ...s), out, scope);
    if (scope.unsafe && !scope.needed && !out.some((d) => d.code === CATALOGUE.ruleInvalidRegex.code && d.path.startsWith(at("when")))) {
      out.push(warning("regexUnsafeUnused", at("unsafeRegex"), `every pattern of rule "${rule.name}" runs in linear time; \`unsafeRegex\` is not needed`, "remove `unsafeRegex: true`, so that a later edit of a pattern is checked again"));
    }
    checkActions(policy, rule, at, out);
  });
  if (!out.some((d) => d.severity === "error")) analyse(policy, rules, out);
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// lowering

/** A condition node as the Lua runtime evaluates it (see lua-src/types/rules-data.d.ts). */
function luaCond(n: CondNode): RuleCond {
  switch (n.t) {
    case "and":
    case "or":
      return { t: n.t, c: n.c.map(luaCond) };
    case "not":
      return { t: "not", c: luaCond(n.c) };
    case "path": {
      const exact: Record<string, true> = {};
      const prefix: string[] = [];
      const re: string[] = [];
      for (const alt of n.alts) {
        if (alt.kind === "exact") exact[alt.value] = true;
        else if (alt.kind === "prefix") prefix.push(alt.value);
        else if (alt.kind === "glob") re.push(alt.regex);
        else re.push(toPcre(alt.value));
      }
      return { t: "path", exact: n.alts.some((a) => a.kind === "exact") ? exact : undefined, prefix: prefix.length ? prefix : undefined, re: re.length ? re : undefined };
    }
    case "ext":
    case "method":
      return { t: n.t, set: trueSet(n.set) };
    case "host":
      return { t: "host", exact: trueSet(n.exact), suffix: n.suffix };
    case "header":
      return { t: "var", v: headerVar(n.name), op: n.op, value: n.op === "matches" ? toPcre(n.value!) : n.value };
    case "cookie":
      return { t: "var", v: `cookie_${n.name}`, op: n.op, value: n.value };
    case "arg":
      return { t: "arg", v: `arg_${n.name}`, op: n.op, value: n.value };
    case "country":
      return { t: "country", v: n.source, set: trueSet(n.set) };
    case "cidr":
      return { t: "cidr", set: compileRanges(n.nets) };
    case "ua":
      // each pattern is the PCRE text of its parsed form, so the alternation means "one of them matches"
      return { t: "ua", re: n.patterns.length === 1 ? toPcre(n.patterns[0]!) : n.patterns.map((p) => `(?:${toPcre(p)})`).join("|") };
  }
}

function trueSet(keys: readonly string[]): Record<string, true> {
  return Object.fromEntries(keys.map((k) => [k, true as const]));
}

export function poolTarget(policy: Policy, name: string): RulePoolTarget {
  const o = policy.origins[name]!;
  return { url: `${o.scheme ?? "http"}://${upstreamName(name)}`, host: o.hostHeader ?? "" };
}

function ttlLocation(ttl: string): string {
  return `cdn_ttl_${durationSeconds(ttl)}`;
}


/** A rule as the runtime gets it; `cond` is what its index lookup does not already guarantee. */
function luaRule(policy: Policy, ir: EdgeIR, rule: Rule, cond: CondNode[]): RuleData {
  const a = rule.then;
  const r: RuleData = { name: rule.name, cont: rule.continue === true, hdr: false };
  if (cond.length > 0) r.cond = luaCond(and(cond));
  if (a.cache) {
    if (a.cache.bypass !== undefined) r.bypass = a.cache.bypass;
    if (a.cache.ttl !== undefined) r.ttl = "@" + ttlLocation(a.cache.ttl);
    const k = a.cache.key;
    if (k) {
      const vars: string[] = [
        ...(k.headers ?? []).map((h) => "http_" + h.toLowerCase().replace(/-/g, "_")),
        ...(k.cookies ?? []).map((c) => "cookie_" + c),
        ...(k.country ? [countryVar(undefined)] : []),
      ];
      r.key = { vars, tag: k.tag ?? "" };
    }
  }
  const nonEmpty = <T>(l: T[]) => (l.length > 0 ? l : undefined);
  if (a.requestHeaders) {
    r.reqSet = nonEmpty(lowerSet(policy, ir, a.requestHeaders.set));
    r.reqRemove = nonEmpty([...(a.requestHeaders.remove ?? [])].sort());
  }
  if (a.responseHeaders) {
    r.resSet = nonEmpty(lowerSet(policy, ir, a.responseHeaders.set));
    r.resRemove = nonEmpty([...(a.responseHeaders.remove ?? [])].sort());
  }
  if (a.origin !== undefined) r.origin = poolTarget(policy, a.origin);
  if (a.rewrite) r.rewrite = { path: a.rewrite.path, strip: a.rewrite.stripPrefix, add: a.rewrite.addPrefix };
  if (a.redirect) r.redirect = { to: a.redirect.to, status: a.redirect.status ?? 301, keepQuery: a.redirect.keepQuery ?? true };
  if (a.respond) r.respond = { status: a.respond.status, body: a.respond.body ?? "", type: a.respond.contentType ?? "text/plain" };
  if (a.deny !== undefined) r.deny = a.deny === true ? 403 : a.deny;
  if (a.geo) {
    r.geo = {
      v: countryVar(a.geo),
      map: Object.fromEntries(Object.entries(a.geo.map).map(([c, p]) => [c, poolTarget(policy, p)])),
      default: poolTarget(policy, a.geo.default),
    };
  }
  const e = a.experiment;
  if (e) {
    let acc = 0;
    const variants = e.variants.map((v) => {
      acc += v.weight;
      return { name: v.name, upto: acc / 100 };
    });
    variants[variants.length - 1]!.upto = 1;
    r.exp = {
      name: e.name,
      by: e.by ?? "cookie",
      cookie: e.cookie ?? `cdn_exp_${e.name}`,
      cookieVar: `cookie_${e.cookie ?? `cdn_exp_${e.name}`}`,
      counter: `exp:${e.name}`,
      ipPrefix: `${e.name}:`,
      maxAge: durationSeconds(e.cookieMaxAge ?? "30d")!,
      // the default header follows the header-name rule: "_" of the experiment's name becomes "-"
      header: e.header ?? `X-Experiment-${e.name.replace(/_/g, "-")}`,
      prefix: e.pathPrefix ?? false,
      key: e.cacheKey ?? e.pathPrefix ?? false,
      variants: variants.filter((v, i) => i === 0 || v.upto > variants[i - 1]!.upto),
      names: Object.fromEntries(e.variants.map((v) => [v.name, true])),
    };
  }
  const img = a.image;
  if (img) {
    r.image = {
      origin: img.origin === undefined ? undefined : poolTarget(policy, img.origin),
      formats: img.formats ?? ["avif", "webp"],
      url: img.url ?? "{path}",
      widthParam: `arg_${img.widthParam ?? "w"}`,
      widths: [...new Set(img.widths ?? [])].sort((x, y) => x - y),
    };
  }
  if (a.maxBodySize !== undefined) r.maxBody = sizeBytes(a.maxBodySize)!;
  if (a.websocket === true) r.ws = true;
  r.hdr = a.responseHeaders !== undefined || a.image !== undefined;
  return r;
}

/** Counts the regexes the runtime compiles, to size lua_regex_cache_max_entries. */
function countRegexes(n: CondNode): number {
  switch (n.t) {
    case "and":
    case "or":
      return n.c.reduce((s, c) => s + countRegexes(c), 0);
    case "not":
      return countRegexes(n.c);
    case "path":
      return n.alts.filter((a) => a.kind === "glob" || a.kind === "regex").length;
    case "header":
      return n.op === "matches" ? 1 : 0;
    case "ua":
      return 1;
    default:
      return 0;
  }
}

function lower(policy: Policy, ir: Parameters<NonNullable<Feature["lower"]>>[1]): void {
  const rules = policy.rules;
  if (!rules || rules.length === 0) return;
  const conj = rules.map((r) => conjuncts(r.when));
  const keys = conj.map(ruleKeys);
  const luaRules = rules.map((r, i) => luaRule(policy, ir, r, residual(conj[i]!, keys[i]!)));
  const routed = routedPools(policy);
  const def = defaultOriginName(policy)!;
  const ttls = [...new Set(rules.map((r) => r.then.cache?.ttl).filter((t): t is string => t !== undefined))]
    .map((t) => ({ name: ttlLocation(t), seconds: durationSeconds(t)! }))
    .filter((t, i, all) => all.findIndex((x) => x.name === t.name) === i)
    .sort((x, y) => x.seconds - y.seconds);
  const cookieExperiments = rules.some((r) => r.then.experiment && (r.then.experiment.by ?? "cookie") === "cookie");
  // routing and rewrites also go into the key (see lua-src/features/rules.ts), when there is a cache
  const keyParts =
    policy.cache !== undefined &&
    rules.some((r) => r.then.cache?.key !== undefined || r.then.experiment?.cacheKey || r.then.experiment?.pathPrefix || r.then.image || r.then.rewrite || poolsOfActions(r.then).length > 0);
  const regexes = conj.reduce((s, c) => s + countRegexes(and(c)), 0);

  // rules apply to proxied traffic only (not to the purge or other endpoint locations): `location /`
  // marks its requests
  const vars: { name: CdnVar; value: string }[] = [];
  if (routed.length) {
    const d = poolTarget(policy, def);
    vars.push({ name: "cdn_origin_url", value: d.url }, { name: "cdn_origin_host", value: d.host });
  }
  if (luaRules.some((r) => r.hdr)) vars.push({ name: "cdn_rules", value: "" });
  if (cookieExperiments) vars.push({ name: "cdn_rules_cookie", value: "" });
  if (keyParts) vars.push({ name: "cdn_rules_key", value: "" });
  if (ttls.length) vars.push({ name: "cdn_rules_ttl", value: "" }, { name: "cdn_rules_nostore", value: "" });
  ir.luaVars.push(...vars);
  if (cookieExperiments) ir.sharedDicts.push({ name: "cdn_experiments", size: "1m" });

  ir.slots.http.push({
    partial: "rules",
    data: { hostMap: routed.length > 0, regexCache: regexes + 64 > 1024 ? regexes + 256 : null },
  });
  for (const t of ttls) {
    ir.slots.locations.push({
      partial: "rules-ttl",
      // `proxy` is the same array the proxy location renders: parts added by later features appear here too.
      data: { name: t.name, ttl: `${t.seconds}s`, statuses: TTL_STATUSES, proxy: ir.slots.proxy },
    });
  }
  ir.luaData.rules = {
    rules: luaRules,
    index: buildRulesIndex(keys),
    hasHeader: luaRules.some((r) => r.hdr),
    hasTtl: ttls.length > 0,
    hasCookie: cookieExperiments,
    keyParts,
    routed: routed.length > 0,
  };
}

/**
 * The rules engine: ordered conditions -> actions, compiled to indexed Lua data (see rules/rule-index.ts:
 * hosts, exact paths, extensions and methods in hash tables, prefixes in a trie) so the per-request cost does
 * not grow with the number of rules.
 */
export const rules: Feature = {
  name: "rules",
  runtime: {
    key: "rules",
    stages: {
      access: { rules: true, "rules:ttl": (d) => d.hasTtl },
      header: { "rules:nostore": (d) => d.hasTtl, "rules:headers": (d) => d.hasHeader || d.hasCookie },
      initWorker: { rules: true },
    },
  },
  check,
  lower,
};
