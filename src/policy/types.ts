/**
 * The public policy types. These are the single source of truth: `schemas/policy.schema.json` is generated
 * from them (`npm run schema`), and their JSDoc is what users see in their editor.
 */

/**
 * A duration as nginx understands it: a whole number followed by a unit (`ms`, `s`, `m`, `h`, `d`, `w`).
 * @pattern ^[0-9]{1,9}(ms|s|m|h|d|w)$
 * @example "30s"
 */
export type Duration = string;

/**
 * A size in bytes with an optional unit (`k`, `m`, `g`, case-insensitive).
 * @pattern ^[0-9]{1,9}[kKmMgG]?$
 * @example "10g"
 */
export type Size = string;

/**
 * An HTTP header name (RFC 9110 token).
 * @pattern ^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$
 * @example "X-Served-By"
 */
export type HeaderName = string;

/**
 * A cookie name (RFC 6265 token).
 * @pattern ^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$
 * @example "session"
 */
export type CookieName = string;

/**
 * A URL path starting with `/`, without spaces, quotes, braces, `;` or `$`.
 * @pattern ^/[A-Za-z0-9/._~!&'()*+,=:@%-]{0,255}$
 * @example "/health"
 */
export type UrlPath = string;

/**
 * A host name, optionally with a leading `*.` wildcard.
 * @pattern ^(\*\.)?[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63}){0,20}$
 * @example "shop.example.com"
 */
export type ServerName = string;

/**
 * An IPv4 or IPv6 address or CIDR block.
 * @pattern ^[0-9a-fA-F:.]{2,39}(/[0-9]{1,3})?$
 * @example "10.0.0.0/8"
 */
export type Cidr = string;

/**
 * A TCP port.
 * @minimum 1
 * @maximum 65535
 * @asType integer
 */
export type Port = number;

/** Where the edge listens. */
export interface Listen {
  /**
   * Plain HTTP port.
   * @default 80
   * @example 8080
   */
  http?: Port;
  /**
   * Address to bind. Omit to listen on every interface.
   * @example "127.0.0.1"
   * @pattern ^(\[[0-9a-fA-F:.]+\]|[0-9.]{7,15}|\*)$
   */
  address?: string;
}

/** One server of an origin pool. */
export interface OriginServer {
  /**
   * `host:port` of the server (an IPv4/IPv6 address or a DNS name resolved when nginx starts).
   * @pattern ^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]{1,253}):[0-9]{1,5}$
   * @example "127.0.0.1:3000"
   */
  address: string;
  /**
   * Relative share of requests among the non-backup servers.
   * @default 1
   * @minimum 1
   * @maximum 1000
   * @asType integer
   */
  weight?: number;
  /**
   * Only used when every non-backup server is down.
   * @default false
   */
  backup?: boolean;
  /**
   * Failed attempts within `failTimeout` after which the server is considered down for `failTimeout`.
   * @default 1
   * @minimum 0
   * @maximum 100
   * @asType integer
   */
  maxFails?: number;
  /**
   * Window for `maxFails` and how long a failed server is left out.
   * @default "10s"
   */
  failTimeout?: Duration;
}

/** A named pool of origin servers (an nginx upstream). */
export interface Origin {
  /**
   * The servers of the pool; at least one must not be a backup.
   * @minItems 1
   */
  servers: OriginServer[];
  /**
   * Protocol used to talk to the origin.
   * @default "http"
   */
  scheme?: "http" | "https";
  /**
   * Host header sent to the origin. Omit to forward the client's Host.
   * @pattern ^[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$
   * @example "app.internal"
   */
  hostHeader?: string;
  /**
   * Idle keepalive connections kept open to the pool by each worker (0 disables keepalive).
   * @default 32
   * @minimum 0
   * @maximum 100000
   * @asType integer
   */
  keepalive?: number;
  /**
   * Time allowed to open a connection to one server.
   * @default "5s"
   */
  connectTimeout?: Duration;
  /**
   * Time allowed between two reads from the origin.
   * @default "60s"
   */
  readTimeout?: Duration;
  /**
   * Time allowed between two writes to the origin.
   * @default "60s"
   */
  sendTimeout?: Duration;
  /**
   * How many times a request is retried on the next server after an error, a timeout or a 502/503/504
   * (only for idempotent methods).
   * @default 1
   * @minimum 0
   * @maximum 10
   * @asType integer
   */
  retries?: number;
}

/** The on-disk cache tier (an nginx proxy_cache zone). */
export interface DiskCache {
  /**
   * Maximum size of the cache on disk.
   * @default "1g"
   */
  size?: Size;
  /**
   * Shared memory for the keys (1m holds about 8,000 keys).
   * @default "10m"
   */
  keysZone?: Size;
  /**
   * Objects not requested for this long are removed, fresh or not. It also bounds how long a stale
   * object can be served.
   * @default "7d"
   */
  inactive?: Duration;
  /**
   * Cache directory. Relative paths are relative to the bundle (the nginx prefix).
   * @default "cache/disk"
   * @pattern ^[A-Za-z0-9/._-]{1,255}$
   */
  path?: string;
}

/** An allow-list of query parameters kept in the cache key. */
export interface QueryAllowList {
  /**
   * Parameter names kept in the cache key (sorted); every other parameter is ignored for caching.
   * @minItems 1
   */
  allow: string[];
}

/** How the cache key is built. */
export interface CacheKey {
  /**
   * Which query parameters are part of the key: `all` (sorted), `none`, or an allow-list.
   * @default "all"
   */
  query?: "all" | "none" | QueryAllowList;
  /**
   * Include the request Host in the key (turn off when several hostnames serve the same content).
   * @default true
   */
  host?: boolean;
}

/** Requests that skip the cache (neither served from it nor stored in it). */
export interface CacheBypass {
  /**
   * Requests carrying any of these cookies bypass the cache.
   * @example ["session"]
   */
  cookies?: CookieName[];
  /**
   * Requests carrying any of these request headers bypass the cache. `Authorization` always bypasses,
   * unless `authorization` is set to false.
   * @example ["x-preview"]
   */
  headers?: HeaderName[];
  /**
   * Requests with an `Authorization` header bypass the shared cache.
   * @default true
   */
  authorization?: boolean;
}

/** Request coalescing: one origin fetch per cold key, the others wait for it. */
export interface CacheLock {
  /**
   * How long a request waits for the fetch already under way before going to the origin itself.
   * @default "5s"
   */
  timeout?: Duration;
  /**
   * After this long, one more request may go to the origin for the same key.
   * @default "5s"
   */
  age?: Duration;
}

/**
 * TTL per response status, used when the origin sends no caching headers (`Cache-Control` or `Expires`).
 * Keys are status codes (`"200"`, `"404"`, ...) or `"any"`.
 * @example { "200": "1h", "301": "10m", "404": "30s" }
 */
export type CacheTtl = { [status: string]: Duration };

/** The shared cache. */
export interface Cache {
  /** The disk tier. */
  disk?: DiskCache;
  /** Cache key design. */
  key?: CacheKey;
  /**
   * Default TTL per status when the origin does not say. An origin `Cache-Control` (`s-maxage` over
   * `max-age`) or `Expires` always wins, and `private`, `no-store`, `no-cache` and `Set-Cookie` responses
   * are never stored.
   * @default { "200": "10m", "301": "10m", "302": "10m" }
   */
  ttl?: CacheTtl;
  /** Requests that skip the cache. */
  bypass?: CacheBypass;
  /**
   * Serve a stale object when the origin errors, times out or answers 500/502/503/504.
   * @example "1d"
   */
  staleIfError?: Duration;
  /**
   * Serve a stale object while one background request refreshes it.
   * @example "60s"
   */
  staleWhileRevalidate?: Duration;
  /**
   * Request coalescing; `false` turns it off.
   * @default { "timeout": "5s", "age": "5s" }
   */
  lock?: CacheLock | false;
  /**
   * Revalidate expired objects with `If-None-Match` / `If-Modified-Since`.
   * @default true
   */
  revalidate?: boolean;
}

/** A set of header changes. */
export interface HeaderRules {
  /**
   * Headers to set (replacing any existing value). Values are sent as written: no variables.
   * @example { "X-Served-By": "edge" }
   */
  set?: { [name: string]: string };
  /**
   * Headers to remove.
   * @example ["Server", "X-Powered-By"]
   */
  remove?: HeaderName[];
}

/** Header changes, applied to every response, error pages included. */
export interface Headers {
  /** Changes to the response sent to the client. */
  response?: HeaderRules;
  /** Changes to the request sent to the origin. */
  request?: HeaderRules;
  /**
   * Response header that carries the cache status (HIT, MISS, EXPIRED, STALE, UPDATING, REVALIDATED,
   * BYPASS); `false` to leave it out.
   * @default "X-Cache"
   */
  cacheStatus?: HeaderName | false;
}

/** A health endpoint answered by the edge itself. */
export interface Health {
  /**
   * Path of the endpoint.
   * @default "/health"
   */
  path?: UrlPath;
}

/** The access log. */
export interface AccessLog {
  /**
   * `json`: one JSON object per line with cache status and timings; `combined`: nginx's classic format;
   * `off`: no access log.
   * @default "json"
   */
  format?: "json" | "combined" | "off";
  /**
   * Log file. Relative paths are relative to the bundle.
   * @default "logs/access.log"
   * @pattern ^[A-Za-z0-9/._-]{1,255}$
   */
  path?: string;
}

/** The purge endpoint. */
export interface Purge {
  /**
   * Path of the endpoint.
   * @default "/__purge"
   */
  path?: UrlPath;
  /**
   * Client addresses (CIDR) allowed to call it.
   * @default ["127.0.0.1/32", "::1/128"]
   */
  allow?: Cidr[];
}

/** nginx process settings. */
export interface Workers {
  /**
   * Worker processes, or `auto` for one per core.
   * @default "auto"
   */
  processes?: number | "auto";
  /**
   * Connections per worker.
   * @default 4096
   * @minimum 16
   * @maximum 1000000
   * @asType integer
   */
  connections?: number;
  /**
   * Unix user the workers run as when the master runs as root. Omit to use nginx's default.
   * @pattern ^[a-z_][a-z0-9_-]{0,31}$
   * @example "www-data"
   */
  user?: string;
}

/** An edge policy: everything cdn-build compiles into an nginx/OpenResty bundle. */
export interface Policy {
  /**
   * Name of the policy (used for the bundle and in logs).
   * @pattern ^[a-z0-9][a-z0-9-]{0,62}$
   * @example "shop"
   */
  name: string;
  /** Where the edge listens. */
  listen?: Listen;
  /**
   * Host names this edge answers for. Omit to answer for any host.
   * @example ["shop.example.com"]
   */
  serverNames?: ServerName[];
  /** Named origin pools. */
  origins: { [name: string]: Origin };
  /**
   * The origin pool requests go to. May be omitted when there is exactly one origin.
   * @example "app"
   */
  defaultOrigin?: string;
  /** The shared cache. Omit to proxy without caching. */
  cache?: Cache;
  /** Header changes. */
  headers?: Headers;
  /** Health endpoint. */
  health?: Health;
  /** Access log. */
  accessLog?: AccessLog;
  /** Purge endpoint. */
  purge?: Purge;
  /** nginx process settings. */
  workers?: Workers;
}
