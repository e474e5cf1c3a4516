/**
 * Client side of the purge API (used by `cdn-build purge` and the tests): builds the JSON request, signs
 * it (token or HMAC-SHA256), sends it to nodes, and warms URLs after a purge.
 */
import { createHmac, randomBytes } from "node:crypto";
import { Agent, request } from "undici";

/** What to purge: the body of `POST <purge path>`. */
export interface PurgeSpec {
  urls?: string[];
  prefixes?: string[];
  tags?: string[];
  all?: boolean;
  soft?: boolean;
}

/** Credentials: a bearer token and/or an HMAC secret (the signature is used when a secret is given). */
export interface PurgeAuth {
  token?: string;
  hmacSecret?: string;
}

export const TIMESTAMP_HEADER = "x-purge-timestamp";
export const SIGNATURE_HEADER = "x-purge-signature";
export const NONCE_HEADER = "x-purge-nonce";

/** The JSON body of a purge request (only the keys given). */
export function purgeBody(spec: PurgeSpec): string {
  const body: Record<string, unknown> = {};
  if (spec.urls?.length) body.urls = spec.urls;
  if (spec.prefixes?.length) body.prefixes = spec.prefixes;
  if (spec.tags?.length) body.tags = spec.tags;
  if (spec.all) body.all = true;
  if (spec.soft) body.soft = true;
  return JSON.stringify(body);
}

/**
 * Hex HMAC-SHA256 of `METHOD \n REQUEST_URI \n TIMESTAMP \n NONCE \n BODY`, what the edge verifies. The nonce
 * (8 to 64 of `[A-Za-z0-9_-]`) makes each request unique: a fleet accepts a signature once, so the same purge
 * sent to several nodes is signed once per node.
 */
export function signPurge(secret: string, method: string, requestUri: string, timestamp: number | string, nonce: string, body: string): string {
  return createHmac("sha256", secret).update(`${method}\n${requestUri}\n${timestamp}\n${nonce}\n${body}`).digest("hex");
}

/** A fresh nonce for a signed purge request. */
export function purgeNonce(): string {
  return randomBytes(12).toString("base64url");
}

/** Headers authenticating a purge request. */
export function purgeHeaders(auth: PurgeAuth, requestUri: string, body: string, now = Date.now()): Record<string, string> {
  const h: Record<string, string> = { "content-type": "application/json" };
  if (auth.token) h.authorization = `Bearer ${auth.token}`;
  if (auth.hmacSecret) {
    const ts = Math.floor(now / 1000);
    const nonce = purgeNonce();
    h[TIMESTAMP_HEADER] = String(ts);
    h[NONCE_HEADER] = nonce;
    h[SIGNATURE_HEADER] = signPurge(auth.hmacSecret, "POST", requestUri, ts, nonce, body);
  }
  return h;
}

export interface NodeResult {
  node: string;
  /** HTTP status, or 0 when the node could not be reached. */
  status: number;
  ok: boolean;
  /** The node's JSON answer (when it sent one). */
  answer?: { count?: number; keys?: string[]; files?: number; fanout?: { status: string; error?: string; id?: string }; error?: string; [k: string]: unknown };
  error?: string;
}

const agent = new Agent({ keepAliveTimeout: 1000, connections: 64 });

/** Sends one purge request to each node (in parallel). */
export async function sendPurge(nodes: string[], path: string, spec: PurgeSpec, auth: PurgeAuth, timeoutMs = 10_000): Promise<NodeResult[]> {
  const body = purgeBody(spec);
  return Promise.all(
    nodes.map(async (node): Promise<NodeResult> => {
      const base = node.replace(/\/+$/, "");
      try {
        const res = await request(base + path, {
          method: "POST",
          headers: purgeHeaders(auth, path, body),
          body,
          dispatcher: agent,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        });
        const text = await res.body.text();
        let answer: NodeResult["answer"];
        try {
          answer = JSON.parse(text);
        } catch {
          answer = undefined;
        }
        const ok = res.statusCode === 200 && answer?.ok === true;
        return { node, status: res.statusCode, ok, answer, ...(ok ? {} : { error: answer?.error ?? (text.trim().slice(0, 200) || `HTTP ${res.statusCode}`) }) };
      } catch (err) {
        return { node, status: 0, ok: false, error: (err as Error).message };
      }
    }),
  );
}

export interface PrefetchResult {
  node: string;
  url: string;
  /** HTTP status, or 0 on a connection error. */
  status: number;
  cache?: string;
  error?: string;
}

/**
 * Warms URLs on nodes: a GET of each URL through each node (the URL's path and query sent to the node,
 * with its host as the Host header), at most `concurrency` at a time.
 */
export async function prefetch(nodes: string[], urls: string[], concurrency = 8, cacheHeader = "x-cache"): Promise<PrefetchResult[]> {
  const jobs: { node: string; url: string }[] = [];
  for (const node of nodes) for (const url of urls) jobs.push({ node, url });
  const results: PrefetchResult[] = new Array(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      const { node, url } = jobs[i]!;
      try {
        const u = new URL(url);
        const res = await request(node.replace(/\/+$/, "") + u.pathname + u.search, {
          method: "GET",
          headers: { host: u.host },
          dispatcher: agent,
        });
        await res.body.dump();
        const cache = res.headers[cacheHeader];
        results[i] = { node, url, status: res.statusCode, ...(typeof cache === "string" ? { cache } : {}) };
      } catch (err) {
        results[i] = { node, url, status: 0, error: (err as Error).message };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, jobs.length)) }, worker));
  return results;
}
