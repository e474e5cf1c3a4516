import type { LuaFeature } from "../core/feature";
import type { ArgVar, RuleCond, RuleData, RulePoolTarget, RulesData } from "../../src/contract/index";
import { clientAddress } from "../core/client-address";
import { compileSet, parseAddr } from "../core/ip";
import { compileOrFail, warnLimited } from "../core/regex";
import { refuse } from "../core/gate-deny";

/**
 * The rules engine at run time.
 *
 * setup() (init_by_lua, once) turns every rule's condition into a closure and builds the indexes: exact
 * paths, extensions and hosts in hash tables, path prefixes in a byte trie. A request then only evaluates
 * the rules an index points at (plus the rules no index covers), in policy order, so its cost does not grow
 * with the number of path/extension/host rules.
 *
 * Per-request state lives in a few module-level variables reused by every request: a worker runs one Lua
 * handler at a time and nothing in the evaluation yields, so no table is allocated per request.
 *
 * State that later phases need goes through nginx variables (they survive the internal redirect of a TTL
 * override, ngx.ctx would not): $cdn_rules (matched rules with response work), $cdn_rules_cookie
 * (Set-Cookie lines), $cdn_rules_key (cache key additions, read by the cache feature), $cdn_rules_ttl (the
 * named location of a TTL override), $cdn_origin_url / $cdn_origin_host (the routed pool).
 */

type Pred = (this: void) => boolean;

// ---- facts about the current request, computed lazily --------------------------------------------------

let factPath = "";
let factMethod = "";
let factHost: string | undefined;
let factExt: string | undefined;

function host(): string {
  if (factHost === undefined) factHost = ngx.var.get("host") ?? "";
  return factHost;
}

function extension(): string {
  if (factExt === undefined) {
    const [e] = string.match(factPath, "%.([^%./]+)$");
    factExt = e === undefined ? "" : string.lower(e);
  }
  return factExt;
}

// ---- conditions -> closures ----------------------------------------------------------------------------

/** Every pattern of the conditions with its options and the rule it belongs to, compiled at setup. */
const regexes: [string, string, string][] = [];
/** The rule whose condition is being compiled (for the messages of its patterns). */
let compilingRule = "";

/** Notes a pattern to compile at setup; returns the rule it belongs to. */
function track(re: string, opts: string): string {
  regexes.push([re, opts, compilingRule]);
  return compilingRule;
}

/**
 * Whether `re` matches. When PCRE gives up (match limit, JIT stack) the condition is neither true nor false,
 * and no outcome of the rules is safe to act on (a `deny` that does not match lets the request through):
 * the request is refused, with one line per worker every few seconds.
 */
function reFind(subject: string, re: string, opts: string, rule: string): boolean {
  const [from, , err] = ngx.re.find(subject, re, opts);
  if (err !== undefined) {
    warnLimited("rules:" + rule, "rules: a pattern of rule " + rule + " could not be evaluated (" + err + "), request refused, client " + clientAddress());
    refuse(403, "rules");
  }
  return from !== undefined;
}

/** A query parameter is present, with a value (`$arg_x`) or bare (`?x`, which `$arg_x` does not see). */
function argPresent(varName: ArgVar): boolean {
  if (ngx.var.get(varName) !== undefined) return true;
  const args = ngx.var.get("args");
  if (args === undefined) return false;
  const name = string.sub(varName, 5);
  const n = name.length;
  let from = 1;
  while (true) {
    const [s] = string.find(args, name, from, true);
    if (s === undefined) return false;
    const before = s === 1 ? "&" : string.sub(args, s - 1, s - 1);
    const after = string.sub(args, s + n, s + n);
    if (before === "&" && (after === "" || after === "&")) return true;
    from = s + 1;
  }
}

function compileCond(c: RuleCond): Pred {
  switch (c.t) {
    case "and": {
      const parts = c.c.map((x) => compileCond(x));
      const n = parts.length;
      if (n === 0) return () => true;
      return () => {
        for (let i = 0; i < n; i++) if (!parts[i]()) return false;
        return true;
      };
    }
    case "or": {
      const parts = c.c.map((x) => compileCond(x));
      const n = parts.length;
      return () => {
        for (let i = 0; i < n; i++) if (parts[i]()) return true;
        return false;
      };
    }
    case "not": {
      const inner = compileCond(c.c);
      return () => !inner();
    }
    case "path": {
      const exact = c.exact;
      const prefixes = c.prefix;
      const res = c.re;
      const rule = compilingRule;
      for (const r of res) track(r, "jo");
      return () => {
        const p = factPath;
        if (exact[p] === true) return true;
        for (const pre of prefixes) if (string.sub(p, 1, pre.length) === pre) return true;
        for (const re of res) if (reFind(p, re, "jo", rule)) return true;
        return false;
      };
    }
    case "ext": {
      const set = c.set;
      return () => set[extension()] === true;
    }
    case "method": {
      const set = c.set;
      return () => set[factMethod] === true;
    }
    case "host": {
      const exact = c.exact;
      const suffixes = c.suffix;
      return () => {
        const h = host();
        if (exact[h] === true) return true;
        for (const s of suffixes) if (h.length > s.length && string.sub(h, -s.length) === s) return true;
        return false;
      };
    }
    case "var":
    case "arg": {
      const name = c.v;
      const value = c.value;
      const decode = c.t === "arg";
      switch (c.op) {
        case "exists":
          return decode ? () => argPresent(name as ArgVar) : () => {
            const v = ngx.var.get(name);
            return v !== undefined && v !== "";
          };
        case "absent":
          return decode ? () => !argPresent(name as ArgVar) : () => {
            const v = ngx.var.get(name);
            return v === undefined || v === "";
          };
        case "equals":
          return () => {
            const v = ngx.var.get(name);
            if (v === undefined) return false;
            return (decode ? ngx.unescape_uri(v) : v) === value;
          };
        case "matches": {
          const rule = track(value!, "jo");
          return () => {
            const v = ngx.var.get(name);
            return v !== undefined && reFind(v, value!, "jo", rule);
          };
        }
      }
      return () => false;
    }
    case "country": {
      // the country comes from a header or a variable the operator names (e.g. one set by a GeoIP module)
      const name = c.v as NgxVarName;
      const set = c.set;
      return () => {
        const v = ngx.var.get(name);
        return v !== undefined && set[string.upper(v)] === true;
      };
    }
    case "cidr": {
      const inSet = compileSet(c.set)!;
      return () => {
        parseAddr(clientAddress());
        return inSet();
      };
    }
    case "ua": {
      const re = c.re;
      const rule = track(re, "joi");
      return () => {
        const ua = ngx.var.get("http_user_agent");
        return ua !== undefined && reFind(ua, re, "joi", rule);
      };
    }
  }
}

// ---- indexes --------------------------------------------------------------------------------------------

interface TrieNode {
  next: LuaTable<number, TrieNode>;
  rules?: number[];
}

function buildTrie(prefixes: { p: string; rules: number[] }[]): TrieNode | undefined {
  if (prefixes.length === 0) return undefined;
  const root: TrieNode = { next: new LuaTable() };
  for (const { p, rules } of prefixes) {
    let node = root;
    for (let i = 1; i <= p.length; i++) {
      const b = string.byte(p, i);
      let child = node.next.get(b);
      if (child === undefined) {
        child = { next: new LuaTable() };
        node.next.set(b, child);
      }
      node = child;
    }
    node.rules = rules;
  }
  return root;
}

// candidate rule positions of the current request (1..candN), deduplicated with a stamp per request
const cand: LuaTable<number, number> = new LuaTable();
let candN = 0;
const seen: LuaTable<number, number> = new LuaTable();
let stamp = 0;

function addCandidates(list: number[] | undefined): void {
  if (list === undefined) return;
  for (const i of list) {
    if (seen.get(i) !== stamp) {
      seen.set(i, stamp);
      candN++;
      // insertion in order: lists are short, and usually already sorted
      let k = candN;
      while (k > 1 && cand.get(k - 1) > i) {
        cand.set(k, cand.get(k - 1));
        k--;
      }
      cand.set(k, i);
    }
  }
}

// ---- actions ----------------------------------------------------------------------------------------------

let keyExtra = "";
let hdrIds = "";
let cookieOut = "";
let ttlLoc = "";
let routedTo = "";
let rewritten = false;

function route(t: RulePoolTarget): void {
  routedTo = t.url;
  ngx.var.set("cdn_origin_url", t.url);
  ngx.var.set("cdn_origin_host", t.host);
}

/** Unsigned 32-bit value of the first 4 bytes of an MD5, as a fraction of 2^32. */
function hashFraction(s: string): number {
  const d = ngx.md5_bin(s);
  const [b1, b2, b3, b4] = string.byte(d, 1, 4);
  return (((b1 * 256 + b2) * 256 + b3) * 256 + b4) / 4294967296;
}

const GOLDEN = 0.6180339887498949;

function pickVariant(e: NonNullable<RuleData["exp"]>, u: number): string {
  for (const v of e.variants) if (u < v.upto) return v.name;
  return e.variants[e.variants.length - 1].name;
}

function experiment(e: NonNullable<RuleData["exp"]>, dict: NgxSharedDict | undefined): void {
  let variant: string | undefined;
  if (e.by === "ip") {
    variant = pickVariant(e, hashFraction(e.ipPrefix + clientAddress()));
  } else {
    const current = ngx.var.get(e.cookieVar);
    if (current !== undefined && e.names[current] === true) {
      variant = current;
    } else {
      // new client: a low-discrepancy sequence over a shared counter keeps the split exact even for few
      // clients (random draws would only converge); math.random if the counter is unavailable
      let u = math.random();
      if (dict !== undefined) {
        const [n] = dict.incr(e.counter, 1, 0);
        if (n !== undefined) u = (n * GOLDEN) % 1;
      }
      variant = pickVariant(e, u);
      const line = e.cookie + "=" + variant + "; Path=/; Max-Age=" + e.maxAge + "; SameSite=Lax";
      cookieOut = cookieOut === "" ? line : cookieOut + "\n" + line;
    }
  }
  ngx.req.set_header(e.header, variant);
  if (e.prefix) {
    ngx.req.set_uri("/" + variant + (ngx.var.get("uri") ?? "/"));
    rewritten = true;
  }
  if (e.key) keyExtra = keyExtra + "|exp:" + e.name + "=" + variant;
}

function acceptsFormat(accept: string, format: string): boolean {
  const [, e] = string.find(accept, "image/" + format, 1, true);
  if (e === undefined) return false;
  const [params] = string.match(accept, "^[^,]*", e + 1);
  return params === undefined || string.find(params, "q=0[%.0]*%s*$")[0] === undefined;
}

function gsubPlain(s: string, placeholder: string, value: string): string {
  const [escaped] = string.gsub(value, "%%", "%%%%");
  const [out] = string.gsub(s, placeholder, escaped);
  return out;
}

function image(img: NonNullable<RuleData["image"]>): void {
  const accept = ngx.var.get("http_accept") ?? "";
  let format: string | undefined;
  for (const f of img.formats) {
    if (acceptsFormat(accept, f)) {
      format = f;
      break;
    }
  }
  const path = ngx.var.get("uri") ?? "/";
  let width = 0;
  const asked = tonumber(ngx.var.get(img.widthParam) ?? "");
  if (asked !== undefined && asked > 0) {
    width = math.floor(asked);
    const ws = img.widths;
    if (ws.length > 0) {
      let chosen = ws[ws.length - 1];
      for (const w of ws) {
        if (w >= width) {
          chosen = w;
          break;
        }
      }
      if (chosen !== width) {
        // normalise the parameter too, so the cache key does not keep the raw width
        const [args] = ngx.req.get_uri_args(100);
        args.set(string.sub(img.widthParam, 5), tostring(chosen));
        ngx.req.set_uri_args(args);
      }
      width = chosen;
    }
  }
  const fmt = format ?? string.lower((string.match(path, "%.([^%./]+)$")[0] as string | undefined) ?? "");
  ngx.req.set_header("Accept", format === undefined ? "image/*" : "image/" + format + ",image/*;q=0.8");
  if (img.url !== "{path}") {
    let url = gsubPlain(img.url, "{path}", path);
    url = gsubPlain(url, "{format}", fmt);
    url = gsubPlain(url, "{width}", tostring(width));
    ngx.req.set_uri(url);
    rewritten = true;
  }
  if (img.origin !== undefined) route(img.origin);
  keyExtra = keyExtra + "|img:" + (format ?? "orig") + ":" + width;
}

function rewrite(rw: NonNullable<RuleData["rewrite"]>): void {
  let p = rw.path ?? ngx.var.get("uri") ?? "/";
  const strip = rw.strip;
  if (strip !== undefined && string.sub(p, 1, strip.length) === strip) {
    p = string.sub(p, strip.length + 1);
    if (string.sub(p, 1, 1) !== "/") p = "/" + p;
  }
  const add = rw.add;
  if (add !== undefined) p = string.sub(add, -1) === "/" && string.sub(p, 1, 1) === "/" ? add + string.sub(p, 2) : add + p;
  ngx.req.set_uri(p);
  rewritten = true;
}

function finish(): void {
  if (hdrIds !== "") ngx.var.set("cdn_rules", hdrIds);
  if (cookieOut !== "") ngx.var.set("cdn_rules_cookie", cookieOut);
}

/** Applies a rule's actions; returns true when the rule answered the request (it never returns then). */
function apply(i: number, r: RuleData, dict: NgxSharedDict | undefined): void {
  if (r.hdr) hdrIds = hdrIds === "" ? tostring(i) : hdrIds + "," + tostring(i);
  if (r.deny !== undefined) {
    finish();
    ngx.exit(r.deny);
  }
  if (r.respond !== undefined) {
    finish();
    const res = r.respond;
    ngx.status = res.status;
    ngx.header.set("Content-Type", res.type);
    ngx.header.set("Content-Length", tostring(res.body.length));
    if (res.body !== "") ngx.print(res.body);
    else ngx.send_headers();
    ngx.exit(ngx.HTTP_OK);
  }
  if (r.redirect !== undefined) {
    finish();
    const rd = r.redirect;
    let to = rd.to;
    if (rd.keepQuery) {
      const args = ngx.var.get("args");
      if (args !== undefined && args !== "") to = to + "?" + args;
    }
    ngx.redirect(to, rd.status);
  }
  if (r.reqRemove !== undefined) for (const name of r.reqRemove) ngx.req.clear_header(name);
  if (r.reqSet !== undefined) for (const [name, value] of r.reqSet!) ngx.req.set_header(name, value);
  if (r.bypass !== undefined) ngx.var.set("cdn_cache_bypass", r.bypass ? "1" : "");
  if (r.ttl !== undefined) ttlLoc = r.ttl;
  if (r.key !== undefined) {
    for (const v of r.key.vars) keyExtra = keyExtra + "|" + v + "=" + (ngx.var.get(v as NgxVarName) ?? "");
    if (r.key.tag !== "") keyExtra = keyExtra + "|tag=" + r.key.tag;
  }
  if (r.origin !== undefined) route(r.origin);
  if (r.geo !== undefined) {
    const c = ngx.var.get(r.geo.v as NgxVarName);
    const t = c === undefined ? undefined : r.geo.map[string.upper(c)];
    route(t ?? r.geo.default);
  }
  if (r.exp !== undefined) experiment(r.exp, dict);
  if (r.image !== undefined) image(r.image);
  if (r.rewrite !== undefined) rewrite(r.rewrite);
}

// ---- setup -----------------------------------------------------------------------------------------------

interface Compiled {
  access: () => void;
  nostoreCheck: () => void;
  ttlExec: () => void;
  responseHeaders: () => void;
  warmRegexes: () => void;
}

let compiled: Compiled | undefined;

function compile(data: RulesData): Compiled {
  if (compiled !== undefined) return compiled;
  const rules = data.rules;
  const preds = rules.map((r) => {
    compilingRule = r.name;
    return compileCond(r.cond);
  });
  // one by one, in the master: a pattern PCRE refuses stops nginx from starting, naming the rule
  for (const [re, opts, rule] of regexes) compileOrFail(re, opts, "rule " + rule);
  const idx = data.index;
  const exact = idx.exact;
  const ext = idx.ext;
  const hosts = idx.host;
  const hostSuffix = idx.hostSuffix;
  const always = idx.always;
  const alwaysN = always.length;
  const trie = buildTrie(idx.prefix);
  let useExt = false;
  for (const [_k] of pairs(ext)) useExt = true;
  let useHost = false;
  for (const [_k] of pairs(hosts)) useHost = true;
  const suffixes: string[] = [];
  for (const [s] of pairs(hostSuffix)) suffixes.push(s);
  const useExact = next(exact)[0] !== undefined;
  const cookieDict = data.hasCookie ? ngx.shared.get("cdn_experiments") : undefined;
  const hasKey = data.keyParts;
  const hasTtl = data.hasTtl;

  const access = () => {
    const vars = ngx.var;
    factPath = vars.get("uri") ?? "/";
    factMethod = ngx.req.get_method();
    factHost = undefined;
    factExt = undefined;
    keyExtra = "";
    hdrIds = "";
    cookieOut = "";
    ttlLoc = "";
    routedTo = "";
    rewritten = false;
    stamp++;
    candN = 0;

    if (useExact) addCandidates(exact[factPath]);
    if (trie !== undefined) {
      let node: TrieNode | undefined = trie;
      const p = factPath;
      for (let i = 1; i <= p.length; i++) {
        node = node.next.get(string.byte(p, i));
        if (node === undefined) break;
        if (node.rules !== undefined) addCandidates(node.rules);
      }
    }
    if (useExt) {
      const e = extension();
      if (e !== "") addCandidates(ext[e]);
    }
    if (useHost) addCandidates(hosts[host()]);
    if (suffixes.length > 0) {
      const h = host();
      for (const s of suffixes) if (h.length > s.length && string.sub(h, -s.length) === s) addCandidates(hostSuffix[s]);
    }

    // walk the indexed candidates and the always-evaluated rules together, in policy order
    let ci = 1;
    let ai = 0;
    while (ci <= candN || ai < alwaysN) {
      let i: number;
      if (ci <= candN && (ai >= alwaysN || cand.get(ci) < always[ai])) {
        i = cand.get(ci);
        ci++;
      } else {
        i = always[ai];
        ai++;
      }
      if (preds[i]()) {
        const r = rules[i];
        apply(i, r, cookieDict);
        if (!r.cont) break;
      }
    }
    finish();
    if (hasKey) {
      // where the request really goes is part of the key: a rule may route the same client URL to
      // different pools or paths depending on headers, cookies, country or variant
      if (routedTo !== "") keyExtra = keyExtra + "|o=" + routedTo;
      if (rewritten) keyExtra = keyExtra + "|u=" + (vars.get("uri") ?? "");
      if (keyExtra !== "") vars.set("cdn_rules_key", keyExtra);
    }
    if (hasTtl && ttlLoc !== "") vars.set("cdn_rules_ttl", ttlLoc);
  };

  // header filter, before other features change headers: a TTL override must still never store what the
  // origin marked private / no-store / no-cache (Cache-Control is ignored in the TTL locations)
  const nostoreCheck = () => {
    const vars = ngx.var;
    if (vars.get("cdn_rules_ttl") === "") return;
    let cc = ngx.header.get("Cache-Control");
    if (cc === undefined) return;
    if (typeof cc === "object") cc = table.concat(cc, ",");
    const l = string.lower(cc);
    if (string.find(l, "private", 1, true)[0] !== undefined || string.find(l, "no-store", 1, true)[0] !== undefined || string.find(l, "no-cache", 1, true)[0] !== undefined) {
      vars.set("cdn_rules_nostore", "1");
    }
  };

  // end of the access phase (after the cache key is computed): a TTL override continues in its location
  const ttlExec = () => {
    const loc = ngx.var.get("cdn_rules_ttl");
    if (loc !== undefined && loc !== "") ngx.exec(loc);
  };

  const responseHeaders = () => {
    const vars = ngx.var;
    const h = ngx.header;
    const ids = data.hasHeader ? vars.get("cdn_rules") : undefined;
    if (ids !== undefined && ids !== "") {
      for (const [id] of string.gmatch(ids, "%d+")) {
        const r = rules[tonumber(id)!];
        if (r.resRemove !== undefined) for (const name of r.resRemove) h.set(name, undefined);
        if (r.resSet !== undefined) for (const [name, value] of r.resSet) h.set(name, value);
        if (r.image !== undefined) {
          const vary = h.get("Vary");
          if (vary === undefined) h.set("Vary", "Accept");
          else {
            const v = typeof vary === "object" ? table.concat(vary, ", ") : vary;
            if (ngx.re.find(v, "(^|[ ,])accept($|[ ,])", "joi")[0] === undefined) h.set("Vary", v + ", Accept");
          }
        }
      }
    }
    if (data.hasCookie) {
      const cookies = vars.get("cdn_rules_cookie");
      if (cookies !== undefined && cookies !== "") {
        const lines: string[] = [];
        const existing = h.get("Set-Cookie");
        if (typeof existing === "string") lines.push(existing);
        else if (existing !== undefined) for (const l of existing) lines.push(l);
        for (const [l] of string.gmatch(cookies, "[^\n]+")) lines.push(l);
        h.set("Set-Cookie", lines);
      }
    }
  };

  // compiled in the master at setup; this makes sure each worker has them before its first request
  const warmRegexes = () => {
    for (const [re, opts] of regexes) ngx.re.find("", re, opts);
  };

  compiled = { access, nostoreCheck, ttlExec, responseHeaders, warmRegexes };
  return compiled;
}

/**
 * Access phase, before the cache key ("rules"): evaluates the rules; at its end ("rules:ttl", after the cache
 * key is computed) it hands a TTL override to its location. Header filter: the TTL no-store guard before the
 * cache decides ("rules:nostore"), and the matched rules' response headers after the policy-wide ones, so a
 * rule wins ("rules:headers": `Vary: Accept` and experiment cookies too).
 */
export const rules: LuaFeature<"rules"> = {
  key: "rules",
  setup(data) {
    const c = compile(data);
    return {
      access: { rules: c.access, "rules:ttl": data.hasTtl ? c.ttlExec : undefined },
      header: {
        "rules:nostore": data.hasTtl ? c.nostoreCheck : undefined,
        "rules:headers": data.hasHeader || data.hasCookie ? c.responseHeaders : undefined,
      },
      initWorker: { rules: c.warmRegexes },
    };
  },
};
