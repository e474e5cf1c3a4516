import type { Feature } from "./shared/feature.js";
import type { Policy } from "../policy/types.js";
import { error, pointer, warning, type Diagnostic } from "../validate/diagnostic.js";
import { checkCidr, checkDuration, checkSize, SHM_MAX } from "../validate/checks.js";
import { durationMs, shmSize } from "../util/units.js";
import { useEnv } from "../ir/env.js";

export const DEFAULT_PURGE_ALLOW = ["127.0.0.1/32", "::1/128"];
/** Name of the purge index shared dict (also holds the purge markers the cache tiers read). */
export const PURGE_DICT = "cdn_purge" satisfies SharedDictName;

import type { PurgeData, SharedDictName } from "../contract/index.js";

/** Headers of a signed purge request; removed from every proxied request. */
export const SIGNING_HEADERS = ["X-Purge-Timestamp", "X-Purge-Signature", "X-Purge-Nonce"] as const;

/**
 * The near misses of the endpoint's path, as an nginx case-insensitive regex: the path in any case followed
 * by the end or by any character that cannot continue a name (`/`, `;`, `.`, a space, `%`...), so
 * `/__PURGE`, `/__purge/`, `/__purge;x`, `/__purge%20` and `/__purge.json` are answered by the edge (404)
 * and never proxied; `/__purgeable` and `/__purge-x` are other paths. Regex characters of the path are put
 * in brackets (the path has no `\`, `]` or `^`: see UrlPath).
 */
export function nearMissRegex(path: string): string {
  return "^" + path.replace(/[.*+?()|{}$[]/g, (c) => `[${c}]`) + "(?:[^A-Za-z0-9_-]|$)";
}

/** The longest lifetime an object can have in the disk cache, in seconds: index entries live that long. */
function defaultIndexTtl(policy: Policy): number {
  const c = policy.cache ?? {};
  let s = (durationMs(c.disk?.inactive ?? "7d") ?? 0) / 1000;
  for (const ttl of Object.values(c.ttl ?? {})) s = Math.max(s, (durationMs(ttl) ?? 0) / 1000);
  return Math.max(60, Math.ceil(s));
}

/**
 * The purge endpoint: a location served by the `purge` Lua hook, restricted to an address allow-list and
 * authenticated (token or HMAC), never proxied or cached. Purges by URL, prefix, tag or everything, hard or
 * soft, locally and (with `redis`) on every node of the fleet. A header filter records what the cache stores
 * in the purge index (`lua_shared_dict cdn_purge`).
 */
export const purge: Feature = {
  name: "purge",
  runtime: {
    key: "purge",
    // access: the purge token is removed from every proxied request (lua-src/features/purge/guard.ts)
    stages: { access: { purge: (d) => d.tokenEnv !== undefined }, header: { purge: (d) => d.enabled }, initWorker: { purge: (d) => d.enabled } },
  },
  check(policy) {
    const out: Diagnostic[] = [];
    const p = policy.purge;
    (p?.allow ?? []).forEach((c, i) => {
      const bad = checkCidr(c, pointer("purge", "allow", i));
      out.push(...bad);
      const bits = Number(c.split("/")[1] ?? "128");
      if (bad.length === 0 && bits < 8) {
        out.push(warning("purgeAllowBroad", pointer("purge", "allow", i), `"${c}" opens the purge endpoint to /${bits} of the address space`, 'allow only the addresses that purge, e.g. ["10.0.0.0/8"] or the hosts running `cdn-build purge`'));
      }
    });
    if (p?.path === "/") out.push(error("endpointOnRoot", pointer("purge", "path"), "the purge endpoint on / would take the site's home page (and, by its near misses, every path)", 'use e.g. "/__purge"'));
    if (!p) return out;
    out.push(...checkSize(p.indexSize, pointer("purge", "indexSize"), { min: 1024 * 1024, minText: '"1m"', max: SHM_MAX.purgeIndex, maxText: '"4g"' }));
    out.push(...checkDuration(p.indexTtl, pointer("purge", "indexTtl")));
    out.push(...checkDuration(p.hmac?.maxSkew, pointer("purge", "hmac", "maxSkew")));
    if (p.token && p.hmac && p.token.env === p.hmac.secret.env) {
      out.push(
        error("purgeSharedSecret", pointer("purge", "hmac", "secret"), `the HMAC secret and the token come from the same variable "${p.token.env}"`, "use two different secrets (a leaked token would also sign requests)"),
      );
    }
    if (policy.cache && !p.token && !p.hmac) {
      out.push(
        warning("purgeNoCredentials", pointer("purge"), "the purge endpoint has no credentials: every purge request will be refused (403)", 'add `token: env("PURGE_TOKEN")` or `hmac: { secret: env("PURGE_HMAC") }`'),
      );
    }
    if (p.indexTtl !== undefined && policy.cache) {
      const ttl = (durationMs(p.indexTtl) ?? 0) / 1000;
      if (ttl > 0 && ttl < defaultIndexTtl(policy)) {
        out.push(
          warning("purgeIndexTtlShort", pointer("purge", "indexTtl"), `index entries (${p.indexTtl}) may expire before the objects they point at`, "tag and prefix purges miss objects older than indexTtl; raise it to cache.disk.inactive or the longest TTL"),
        );
      }
    }
    return out;
  },
  lower(policy, ir) {
    const p = policy.purge ?? {};
    const path = p.path ?? "/__purge";
    const location = { partial: "purge", data: { path, allow: p.allow ?? DEFAULT_PURGE_ALLOW, nearMiss: nearMissRegex(path) } };
    // the signing headers never reach the origin (the token is removed by the Lua access stage)
    ir.slots.proxy.push({ partial: "purge-proxy", data: { headers: SIGNING_HEADERS } });
    ir.slots.locations.push(location);
    // answered for any host (`cdn-build purge` addresses nodes by IP), also when unknown hosts are refused
    ir.slots.anyHost.push(location);
    const c = policy.cache;
    const q = c?.key?.query ?? "all";
    const data: PurgeData = {
      enabled: c !== undefined,
      maxSkew: Math.max(1, Math.ceil((durationMs(p.hmac?.maxSkew ?? "60s") ?? 60_000) / 1000)),
      cachePath: c?.disk?.path ?? "cache/disk",
      levels: [1, 2],
      query: typeof q === "string" ? q : "allow",
      allow: typeof q === "object" ? Object.fromEntries([...q.allow].sort().map((k) => [k, true as const])) : {},
      host: c?.key?.host ?? true,
      indexTtl: p.indexTtl !== undefined ? Math.ceil((durationMs(p.indexTtl) ?? 0) / 1000) : defaultIndexTtl(policy),
      maxKeysPerTag: p.maxKeysPerTag ?? 10000,
      exposeTags: p.exposeTags ?? false,
      channel: p.channel ?? `cdn-build:purge:${policy.name}`,
    };
    if (p.token) data.tokenEnv = useEnv(ir, p.token);
    if (p.hmac) data.hmacEnv = useEnv(ir, p.hmac.secret);
    if (c) ir.sharedDicts.push({ name: PURGE_DICT, size: shmSize(p.indexSize ?? "32m") });
    ir.luaData.purge = data;
  },
};
