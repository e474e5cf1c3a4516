/**
 * The bench's policies and requests: the cdn-build configurations of the table (RAM tier, gates, 1,000
 * rules, JSON access log, disk tier) and what each gate needs from a request to let it through.
 */
import { createHmac } from "node:crypto";
import type { Policy, Rule } from "../src/policy/types.js";
import { env } from "../src/policy/env.js";
import { manyRules } from "../test/support/many-rules.js";

export const EDGE_SECRET = "bench-edge-secret-0123456789abcdef";
export const JWT_SECRET = "bench-jwt-secret-0123456789abcdef";
export const SIGN_KEY = "bench-sign-key-0123456789abcdef";
/** The environment of every bench bundle (the secrets the gates name with env("...")). */
export const ENV = { BENCH_EDGE_SECRET: EDGE_SECRET, BENCH_JWT_SECRET: JWT_SECRET, BENCH_SIGN_KEY: SIGN_KEY };

/** The object the hit rows request: a path, and a query with lookalike words the WAF inspects. */
export const PATH = "/bench/obj";
export const QUERY = "q=o%27brien+union+station&page=2";
export const TARGET_URL = `${PATH}?${QUERY}`;

const b64u = (x: string | Buffer) => Buffer.from(x).toString("base64url");

/** An HS256 token valid for a day (sent in a cookie: an Authorization header would bypass the cache). */
function hs256Token(): string {
  const input = `${b64u(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${b64u(JSON.stringify({ sub: "bench", exp: Math.floor(Date.now() / 1000) + 86400 }))}`;
  return `${input}.${b64u(createHmac("sha256", JWT_SECRET).update(input).digest())}`;
}

/** 5,000 deny blocks (4,000 IPv4 /24s and 1,000 IPv6 /48s), deterministic, none covering the bench client. */
export function denyList(): string[] {
  let x = 7;
  const rnd = () => (x = (x * 1103515245 + 12345) % 2 ** 31);
  const out: string[] = [];
  while (out.length < 4000) {
    const a = 11 + (rnd() % 100);
    if (a !== 127) out.push(`${a}.${rnd() % 256}.${rnd() % 256}.0/24`);
  }
  while (out.length < 5000) out.push(`2a0${rnd() % 10}:${(rnd() % 0xffff).toString(16)}:${(rnd() % 0xffff).toString(16)}::/48`);
  return out;
}

/** The access gates a bench policy can turn on. */
export type Gate = "originSecret" | "ipRules" | "rateLimit" | "waf" | "jwt" | "signedUrls" | "rateLimitWithHeaders" | "rateLimitCluster";

/** What one gate adds to the bench policy, and what every request must carry to get through it. */
interface GateSetup {
  policy: (ctx: { redisPort?: number }) => Partial<Policy>;
  headers?: Record<string, string>;
}

/**
 * Each gate configured so that every benchmark request passes it (a HIT that a gate refuses would measure
 * the refusal, not the gate).
 */
const GATES: Record<Gate, GateSetup> = {
  originSecret: { policy: () => ({ originSecret: { secret: env("BENCH_EDGE_SECRET") } }), headers: { "X-Origin-Secret": EDGE_SECRET } },
  // 5,000 denied blocks; the client (198.51.100.23) is taken from X-Forwarded-For, sent by the trusted 127.0.0.1
  ipRules: {
    policy: () => ({ ipRules: { deny: denyList(), trustedProxies: ["127.0.0.1"] } }),
    headers: { "X-Forwarded-For": "198.51.100.23, 127.0.0.1" },
  },
  // far above what wrk can send: every request takes a token, none is refused
  rateLimit: { policy: () => ({ rateLimit: [{ name: "bench", rate: "1000000r/s", burst: 10_000_000 }] }) },
  rateLimitWithHeaders: { policy: () => ({ rateLimit: [{ name: "bench", rate: "1000000r/s", burst: 10_000_000, headers: true }] }) },
  rateLimitCluster: {
    policy: ({ redisPort }) => ({
      redis: { port: redisPort, timeout: "50ms" },
      rateLimit: [{ name: "bench-cluster", rate: "1000000r/s", burst: 10_000_000, scope: "cluster" }],
    }),
  },
  // every built-in rule set on the path, the query and the user agent
  waf: { policy: () => ({ waf: {} }), headers: { "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0" } },
  // one valid token for the whole run: after the first request per worker it is a hit of the worker's
  // verified-token cache (claims still checked for exp/nbf on every request)
  jwt: {
    policy: () => ({ jwt: { algorithms: ["HS256"], secret: env("BENCH_JWT_SECRET"), cookie: "tok", forwardClaims: { sub: "X-User" } } }),
    headers: { Cookie: `tok=${hs256Token()}` },
  },
  // scoped to a download area the bench does not request: the realistic case for a site whose hot
  // cached pages are public (the in-scope cost, with a valid signature, is measured separately)
  signedUrls: { policy: () => ({ signedUrls: { paths: ["/downloads/*"], secret: env("BENCH_SIGN_KEY") } }) },
};

/** The gates of the `gates` scenario's "all gates on" bundle (node-scoped rate limit). */
export const ALL_GATES: Gate[] = ["originSecret", "ipRules", "rateLimit", "waf", "jwt", "signedUrls"];

/** The gates of the table's full edge: the cheap ones every edge runs (no token or signature). */
export const EDGE_GATES: Gate[] = ["originSecret", "ipRules", "rateLimit", "waf"];

/** Adds gates to a policy (list-valued gates, the rate limits, add up; the others are one key each). */
export function withGates<P extends Omit<Policy, "listen">>(p: P, gates: readonly Gate[], ctx: { redisPort?: number } = {}): P {
  const out: Record<string, unknown> = { ...p };
  for (const g of gates) {
    for (const [k, v] of Object.entries(GATES[g].policy(ctx))) {
      const prev = out[k];
      out[k] = Array.isArray(prev) && Array.isArray(v) ? [...prev, ...v] : v;
    }
  }
  return out as P;
}

/** Request headers the given gates need (a secret header, a token...). */
export function gatesHeaders(gates: readonly Gate[]): Record<string, string> {
  return Object.assign({}, ...gates.map((g) => GATES[g].headers ?? {}));
}

/** The rule every benchmark request matches, placed last: the worst case for a linear evaluation. */
export const TARGET_RULE: Rule = { name: "bench-target", when: { path: PATH }, then: { responseHeaders: { set: { "X-Rule": "target" } } } };

/** `n` rules shaped like a real policy's, the one the bench requests matching last. */
export function rulesEndingWithTarget(n: number): Rule[] {
  return [...manyRules(n - 1), TARGET_RULE];
}

/** A cache-only bundle: disk tier (and the RAM tier with `ram`), one worker, no access log. */
export function cachePolicy(name: string, origin: string, opts: { ram?: boolean | string; disk?: { keysZone: string; size: string } } = {}): Omit<Policy, "listen"> {
  return {
    name,
    workers: { processes: 1 },
    origins: { app: { servers: [{ address: origin }] } },
    cache: {
      ttl: { "200": "1h" },
      key: { query: "all" },
      ...(opts.disk ? { disk: opts.disk } : {}),
      ...(opts.ram ? { ram: { size: typeof opts.ram === "string" ? opts.ram : "64m", maxObjectSize: "64k", minHits: 2 } } : {}),
    },
    accessLog: { format: "off" },
  };
}

/** The table's cumulative cdn-build configurations, on top of the RAM tier. */
export function edgePolicy(origin: string, parts: { gates?: boolean; rules?: number; log?: string; disk?: { keysZone: string; size: string } }): Omit<Policy, "listen"> {
  let p = cachePolicy(`bench-edge${parts.gates ? "-gates" : ""}${parts.rules ? `-rules${parts.rules}` : ""}${parts.log ? "-log" : ""}`, origin, { ram: true, disk: parts.disk });
  if (parts.gates) p = withGates(p, EDGE_GATES);
  if (parts.rules) p = { ...p, rules: rulesEndingWithTarget(parts.rules) };
  // the JSON access log, the default format, to a real file in the folder `log` (on disk, see diskDir)
  if (parts.log) p = { ...p, accessLog: { format: "json", path: `${parts.log}/access.log` } };
  return p;
}
