/**
 * Fleet fan-out of purges over a Redis stream. The node that receives a purge request applies it locally,
 * then appends it to the stream (`XADD <purge.channel> MAXLEN ~ 10000`); on every node one reader (a timer
 * in worker 0, reconnecting with a backoff) follows the stream with `XREAD BLOCK` from the last entry it
 * applied, and applies what other nodes appended. A node never re-publishes what it read.
 *
 * Every purge published after a node started reaches it once Redis is reachable: the position (the last
 * entry applied) is kept with the markers (lua-src/core/markers.ts), so it survives reloads and restarts
 * of the node; a node that never read the stream starts a few minutes before its own start (applying a
 * purge twice only costs a refetch). When the stream was trimmed past the position (more than MAXLEN
 * purges while the node was away), the purges in between are lost: the node then purges everything (hard),
 * which is correct if broad, and says so in its log.
 */
import type { PurgeData } from "../../../src/contract/index";
import { redisConfigured, redisConnect, redisRelease } from "../../core/redis";
import { setStreamPosition, streamPosition } from "../../core/markers";
import { decodeJson, encodeJson, jsonArray } from "../../core/json";
import { applyPurge, type PurgeRequest } from "./tag-index";
import { countPurge, countRedisError } from "../../core/metrics";

const P = ngx as unknown as PurgeNgx;
const MAX_BACKOFF = 5;
const BLOCK_MS = 1000;
const STREAM_MAXLEN = 10000;
/** A node that never read the stream starts this long before it started (clock skew with Redis included). */
const FIRST_READ_MARGIN_MS = 300_000;

let stream = "";
/** This node's id (computed once in the master at init, so every worker shares it). */
let nodeId = "";
/** When this nginx started (init, in the master). */
let startedAt = 0;

export function initFleet(data: PurgeData): void {
  stream = data.channel;
  startedAt = ngx.now();
  nodeId = string.sub(ngx.md5(P.config.prefix() + tostring(P.worker.pid()) + tostring(ngx.now()) + tostring(os.clock())), 1, 16);
}

/** Stream ids ("<ms>-<seq>") in order. */
function idBefore(a: string, b: string): boolean {
  const [am, as] = string.match(a, "^(%d+)-(%d+)$");
  const [bm, bs] = string.match(b, "^(%d+)-(%d+)$");
  const na = tonumber(am) ?? 0;
  const nb = tonumber(bm) ?? 0;
  return na < nb || (na === nb && (tonumber(as) ?? 0) < (tonumber(bs) ?? 0));
}

export function fleetEnabled(): boolean {
  return redisConfigured();
}

export function thisNode(): string {
  return nodeId;
}

/** Appends a purge the node applied to the fleet's stream; returns the entry id, or an error. */
export function publishPurge(req: PurgeRequest): LuaMultiReturn<[string | undefined, string | undefined]> {
  const msg = encodeJson({
    v: 1,
    node: nodeId,
    urls: jsonArray(req.urls),
    prefixes: jsonArray(req.prefixes),
    tags: jsonArray(req.tags),
    all: req.all,
    soft: req.soft,
  });
  const [client, err] = redisConnect();
  if (client === undefined) return $multi(undefined, err ?? "cannot connect to redis");
  const red = client as unknown as PurgeRedis;
  const [id, xerr] = red.xadd(stream, "MAXLEN", "~", STREAM_MAXLEN, "*", "purge", msg);
  if (type(id) !== "string") {
    countRedisError("command");
    // a connection error (nil) closes the socket itself; a Redis error (false) leaves it usable
    if (id === false) redisRelease(client);
    else red.close();
    return $multi(undefined, tostring(xerr));
  }
  redisRelease(client);
  return $multi(id as string, undefined);
}

function strings(v: unknown): string[] | undefined {
  if (type(v) !== "table") return undefined;
  const list = v as unknown[];
  for (const s of list) if (type(s) !== "string") return undefined;
  return list as string[];
}

function onMessage(payload: string): void {
  const msg = decodeJson(payload, 8, 1048576);
  if (msg === undefined || type(msg) !== "table") {
    ngx.log(ngx.WARN, "purge: ignoring a malformed fleet message");
    return;
  }
  const m = msg as LuaTable<string, unknown>;
  if (m.get("node") === nodeId) return; // our own purge, already applied
  const urls = strings(m.get("urls"));
  const prefixes = strings(m.get("prefixes"));
  const tags = strings(m.get("tags"));
  if (urls === undefined || prefixes === undefined || tags === undefined) {
    ngx.log(ngx.WARN, "purge: ignoring a fleet message without url/prefix/tag lists");
    return;
  }
  const res = applyPurge({ urls, prefixes, tags, all: m.get("all") === true, soft: m.get("soft") === true });
  countPurge("fleet", urls.length, prefixes.length, tags.length, m.get("all") === true, res.keys.length);
  ngx.log(ngx.INFO, "purge: applied a fleet purge from node ", tostring(m.get("node")), ": ", res.keys.length, " keys, ", res.files, " files");
}

/** Handles an XREAD reply: [[stream, [[id, [field, value, ...]], ...]]]; returns the last id applied. */
function onEntries(reply: unknown[], from: string): string {
  let lastId = from;
  for (const s of reply) {
    const entries = (s as unknown[])[1] as unknown[];
    if (type(entries) !== "table") continue;
    for (const e of entries) {
      const entry = e as unknown[];
      const id = entry[0];
      const fields = entry[1] as unknown[];
      if (type(id) !== "string") continue;
      if (type(fields) === "table") {
        for (let i = 0; i + 1 < fields.length; i += 2) {
          if (fields[i] === "purge" && type(fields[i + 1]) === "string") {
            const [ok, perr] = pcall(onMessage, fields[i + 1] as string);
            if (!ok) ngx.log(ngx.ERR, "purge: applying a fleet purge failed: ", tostring(perr));
          }
        }
      }
      lastId = id as string;
    }
  }
  return lastId;
}

/**
 * Whether entries after `position` were trimmed away before this node read them (Redis >= 7 reports the
 * newest deleted id; older ones: the oldest entry left is compared instead).
 */
function missedEntries(red: PurgeRedis, position: string): boolean {
  const [info] = red.xinfo("STREAM", stream);
  if (type(info) === "table") {
    const list = info as unknown[];
    for (let i = 0; i + 1 < list.length; i += 2) {
      if (list[i] === "max-deleted-entry-id" && type(list[i + 1]) === "string") return idBefore(position, list[i + 1] as string);
    }
  }
  const [first] = red.xrange(stream, "-", "+", "COUNT", 1);
  if (type(first) !== "table") return false;
  const entry = (first as unknown[])[0] as unknown[] | undefined;
  const firstId = entry !== undefined && type(entry[0]) === "string" ? (entry[0] as string) : undefined;
  return firstId !== undefined && idBefore(position, firstId) && position !== "0-0";
}

/** Whether the last connection attempt failed (to log an outage once, not at every retry). */
let failing = false;

/** One reading session: returns false when it could not start, true when the connection was lost. */
function session(): boolean {
  const [client, err] = redisConnect();
  if (client === undefined) {
    if (!failing) ngx.log(ngx.WARN, "purge: fleet reader cannot connect to redis (retrying with a backoff): ", err);
    failing = true;
    return false;
  }
  if (failing) ngx.log(ngx.NOTICE, "purge: fleet reader connected to redis again");
  failing = false;
  const red = client as unknown as PurgeRedis;
  let position = streamPosition(stream);
  if (position === undefined) {
    // never read: from a little before this node started (what was published earlier is old news)
    position = tostring(math.max(0, math.floor(startedAt * 1000) - FIRST_READ_MARGIN_MS)) + "-0";
    setStreamPosition(stream, position);
  } else if (missedEntries(red, position)) {
    ngx.log(ngx.ERR, "purge: the fleet stream was trimmed past this node's position ", position, "; purges were lost: purging everything on this node");
    applyPurge({ urls: [], prefixes: [], tags: [], all: true, soft: false });
  }
  // the socket timeout must outlast BLOCK, or the client closes the connection
  red.set_timeout(BLOCK_MS + 2000);
  while (!P.worker.exiting()) {
    const [reply, rerr] = red.xread("COUNT", 100, "BLOCK", BLOCK_MS, "STREAMS", stream, position!);
    if (reply === undefined || reply === false) {
      countRedisError("command");
      ngx.log(ngx.WARN, "purge: fleet stream read failed: ", tostring(rerr));
      red.close();
      return true;
    }
    if (reply !== P.null && type(reply) === "table") {
      const next = onEntries(reply as unknown[], position!);
      if (next !== position) {
        position = next;
        setStreamPosition(stream, next);
      }
    }
  }
  red.close();
  return true;
}

function reader(premature: boolean): void {
  if (premature) return;
  let backoff = 0.1;
  while (!P.worker.exiting()) {
    const connected = session();
    if (P.worker.exiting()) return;
    backoff = connected ? 0.1 : math.min(backoff * 2, MAX_BACKOFF);
    ngx.sleep(backoff);
  }
}

/** init_worker: worker 0 of each node follows the fleet's purge stream. */
export function startSubscriber(): void {
  if (!redisConfigured() || P.worker.id() !== 0) return;
  const [t, err] = P.timer.at(0, reader);
  if (t === undefined) ngx.log(ngx.ERR, "purge: cannot start the fleet reader: ", tostring(err));
}
