import type { LuaFeature } from "../../core/feature";
import { features } from "../../core/policy";
import { readEnv } from "../../core/env";
import { cleanDiskHit } from "../cache/hit";
import { ramHitLabel } from "../cache/ram";
import { constantTimeEquals, hmac, toHex } from "../../core/crypto";
import { decodeJson, encodeJson, isJsonObject, jsonArray, jsonNull } from "../../core/json";
import { applyPurge, initIndex, normalisePrefix, normaliseUrl, purgeDict, recordResponse, type PurgeRequest } from "./tag-index";
import { fleetEnabled, initFleet, publishPurge, startSubscriber, thisNode } from "./fleet";
import { credentialStripper, recordFleetSignature } from "./guard";
import { countPurge } from "../../core/metrics";

const P = ngx as unknown as PurgeNgx;
const MAX_ITEMS = 1000;
const MAX_ITEM_LEN = 8192;
/** Largest purge request body (the location also caps it with client_max_body_size 64k). */
const MAX_BODY = 65536;
const MAX_KEYS_LISTED = 1000;

let token: string | undefined;
let hmacSecret: string | undefined;

/**
 * Header filter: records what the cache stores (URL and Cache-Tag / Surrogate-Key -> cache key) in the
 * purge index, and removes the tag headers from client responses unless `exposeTags`. init_worker: the
 * fleet subscriber (worker 0, with `redis`).
 */
export const purge: LuaFeature<"purge"> = {
  key: "purge",
  setup(data) {
    initIndex(data);
    initFleet(data);
    token = data.tokenEnv !== undefined ? readEnv(data.tokenEnv) : undefined;
    hmacSecret = data.hmacEnv !== undefined ? readEnv(data.hmacEnv) : undefined;
    if (data.tokenEnv !== undefined && token === undefined) {
      ngx.log(ngx.ERR, "purge: environment variable ", data.tokenEnv, " is empty: token authentication is off");
    }
    if (data.hmacEnv !== undefined && hmacSecret === undefined) {
      ngx.log(ngx.ERR, "purge: environment variable ", data.hmacEnv, " is empty: HMAC authentication is off");
    }
    // the purge token never reaches the origin (./guard.ts): planned whenever the policy has a token
    const strip = data.tokenEnv !== undefined ? credentialStripper(token) : undefined;
    if (!data.enabled) return { access: { purge: strip }, header: { purge: undefined }, initWorker: { purge: undefined } };
    const expose = data.exposeTags;
    return {
      access: { purge: strip },
      header: {
        purge: () => {
        // a RAM hit: nothing stored, and the RAM copy holds no tag headers unless they are exposed; a disk hit
        // whose stored response has no tag header
        if (ramHitLabel() !== undefined || cleanDiskHit()) return;
        const status = ngx.var.get("upstream_cache_status");
        // what the cache stores (the cache's header filter ran first: $cdn_nostore says)
        if (status === "MISS" || status === "EXPIRED" || status === "BYPASS" || status === "REVALIDATED") recordResponse();
        if (!expose) {
          const h = ngx.header;
          if (h.get("Cache-Tag") !== undefined) h.set("Cache-Tag", undefined);
          if (h.get("Surrogate-Key") !== undefined) h.set("Surrogate-Key", undefined);
        }
        },
      },
      initWorker: { purge: startSubscriber },
    };
  },
};

// ---------------------------------------------------------------------------------------------- endpoint

function reply(status: number, body: string): never {
  ngx.status = status;
  ngx.header.set("Content-Type", "application/json");
  ngx.header.set("Cache-Control", "no-store");
  ngx.say(body);
  return ngx.exit(status);
}

function fail(status: number, message: string): never {
  return reply(status, encodeJson({ ok: false, error: message }));
}

function readBody(): string {
  ngx.req.read_body();
  const body = ngx.req.get_body_data();
  if (body !== undefined) return body;
  const file = P.req.get_body_file();
  if (file === undefined) return "";
  const [f] = io.open(file, "rb");
  if (f === undefined) return "";
  const content = f.read(MAX_BODY + 1) as string | undefined;
  f.close();
  return content ?? "";
}

/**
 * Undefined when the request is authenticated, else the reason (logged, never sent) and, when it is not 403,
 * the status: 503 when a signature could not be checked against the fleet (./guard.ts).
 */
function authFailure(method: string, body: string): LuaMultiReturn<[string | undefined, number | undefined]> {
  const data = features.purge!;
  if (token === undefined && hmacSecret === undefined) return $multi("no purge credentials configured", undefined);
  const vars = ngx.var;
  if (token !== undefined) {
    const auth = vars.get("http_authorization");
    if (auth !== undefined) {
      const [given] = string.match(auth, "^[Bb]earer +(.+)$");
      if (given !== undefined && constantTimeEquals(token, given)) return $multi(undefined, undefined);
    }
  }
  if (hmacSecret !== undefined) {
    const ts = vars.get("http_x_purge_timestamp");
    const sig = vars.get("http_x_purge_signature");
    const nonce = vars.get("http_x_purge_nonce");
    if (ts === undefined || sig === undefined || nonce === undefined) return $multi(token !== undefined ? "bad or missing token" : "missing signature headers", undefined);
    const [digits] = string.find(ts, "^%d+$");
    if (digits === undefined || ts.length > 12) return $multi("bad timestamp", undefined);
    // the nonce makes each signed request unique (`cdn-build purge` signs one per node): 8 to 64 of [A-Za-z0-9_-]
    if (nonce.length < 8 || nonce.length > 64 || string.find(nonce, "^[%w_-]+$")[0] === undefined) return $multi("bad nonce", undefined);
    const skew = math.abs(ngx.time() - (tonumber(ts) as number));
    if (skew > data.maxSkew) return $multi("stale timestamp (" + tostring(skew) + "s)", undefined);
    const expected = toHex(hmac("sha256", hmacSecret, method + "\n" + vars.get("request_uri")! + "\n" + ts + "\n" + nonce + "\n" + body));
    if (!constantTimeEquals(expected, string.lower(sig))) return $multi("bad signature", undefined);
    const window = data.maxSkew * 2 + 1;
    const d = purgeDict();
    if (d !== undefined) {
      const [ok, err] = d.add("s:" + expected, 1, window);
      if (!ok && err === "exists") return $multi("replayed signature", undefined);
    }
    if (fleetEnabled()) {
      // once per fleet: another node may have accepted this very request (./guard.ts)
      const [rec, why] = recordFleetSignature(data.channel, expected, window);
      if (rec === "replayed") return $multi("replayed signature (accepted by another node)", undefined);
      if (rec === "unavailable") {
        if (d !== undefined) d.delete("s:" + expected); // the same request may be sent again once Redis answers
        return $multi("cannot check the signature against the fleet (redis: " + tostring(why) + ")", 503);
      }
    }
    return $multi(undefined, undefined);
  }
  return $multi("bad or missing token", undefined);
}

/** Appends string values (a string, a list of strings) to `out`; false on a wrong type. */
function addStrings(v: unknown, out: string[]): boolean {
  if (v === undefined) return true;
  if (type(v) === "string") {
    out.push(v as string);
    return true;
  }
  if (type(v) !== "table") return false;
  for (const s of v as unknown[]) {
    if (type(s) !== "string") return false;
    out.push(s as string);
  }
  return true;
}

function truthy(v: unknown): boolean {
  return v === true || v === "1" || v === "true" || v === "yes";
}

/** The purge request from the query string and/or a JSON body, or an error message. */
function parseRequest(body: string): LuaMultiReturn<[PurgeRequest | undefined, string | undefined]> {
  const req: PurgeRequest = { urls: [], prefixes: [], tags: [], all: false, soft: false };
  const [args] = ngx.req.get_uri_args(MAX_ITEMS);
  for (const [k, v] of pairs(args)) {
    if (k === "url") addStrings(v, req.urls);
    else if (k === "prefix") addStrings(v, req.prefixes);
    else if (k === "tag") addStrings(v, req.tags);
    else if (k === "all") req.all = truthy(v);
    else if (k === "soft") req.soft = truthy(v);
    else return $multi(undefined, "unknown query parameter " + k);
  }
  const [nonBlank] = string.find(body, "%S");
  if (nonBlank !== undefined) {
    const doc = decodeJson(body, 8, MAX_BODY);
    if (doc === undefined) return $multi(undefined, "body is not valid JSON (strict RFC 8259, at most " + tostring(MAX_BODY) + " bytes)");
    if (!isJsonObject(doc)) {
      return $multi(undefined, "body must be a JSON object");
    }
    for (const [k, v] of pairs(doc as LuaTable<string, unknown>)) {
      const list = k === "urls" ? req.urls : k === "prefixes" ? req.prefixes : k === "tags" ? req.tags : undefined;
      if (list !== undefined) {
        if (type(v) !== "table" || !addStrings(v, list)) return $multi(undefined, `"${k}" must be a list of strings`);
      } else if (k === "all" || k === "soft") {
        if (v !== true && v !== false && v !== jsonNull) return $multi(undefined, `"${k}" must be true or false`);
        if (v === true) {
          if (k === "all") req.all = true;
          else req.soft = true;
        }
      } else {
        return $multi(undefined, `unknown field "${k}" (use urls, prefixes, tags, all, soft)`);
      }
    }
  }
  const n = req.urls.length + req.prefixes.length + req.tags.length;
  if (n === 0 && !req.all) return $multi(undefined, "nothing to purge: give urls, prefixes, tags or all");
  if (n > MAX_ITEMS) return $multi(undefined, "too many items (at most " + tostring(MAX_ITEMS) + " per request)");
  for (const list of [req.urls, req.prefixes, req.tags]) {
    for (const s of list) {
      if (s.length === 0 || s.length > MAX_ITEM_LEN) return $multi(undefined, "empty or too long value");
    }
  }
  for (const u of req.urls) {
    const [url] = normaliseUrl(u);
    if (url === undefined) return $multi(undefined, "not an absolute http(s) URL: " + u);
  }
  for (const p of req.prefixes) {
    if (normalisePrefix(p) === undefined) return $multi(undefined, "a prefix must start with scheme://host: " + p);
  }
  for (const t of req.tags) {
    const [bad] = string.find(t, "[,%s]");
    if (bad !== undefined) return $multi(undefined, "a tag has no spaces or commas: " + t);
  }
  return $multi(req, undefined);
}

/** Content handler of the purge endpoint (its location already refused addresses outside the allow-list). */
export function handlePurge(): void {
  const data = features.purge;
  if (data === undefined || !data.enabled) fail(404, "this policy has no cache");
  const method = ngx.req.get_method();
  if (method !== "POST") {
    ngx.header.set("Allow", "POST");
    fail(405, "use POST");
  }
  const body = readBody();
  if (body.length > MAX_BODY) fail(413, "body too large");
  const [why, status] = authFailure(method, body);
  if (why !== undefined) {
    ngx.log(ngx.WARN, "purge: refused: ", why);
    if (status === 503) fail(503, "signed purges are unavailable: the fleet's redis cannot be reached");
    fail(403, "forbidden");
  }
  const [req, err] = parseRequest(body);
  if (req === undefined) fail(400, err!);

  const res = applyPurge(req);
  countPurge("api", req.urls.length, req.prefixes.length, req.tags.length, req.all, res.keys.length);
  const fanout = new LuaTable<string, unknown>();
  if (!fleetEnabled()) {
    fanout.set("status", "off");
  } else {
    const [id, perr] = publishPurge(req);
    if (id === undefined) {
      ngx.log(ngx.WARN, "purge: fan-out to the fleet failed (applied on this node only): ", tostring(perr));
      fanout.set("status", "failed");
      fanout.set("error", tostring(perr));
    } else {
      fanout.set("status", "published");
      fanout.set("id", id);
    }
  }
  const keys = res.keys;
  const listed: string[] = jsonArray([]);
  for (let i = 0; i < keys.length && i < MAX_KEYS_LISTED; i++) listed.push(keys[i]);
  reply(
    200,
    encodeJson({
      ok: true,
      node: thisNode(),
      soft: req.soft,
      all: req.all,
      count: keys.length,
      keys: listed,
      truncated: keys.length > MAX_KEYS_LISTED,
      files: res.files,
      scheduled: res.scheduled,
      // false: the index had lost entries (a restart, a full dict), so `count` is a lower bound; the
      // markers retire every matching object anyway
      indexComplete: res.indexComplete,
      // true: no room for this purge's markers, so everything was purged instead
      fellBack: res.fellBack,
      fanout,
    }),
  );
}
