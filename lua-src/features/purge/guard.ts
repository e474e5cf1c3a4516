/**
 * The purge endpoint's guards (security issue 11 §5), kept apart from the purge logic; ./index.ts wires them.
 *
 * - The credential never leaves the edge: a request that carries the purge token in `Authorization` (on a
 *   path that is not the endpoint: a near miss nginx did not catch, or a client that sends the token
 *   everywhere) has that header removed before anything else runs, so it is never proxied. The signing
 *   headers (`X-Purge-*`) are removed in nginx (`templates/partials/purge-proxy.hbs`).
 * - A signed purge is accepted once per fleet: with `redis`, the signature is recorded there (`SET NX`, for
 *   the window in which its timestamp is accepted) and a second node that sees it refuses it. When Redis
 *   cannot say, the signed purge is refused (503): accepting it could accept a replay.
 */
import { constantTimeEquals } from "../../core/crypto";
import { redisConnect, redisRelease } from "../../core/redis";

const P = ngx as unknown as PurgeNgx;

/** The one Redis command used here, called as a method (`red:set(...)`). */
interface SignatureRedis {
  set(this: SignatureRedis, ...args: (string | number)[]): LuaMultiReturn<[unknown, string | undefined]>;
  close(this: SignatureRedis): void;
}

/** The access handler removing the purge token from proxied requests (a no-op when the token is not set). */
export function credentialStripper(this: void, token: string | undefined): () => void {
  if (token === undefined) return () => {};
  return () => {
    const auth = ngx.var.get("http_authorization");
    if (auth === undefined) return;
    const [given] = string.match(auth, "^[Bb][Ee][Aa][Rr][Ee][Rr]%s+(.-)%s*$");
    if (given !== undefined && constantTimeEquals(token, given)) ngx.req.clear_header("Authorization");
  };
}

export type SignatureRecord = "new" | "replayed" | "unavailable";

/** Records a verified signature fleet-wide (Redis `SET key 1 NX EX ttl`): new, replayed, or unavailable + why. */
export function recordFleetSignature(this: void, channel: string, signature: string, ttl: number): LuaMultiReturn<[SignatureRecord, string | undefined]> {
  const [client, err] = redisConnect();
  if (client === undefined) return $multi("unavailable", err ?? "cannot connect to redis");
  const red = client as unknown as SignatureRedis;
  const [reply, rerr] = red.set(channel + ":sig:" + signature, "1", "NX", "EX", ttl);
  if (reply === undefined) {
    // a connection error: the client closed the socket
    return $multi("unavailable", tostring(rerr));
  }
  if (reply === false) {
    red.close();
    return $multi("unavailable", tostring(rerr));
  }
  redisRelease(client);
  return $multi(reply === P.null ? "replayed" : "new", undefined);
}
