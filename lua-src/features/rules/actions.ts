import type { RuleData, RulePoolTarget } from "../../../src/contract/index";
import { clientAddress } from "../../core/client-address";
import { countRefusal } from "../../core/metrics";
import { dataNow } from "../../core/header-value";

/**
 * What the matched rules do. The state of the current request lives in module-level variables (see
 * ./facts.ts for why that is safe); what later phases need goes through nginx variables, which survive the
 * internal redirect of a TTL override (ngx.ctx would not): $cdn_rules (matched rules with response work),
 * $cdn_rules_cookie (Set-Cookie lines), $cdn_rules_key (cache key additions, read by the cache feature),
 * $cdn_rules_ttl (the named location of a TTL override), $cdn_origin_url / $cdn_origin_host (the routed pool).
 */

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

/** Applies a rule's actions; a rule that answers the request (deny, respond, redirect) never returns. */
export function apply(i: number, r: RuleData, dict: NgxSharedDict | undefined): void {
  if (r.hdr) hdrIds = hdrIds === "" ? tostring(i) : hdrIds + "," + tostring(i);
  if (r.deny !== undefined) {
    finish();
    countRefusal("rules", "deny");
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
  if (r.reqSet !== undefined) {
    for (const [name, v] of r.reqSet!) {
      const value = dataNow(v);
      if (value !== undefined) ngx.req.set_header(name, value);
      else ngx.req.clear_header(name);
    }
  }
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
  if (r.maxBody !== undefined) ngx.ctx.set("cdn_body_limit", r.maxBody);
  if (r.ws === true) ngx.var.set("cdn_ws_rule", "1");
}

/** Starts a request. */
export function beginActions(): void {
  keyExtra = "";
  hdrIds = "";
  cookieOut = "";
  ttlLoc = "";
  routedTo = "";
  rewritten = false;
}

/** Ends the rules stage of a request that went on: what the cache key and the TTL override need. */
export function endActions(hasKey: boolean, hasTtl: boolean): void {
  finish();
  const vars = ngx.var;
  if (hasKey) {
    // where the request really goes is part of the key: a rule may route the same client URL to
    // different pools or paths depending on headers, cookies, country or variant
    if (routedTo !== "") keyExtra = keyExtra + "|o=" + routedTo;
    if (rewritten) keyExtra = keyExtra + "|u=" + (vars.get("uri") ?? "");
    if (keyExtra !== "") vars.set("cdn_rules_key", keyExtra);
  }
  if (hasTtl && ttlLoc !== "") vars.set("cdn_rules_ttl", ttlLoc);
}
