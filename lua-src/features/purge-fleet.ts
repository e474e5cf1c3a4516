/**
 * Fleet fan-out of purges over Redis pub/sub. The node that receives a purge request applies it locally,
 * then PUBLISHes it on the policy's channel; one subscriber per node (a timer in worker 0, reconnecting with
 * a backoff) applies every message that another node published. A node never re-publishes what it
 * received. Pub/sub keeps nothing: a node that is disconnected from Redis when a purge is published misses
 * it (purge again, or purge all after an outage).
 */
import { redisConfigured, redisConnect, redisRelease } from "../core/redis";
import { jsonDecode, jsonEncode, jsonArray } from "../core/purge-json";
import { applyPurge, type PurgeRequest } from "./purge-index";

const P = ngx as unknown as PurgeNgx;
const MAX_BACKOFF = 5;

let channel = "";
/** This node's id (computed once in the master at init, so every worker shares it). */
let nodeId = "";

export function initFleet(data: PurgeData): void {
  channel = data.channel;
  nodeId = string.sub(ngx.md5(P.config.prefix() + tostring(P.worker.pid()) + tostring(ngx.now()) + tostring(os.clock())), 1, 16);
}

export function fleetEnabled(): boolean {
  return redisConfigured();
}

export function thisNode(): string {
  return nodeId;
}

/** Publishes a purge the node applied; returns the number of subscribers reached, or an error. */
export function publishPurge(req: PurgeRequest): LuaMultiReturn<[number | undefined, string | undefined]> {
  const msg = jsonEncode({
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
  const [n, perr] = red.publish(channel, msg);
  if (n === undefined || n === null) {
    red.close();
    return $multi(undefined, tostring(perr));
  }
  redisRelease(client);
  return $multi(n, undefined);
}

function strings(v: unknown): string[] | undefined {
  if (type(v) !== "table") return undefined;
  const list = v as unknown[];
  for (const s of list) if (type(s) !== "string") return undefined;
  return list as string[];
}

function onMessage(payload: string): void {
  const [msg, err] = jsonDecode(payload);
  if (msg === undefined || type(msg) !== "table") {
    ngx.log(ngx.WARN, "purge: ignoring a malformed fleet message: ", err);
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
  ngx.log(ngx.INFO, "purge: applied a fleet purge from node ", tostring(m.get("node")), ": ", res.keys.length, " keys, ", res.files, " files");
}

/** One subscription session: returns when the connection fails or the worker is exiting. */
function session(): boolean {
  const [client, err] = redisConnect();
  if (client === undefined) {
    ngx.log(ngx.WARN, "purge: fleet subscriber cannot connect to redis: ", err);
    return false;
  }
  const red = client as unknown as PurgeRedis;
  const [ok, serr] = red.subscribe(channel);
  if (ok === undefined || ok === null) {
    ngx.log(ngx.WARN, "purge: SUBSCRIBE failed: ", tostring(serr));
    red.close();
    return false;
  }
  // a short read timeout so the loop notices the worker exiting (reload / stop)
  red.set_timeout(1000);
  while (!P.worker.exiting()) {
    const [reply, rerr] = red.read_reply();
    if (reply !== undefined && reply !== null) {
      const r = reply as unknown[];
      if (r[0] === "message" && type(r[2]) === "string") {
        const [pok, perr] = pcall(onMessage, r[2] as string);
        if (!pok) ngx.log(ngx.ERR, "purge: applying a fleet purge failed: ", tostring(perr));
      }
    } else if (rerr !== "timeout") {
      ngx.log(ngx.WARN, "purge: fleet subscription lost: ", tostring(rerr));
      red.close();
      return true;
    }
  }
  red.close();
  return true;
}

function subscriber(premature: boolean): void {
  if (premature) return;
  let backoff = 0.1;
  while (!P.worker.exiting()) {
    const connected = session();
    if (P.worker.exiting()) return;
    backoff = connected ? 0.1 : math.min(backoff * 2, MAX_BACKOFF);
    ngx.sleep(backoff);
  }
}

/** init_worker: worker 0 of each node runs the subscriber. */
export function startSubscriber(): void {
  if (!redisConfigured() || P.worker.id() !== 0) return;
  const [t, err] = P.timer.at(0, subscriber);
  if (t === undefined) ngx.log(ngx.ERR, "purge: cannot start the fleet subscriber: ", tostring(err));
}
