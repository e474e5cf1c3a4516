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
 * A size in bytes with an optional unit (`k`, `m`, `g`, case-insensitive). Shared memory zones have a
 * maximum each (see the key), because nginx maps them whole when it starts.
 * @pattern ^[0-9]{1,9}[kKmMgG]?$
 * @example "10g"
 */
export type Size = string;

/**
 * An HTTP header name: letters, digits and `-` (1 to 64). The one rule for every header name of a policy:
 * `_` is refused, because nginx drops client headers spelled with `_` while CGI/PHP, Django and Rack (and
 * nginx's own `$http_*` variables) read `X_User_Id` and `X-User-Id` as one header, so a name with `_` would
 * be checked or stripped under one spelling and reach the origin under the other.
 * @pattern ^[A-Za-z0-9-]{1,64}$
 * @example "X-Served-By"
 */
export type HeaderName = string;

/**
 * A header value set by the policy: at most 4096 characters, no control characters. Origins refuse
 * requests whose headers pass their limit (8 KiB in nginx and Apache, 16 KiB in Node.js), so one long
 * value would break every proxied request.
 * @maxLength 4096
 */
export type HeaderValue = string;

/**
 * A header value computed for each request, or read from the environment when nginx starts. In a TypeScript
 * policy write it with `value.clientIp()`, `value.requestId()`, `value.country()`, `value.arg("w")`,
 * `value.cookie("ab")`, `value.header("X-Device")` or `env("ORIGIN_TOKEN")`; in YAML/JSON as the object
 * (`{ arg: w }`). A value read from the request is URL-decoded (query arguments) and cleaned of control
 * characters; when it is empty or missing no header is set, and a request header of that name the client
 * sent is removed (it must not pass for the edge's). An environment variable is read once at start, never
 * written into the bundle (a secret for the origin: `"X-Origin-Token": env("ORIGIN_TOKEN")`).
 */
export type ComputedValue =
  | { /** The client address (`clientAddress`: behind trusted proxies). */ clientIp: true }
  | { /** The request id (`requestId`). */ requestId: true }
  | { /** The client's country (the `country` condition's source; `true`: its default header). */ country: true | CountrySource }
  | { /** A query parameter of the request, URL-decoded. */ arg: ArgName }
  | { /** A cookie of the request. */ cookie: CookieName }
  | { /** A header of the request. */ header: HeaderName }
  | EnvRef;

/**
 * The name of a query parameter a header value is read from.
 * @pattern ^[A-Za-z0-9_.-]{1,64}$
 * @example "width"
 */
export type ArgName = string;

/** A header value a policy sets: a fixed string, or computed per request (see `ComputedValue`). */
export type HeaderSetValue = HeaderValue | ComputedValue;

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

/**
 * The name of an origin pool (a key of `origins`).
 * @maxLength 128
 * @example "app"
 */
export type PoolName = string;

/**
 * A query parameter name.
 * @maxLength 128
 * @example "page"
 */
export type QueryParamName = string;

/**
 * A regular expression written in the policy (the dialect of docs/patterns.md). The schema's bound is loose:
 * the build refuses patterns over 1,024 characters with a diagnostic of its own (docs/patterns.md).
 * @maxLength 4096
 */
export type RegexText = string;

/**
 * A string a JWT claim is compared with (an issuer, an audience).
 * @maxLength 1024
 * @example "https://auth.example.com/"
 */
export type ClaimText = string;

/** Where the edge listens. */
export interface Listen {
  /**
   * Plain HTTP port.
   * @default 80
   * @example 8080
   */
  http?: Port;
  /**
   * Address to bind: an IPv4 address, an IPv6 address in brackets, or `*`. Omit to listen on every interface.
   * @example "127.0.0.1"
   * @pattern ^(\[[0-9a-fA-F:.]{2,45}\]|[0-9.]{7,15}|\*)$
   */
  address?: string;
  /**
   * A TLS listener (HTTPS and HTTP/2) next to the plain one. Needs `tls` (the certificates); with it, plain
   * HTTP requests are redirected to HTTPS unless `tls.redirectHttp` is `false`.
   * @example { "port": 443 }
   */
  https?: HttpsListen;
}

/** The TLS listener. */
export interface HttpsListen {
  /**
   * TLS port.
   * @default 443
   * @example 8443
   */
  port?: Port;
  /**
   * Address to bind, as for `listen.address` (which it defaults to).
   * @example "127.0.0.1"
   * @pattern ^(\[[0-9a-fA-F:.]{2,45}\]|[0-9.]{7,15}|\*)$
   */
  address?: string;
  /**
   * Offer HTTP/2 to clients (ALPN `h2`); HTTP/1.1 is always offered.
   * @default true
   */
  http2?: boolean;
}

/**
 * An absolute path on the edge host (letters, digits and `/._+@=,~-`: it is written into nginx.conf).
 * @pattern ^/[A-Za-z0-9/._+@=,~-]{1,1023}$
 * @example "/etc/edge/tls/shop.example.com.pem"
 */
export type AbsolutePath = string;

/**
 * A certificate and its private key. Paths given literally are read at build time and checked (readable,
 * the key matches, not expired, covers a server name); paths from `env("NAME")` are resolved when nginx
 * starts and can only be checked then.
 */
export interface TlsCertificate {
  /**
   * PEM file with the certificate first, then the intermediate certificates (the chain the edge sends;
   * not the root).
   * @example "/etc/edge/tls/shop.example.com.fullchain.pem"
   */
  certificate: AbsolutePath | EnvRef;
  /**
   * PEM file with the certificate's private key (unencrypted; readable by the user that starts nginx,
   * usually root: the workers never read it).
   * @example "/etc/edge/tls/shop.example.com.key"
   */
  key: AbsolutePath | EnvRef;
  /**
   * The names of `serverNames` this certificate is presented for (chosen by the client's SNI). Omit to use
   * the names the certificate covers (from its subject alternative names); required for `env()` paths
   * when there are several certificates.
   * @example ["shop.example.com", "www.example.com"]
   */
  serverNames?: ServerName[];
}

/** HTTP Strict Transport Security: browsers remember to use HTTPS only for this host. */
export interface Hsts {
  /**
   * How long browsers remember it (`max-age`). Start small while testing: a browser that saw it keeps
   * refusing plain HTTP for this long.
   * @default "365d"
   * @example "1h"
   */
  maxAge?: Duration;
  /**
   * Also every subdomain of the host (`includeSubDomains`).
   * @default false
   */
  includeSubDomains?: boolean;
  /**
   * Ask to be put on the browsers' preload list (`preload`); the list requires `includeSubDomains` and a
   * max-age of at least a year.
   * @default false
   */
  preload?: boolean;
}

/** Session resumption: a returning client skips the full handshake. */
export interface TlsSessions {
  /**
   * Size of the session cache shared by the workers (1m holds about 4,000 sessions); `"0"` turns it off.
   * @default "10m"
   */
  cacheSize?: Size;
  /**
   * How long a session can be resumed (cache and tickets).
   * @default "1h"
   */
  timeout?: Duration;
  /**
   * Session tickets: `false` turns them off; omitted, on with a key nginx makes at start (each node and
   * each restart has its own, so a ticket only resumes on the node and run that issued it). With key files
   * (80 random bytes each, e.g. `openssl rand 80 > ticket.key`), every node sharing the files resumes the
   * others' tickets: the first file encrypts, all decrypt. Rotate by prepending a new key and dropping the
   * last (see docs/tls.md#ticket-keys).
   * @default true
   * @example ["/etc/edge/tls/ticket.current.key", "/etc/edge/tls/ticket.previous.key"]
   */
  tickets?: boolean | AbsolutePath[];
}

/**
 * A DNS resolver's address: IPv4, or IPv6 in brackets.
 * @pattern ^(\[[0-9a-fA-F:.]{2,45}\]|[0-9.]{7,15})$
 * @example "1.1.1.1"
 */
export type ResolverAddress = string;

/** OCSP stapling: the edge fetches its certificate's revocation status and sends it in the handshake. */
export interface OcspStapling {
  /**
   * DNS resolvers nginx uses to reach the certificate authority's OCSP responder (IP addresses).
   * @minItems 1
   * @maxItems 8
   * @example ["1.1.1.1", "8.8.8.8"]
   */
  resolvers: ResolverAddress[];
  /**
   * Verify the OCSP responses against this CA file (the certificate's issuer and root). Omit to send them
   * unverified.
   * @example "/etc/edge/tls/ca-chain.pem"
   */
  verifyWith?: AbsolutePath;
}

/** TLS for clients: certificates, protocols, sessions, HSTS and the HTTP redirect. */
export interface Tls {
  /**
   * The certificates. With several, each serves its names (by SNI) and the first is the default.
   * @minItems 1
   * @maxItems 64
   */
  certificates: TlsCertificate[];
  /**
   * TLS versions accepted. TLS 1.0 and 1.1 are never offered.
   * @default ["TLSv1.2", "TLSv1.3"]
   * @uniqueItems true
   * @minItems 1
   */
  protocols?: ("TLSv1.2" | "TLSv1.3")[];
  /**
   * TLS 1.2 cipher suites (OpenSSL names, `:`-separated). The default allows only forward-secret AEAD
   * suites (ECDHE with AES-GCM or ChaCha20-Poly1305); TLS 1.3 suites are always OpenSSL's.
   * @pattern ^[A-Za-z0-9_+!@=:-]{1,2048}$
   * @example "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"
   */
  ciphers?: string;
  /** Session cache and tickets. */
  sessions?: TlsSessions;
  /** OCSP stapling (off when omitted). */
  ocspStapling?: OcspStapling;
  /** Send `Strict-Transport-Security` on HTTPS responses (off when omitted). */
  hsts?: Hsts;
  /**
   * What the plain HTTP listener does with a request: redirect it to the same host, path and query over
   * HTTPS with this status (308 keeps the method and body; 301 is what old clients know), or `false` to
   * serve it over HTTP too. The health and purge endpoints answer over HTTP either way.
   * @default 308
   */
  redirectHttp?: 301 | 308 | false;
}

/** TLS from the edge to an HTTPS origin (`scheme: "https"`). The origin's certificate is verified by default. */
export interface OriginTls {
  /**
   * CA certificates (PEM) the origin's certificate must chain to.
   * @default "/etc/ssl/certs/ca-certificates.crt"
   * @example "/etc/edge/tls/internal-ca.pem"
   */
  trustedCa?: AbsolutePath;
  /**
   * Name sent as SNI and checked against the origin's certificate. Omit to use `hostHeader`, else the
   * servers' DNS name when they all have the same one, else the client's host.
   * @pattern ^[A-Za-z0-9.-]{1,253}$
   * @example "app.internal"
   */
  serverName?: string;
  /**
   * How many intermediate certificates may sit between the origin's certificate and a trusted CA.
   * @default 3
   * @minimum 1
   * @maximum 10
   * @asType integer
   */
  verifyDepth?: number;
  /**
   * Client certificate (PEM) the edge presents when the origin requires one (mutual TLS), with `clientKey`.
   * @example "/etc/edge/tls/edge-client.pem"
   */
  clientCertificate?: AbsolutePath;
  /**
   * Private key of `clientCertificate`.
   * @example "/etc/edge/tls/edge-client.key"
   */
  clientKey?: AbsolutePath;
  /**
   * Accept any certificate from the origin, without checking who signed it or its name. Anyone on the path
   * to the origin can then read and change the traffic; raises a warning on every build.
   * @default false
   */
  insecureSkipVerify?: boolean;
}

/** One server of an origin pool. */
export interface OriginServer {
  /**
   * `host:port` of the server: an IPv4 address, an IPv6 address in brackets, or a DNS name (resolved when
   * nginx starts, so `nginx -t` fails on a name the machine cannot resolve), and a port from 1 to 65535.
   * @pattern ^(\[[0-9a-fA-F:.]{2,45}\]|[A-Za-z0-9.-]{1,253}):[0-9]{1,5}$
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
   * Failed attempts within `failTimeout` after which this server is left out for `failTimeout`
   * (0: never left out). Overrides the pool's `maxFails`.
   * @default 3
   * @minimum 0
   * @maximum 100
   * @asType integer
   */
  maxFails?: number;
  /**
   * Window for `maxFails`, and how long this server is left out once it failed that often. Overrides the
   * pool's `failTimeout`.
   * @default "10s"
   */
  failTimeout?: Duration;
}

/**
 * What passes a request to the next server of its pool: `"error"` (the connection could not be opened, or
 * failed while sending the request or reading the response header: refused, reset, closed early),
 * `"timeout"` (`connectTimeout`, `sendTimeout` or `readTimeout` ran out before the response header),
 * `"invalidHeader"` (the response header was empty, malformed or too big), or one of the statuses 500,
 * 502, 503, 504, 429, 403, 404 answered by the server.
 */
export type RetryCondition = "error" | "timeout" | "invalidHeader" | 500 | 502 | 503 | 504 | 429 | 403 | 404;

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
   * The origin matches paths without regard to case (IIS, or files on a Windows or macOS file system):
   * `/Admin` and `/admin` are one resource there. The access gates' `paths` / `exceptPaths` then match
   * case-insensitively (and read a Windows path's `file.zip.`, `file.zip ` and `file.zip::$DATA` as
   * `file.zip`), so another spelling cannot reach a gated path ungated. Applies to every gate when any pool
   * sets it.
   * @default false
   */
  caseInsensitivePaths?: boolean;
  /**
   * Host header sent to the origin. Omit to forward the client's Host.
   * @pattern ^[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$
   * @example "app.internal"
   */
  hostHeader?: string;
  /** TLS to the origin (with `scheme: "https"`): certificate verification, SNI name, client certificate. */
  tls?: OriginTls;
  /**
   * Idle keepalive connections kept open to the pool by each worker (0 disables keepalive).
   * @default 32
   * @minimum 0
   * @maximum 100000
   * @asType integer
   */
  keepalive?: number;
  /**
   * How long an idle keepalive connection to the pool is kept. Keep it below the origin's own idle timeout
   * (Node.js, Apache, uvicorn: 5 s; gunicorn: 2 s), so the edge closes an idle connection before the origin
   * does and never reuses one the origin is closing at that moment.
   * @default "4s"
   * @example "50s"
   */
  keepaliveTimeout?: Duration;
  /**
   * Requests sent over one keepalive connection before the edge closes it.
   * @default 1000
   * @minimum 1
   * @maximum 1000000
   * @asType integer
   */
  keepaliveRequests?: number;
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
   * How many times a request is passed to the next server (on one of `retryOn`) after the first
   * attempt. Each server is tried at most once per request, so a pool of N servers allows at most N - 1
   * retries; POST, PATCH and LOCK requests are never passed on once they were sent. (An attempt that fails
   * on a reused keepalive connection is not counted by nginx: see "How many attempts one request can make"
   * in docs/origins.md.)
   * @default 1
   * @minimum 0
   * @maximum 10
   * @asType integer
   */
  retries?: number;
  /**
   * What passes a request to the next server (an empty list: never). nginx counts every status listed
   * here, like every error and timeout, as a failed attempt against `maxFails`: a live origin answering
   * 503 for one second would take its servers out for `failTimeout`. So by default a status answered
   * by a server goes to the client, and only connection errors and timeouts are retried.
   * @default ["error", "timeout"]
   * @example ["error", "timeout", 502, 504]
   * @uniqueItems true
   */
  retryOn?: RetryCondition[];
  /**
   * No further server is tried once this much time has passed since the first attempt started (`"0s"`: no
   * limit). Bounds how long one request can spend going from server to server.
   * @default "10s"
   * @example "3s"
   */
  retryTimeout?: Duration;
  /**
   * Failed attempts (connection errors, timeouts, invalid headers and the statuses of `retryOn`) within
   * `failTimeout` after which a server is left out for `failTimeout` (0: servers are never left out).
   * Applies to every server of the pool that does not set its own. A pool of a single server never leaves
   * it out.
   * @default 3
   * @minimum 0
   * @maximum 100
   * @asType integer
   */
  maxFails?: number;
  /**
   * Window for `maxFails`, and how long a server is left out once it failed that often, for every server
   * of the pool that does not set its own.
   * @default "10s"
   */
  failTimeout?: Duration;
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
  /**
   * Folder of the cache state that must outlive restarts and redeploys: the journal of purge and
   * invalidation markers (and the fleet fan-out's stream position). The master creates it and gives it to
   * the workers' user. Relative paths are relative to the bundle.
   * @default "cache/state"
   * @pattern ^[A-Za-z0-9/._-]{1,255}$
   */
  statePath?: string;
  /**
   * Shared memory for the purge and invalidation markers (about 100 bytes each; expired ones are
   * reclaimed, and a marker for a key is dropped once the key is stored again). When it is full, a purge
   * falls back to purging everything, and says so.
   * @default "16m"
   */
  markersSize?: Size;
}

/** An allow-list of query parameters kept in the cache key. */
export interface QueryAllowList {
  /**
   * Parameter names kept in the cache key (sorted); every other parameter is ignored for caching.
   * @minItems 1
   */
  allow: QueryParamName[];
}

/** How the cache key is built. */
export interface CacheKey {
  /**
   * Which query parameters are part of the key: `all` (sorted), `none`, or an allow-list.
   * @default "all"
   */
  query?: "all" | "none" | QueryAllowList;
  /**
   * Include the request Host in the key. `false` is only accepted when the edge answers for exactly one
   * host (one `serverNames` entry, no wildcard): with several hosts, or any host, a request with another
   * `Host` would store an object under the shared key.
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
 * @propertyNames { "maxLength": 8 }
 * @example { "200": "1h", "301": "10m", "404": "30s" }
 */
export type CacheTtl = { [status: string]: Duration };

/** How the edge takes part in `Surrogate-Control`. */
export interface SurrogateControl {
  /**
   * The edge's device token: what `Surrogate-Capability` announces and what targeted directives name.
   * @default the policy's name
   * @pattern ^[A-Za-z0-9._-]{1,64}$
   * @example "edge"
   */
  token?: string;
}

/** The shared cache. */
export interface Cache {
  /** The disk tier. */
  disk?: DiskCache;
  /** Cache key design. */
  key?: CacheKey;
  /**
   * TTL per status for responses that carry no freshness of their own (an explicit opt-in: without it,
   * such responses get RFC 9111 heuristic freshness, see `heuristic`). An origin `CDN-Cache-Control` or
   * `Cache-Control` (`s-maxage` over `max-age`) or `Expires` (relative to `Date`) always wins; `private`,
   * `no-store` and `Set-Cookie` responses are never stored, `no-cache` ones only to be revalidated on every
   * use. `{}` (the default) sets none.
   * @default {}
   * @example { "200": "10m", "301": "1h", "404": "30s" }
   */
  ttl?: CacheTtl;
  /**
   * Heuristic freshness (RFC 9111 4.2.2) for a response without explicit freshness and without a `ttl`
   * entry for its status: a fraction of the time since its `Last-Modified`, capped; only for the statuses
   * the RFC calls heuristically cacheable (200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501).
   * Without `Last-Modified` such a response is fresh for no time at all: it is kept only when it has a
   * validator, and revalidated on every use. `false` turns heuristics off.
   * @default { "fraction": 0.1, "max": "1d" }
   */
  heuristic?: HeuristicFreshness | false;
  /**
   * Whether the client's own `Cache-Control` request directives (`no-cache`, `max-age`, `min-fresh`,
   * `max-stale`, `no-store`, `only-if-cached`, and `Pragma: no-cache`) are honoured (RFC 9111 5.2.1), or
   * ignored, as many CDNs do so that clients cannot force origin fetches.
   * @default "honour"
   */
  clientDirectives?: "honour" | "ignore";
  /**
   * Store responses that carry `Set-Cookie` (RFC 9111 allows it; most shared caches do not). When on, the
   * `Set-Cookie` header goes only to the client whose request fetched the object, never with a hit.
   * @default false
   */
  storeSetCookie?: boolean;
  /**
   * `Surrogate-Control` from the origin (W3C Edge Architecture 1.0): its `max-age` (`max-age=N+M` adds M
   * seconds of stale-if-error) and `no-store` / `no-store-remote` directives, untargeted or targeted at this
   * edge (`max-age=600;<token>`), take the place of `Cache-Control` and `Expires` for this cache; a valid
   * `CDN-Cache-Control` still comes first, and directives targeted at another token are ignored. Requests to
   * the origin carry `Surrogate-Capability: <token>="Surrogate/1.0"` (a client's own is not passed on), and
   * `Surrogate-Control` is removed from responses, except for a request that carries `Surrogate-Capability`
   * (a CDN in front of this edge, which applies the directives for its own tier). `false` ignores the header
   * (it then reaches clients).
   * @default { "token": "<the policy's name>" }
   */
  surrogateControl?: false | SurrogateControl;
  /** Requests that skip the cache. */
  bypass?: CacheBypass;
  /**
   * Serve a stale object when the origin errors, times out or answers 5xx, for this long after it went
   * stale. The origin's `stale-if-error` wins; never with `must-revalidate`, `proxy-revalidate`,
   * `s-maxage` or `no-cache`.
   * @example "1d"
   */
  staleIfError?: Duration;
  /**
   * Serve a stale object while one background request refreshes it, for this long after it went stale.
   * The origin's `stale-while-revalidate` wins; never with `must-revalidate`, `proxy-revalidate`,
   * `s-maxage` or `no-cache`.
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
  /**
   * The RAM hot tier: small objects requested often are kept in shared memory and served from there
   * before the disk cache is consulted, with the same semantics (freshness, `Age`, conditional requests,
   * Vary variants, stale-while-revalidate). The cache status header says `HIT-RAM` / `STALE-RAM`.
   * @example { "size": "256m", "maxObjectSize": "64k", "minHits": 2 }
   */
  ram?: RamCache;
}

/** Heuristic freshness (RFC 9111 4.2.2). */
export interface HeuristicFreshness {
  /**
   * The fraction of the time since `Last-Modified` an object is considered fresh.
   * @default 0.1
   * @minimum 0
   * @maximum 1
   */
  fraction?: number;
  /**
   * The longest heuristic lifetime.
   * @default "1d"
   */
  max?: Duration;
}

/** The RAM hot tier (a lua_shared_dict, least recently used objects evicted first). */
export interface RamCache {
  /**
   * Shared memory for the RAM tier (objects, headers and their variants).
   * @default "64m"
   */
  size?: Size;
  /**
   * Objects larger than this (body bytes) are never kept in RAM; they stay on disk.
   * @default "64k"
   */
  maxObjectSize?: Size;
  /**
   * An object enters the RAM tier on this many-th hit from the disk tier.
   * @default 2
   * @minimum 1
   * @maximum 1000
   * @asType integer
   */
  minHits?: number;
}

/** A set of header changes. */
export interface HeaderRules {
  /**
   * Headers to set (replacing any existing value). A value is a fixed string (`HeaderValue`, at most 4096
   * characters, sent as written) or computed per request (`ComputedValue`: the client address, the request
   * id, the country, a query parameter, a cookie, a request header, or `env()`). Names follow `HeaderName`
   * (letters, digits and `-`); at most 64 headers.
   * @example { "X-Served-By": "edge" }
   * @propertyNames { "pattern": "^[A-Za-z0-9-]{1,64}$" }
   * @maxProperties 64
   */
  set?: { [name: string]: HeaderSetValue };
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
   * Response header that carries the cache status (HIT, HIT-RAM, STALE-RAM, MISS, EXPIRED, STALE,
   * REVALIDATED, BYPASS); `false` to leave it out.
   * @default "X-Cache"
   */
  cacheStatus?: HeaderName | false;
  /**
   * Forwarding and override headers a client may send on to the origin. By default the edge removes them
   * all from every request before it goes to the origin (`X-Forwarded-Host`, `X-Host`,
   * `X-Forwarded-Server`, `X-Original-Host`, `X-HTTP-Host-Override`, `Forwarded`, `X-Forwarded-Scheme`,
   * `X-Forwarded-Port`, `X-Forwarded-Ssl`, `X-Forwarded-Protocol`, `X-Url-Scheme`, `Front-End-Https`,
   * `X-Original-URL`, `X-Rewrite-URL`, `X-Forwarded-Prefix`, `X-Forwarded-Path`, `X-Forwarded-Uri`,
   * `X-Original-URI`, `X-Envoy-Original-Path`, `X-HTTP-Method-Override`, `X-HTTP-Method`,
   * `X-Method-Override`, `X-Original-Method`): origins build links, redirects and routes from them, and
   * they are not part of the cache key, so one client's value would be cached and served to everyone.
   * A header listed here reaches the origin as the client sent it; with a cache, its value then joins the
   * cache key (`cache: "key"`) or requests carrying it bypass the cache (`cache: "bypass"`). A header the
   * policy sets itself (`request.set`) is the policy's value, not the client's, and needs no entry.
   * @example [{ "header": "X-Forwarded-Prefix", "cache": "key" }]
   * @maxItems 23
   */
  allowOverrides?: OverrideAllow[];
}

/** A forwarding or override header let through to the origin (see `Headers.allowOverrides`). */
export interface OverrideAllow {
  /** One of the headers the edge removes by default. */
  header: HeaderName;
  /**
   * With a cache: `key` puts the header's value into the cache key (each value has its own objects);
   * `bypass` sends requests carrying the header past the cache (neither served from it nor stored).
   * @default "key"
   */
  cache?: "key" | "bypass";
}

/** A health endpoint answered by the edge itself. */
export interface Health {
  /**
   * Path of the endpoint.
   * @default "/health"
   */
  path?: UrlPath;
}

/**
 * Prometheus metrics and the stats API, answered by the edge itself (never proxied, never cached, never
 * counted). Counters and histograms live in a shared dict (`cdn_metrics`) updated in the log phase; labels
 * are bounded (cache status, status class, origin pool, and a host only when it is one of `serverNames`).
 * See docs/metrics.md for every metric.
 * @example { "allow": ["127.0.0.1/32", "10.0.0.0/8"] }
 */
export interface Metrics {
  /**
   * Path of the Prometheus endpoint (text exposition format 0.0.4).
   * @default "/metrics"
   */
  path?: UrlPath;
  /**
   * Path of the JSON stats endpoint (hit ratio, totals, per-minute series of the last hour, p50/p99
   * latencies, error rates), read by `cdn-build stats`.
   * @default "/__stats"
   */
  statsPath?: UrlPath;
  /**
   * Client addresses (CIDR) allowed to read both endpoints; every other client gets `403`. Matched against
   * the peer address (the scraper connects to the node directly).
   * @default ["127.0.0.1/32", "::1/128"]
   * @example ["127.0.0.1/32", "10.0.0.0/8"]
   */
  allow?: Cidr[];
  /**
   * Size of the `cdn_metrics` shared dict (the series, and 60 per-minute snapshots). Label cardinality is
   * bounded, so the default holds thousands of series.
   * @default "4m"
   * @example "8m"
   */
  size?: Size;
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
  /**
   * Also send every line to a syslog server (UDP), in the same format. The file is still written.
   * @example { "server": "127.0.0.1:514", "tag": "edge_access" }
   */
  syslog?: AccessLogSyslog;
}

/** Syslog output of the access log (nginx's `access_log syslog:`). */
export interface AccessLogSyslog {
  /**
   * The server: an IPv4 address, `[ipv6]` or `localhost`, with an optional `:port` (UDP, 514 by default),
   * or `unix:/path` (a socket). Addresses only: nginx resolves a host name when it loads the configuration,
   * so a name that does not resolve would stop nginx from starting.
   * @pattern ^(unix:/[A-Za-z0-9/._-]{1,200}|(localhost|[0-9]{1,3}(\.[0-9]{1,3}){3}|\[[0-9A-Fa-f:.]{2,45}\])(:[0-9]{1,5})?)$
   * @example "127.0.0.1:514"
   */
  server: string;
  /**
   * Syslog facility.
   * @default "local7"
   */
  facility?: "kern" | "user" | "mail" | "daemon" | "auth" | "intern" | "lpr" | "news" | "uucp" | "clock" | "authpriv" | "ftp" | "ntp" | "audit" | "alert" | "cron" | "local0" | "local1" | "local2" | "local3" | "local4" | "local5" | "local6" | "local7";
  /**
   * Syslog tag (letters, digits and `_`, up to 32).
   * @default "nginx"
   * @pattern ^[A-Za-z0-9_]{1,32}$
   */
  tag?: string;
}

/** The purge endpoint. */
export interface Purge {
  /**
   * Path of the endpoint. Its near misses (the path in another case, or followed by `/`, `;`, `.`, a space or
   * any other character that cannot continue a name) are answered 404 by the edge, never proxied.
   * @default "/__purge"
   */
  path?: UrlPath;
  /**
   * Client addresses (CIDR) allowed to call it.
   * @default ["127.0.0.1/32", "::1/128"]
   */
  allow?: Cidr[];
  /**
   * A shared token: callers send `Authorization: Bearer <token>`. With neither `token` nor `hmac` every
   * purge request is refused (403). The token never reaches the origin: an `Authorization` carrying it is
   * removed from every proxied request.
   * @example { "env": "PURGE_TOKEN" }
   */
  token?: EnvRef;
  /**
   * HMAC-SHA256 signed requests: callers send `X-Purge-Timestamp` (Unix seconds), `X-Purge-Nonce` (8 to 64
   * of `A-Z a-z 0-9 _ -`, new for each request) and `X-Purge-Signature` (hex HMAC-SHA256 with this secret
   * of `METHOD\nREQUEST_URI\nTIMESTAMP\nNONCE\nBODY`). A signature is accepted once per fleet: with `redis`
   * it is recorded there, so a request one node accepted is refused by every other node (and refused with
   * 503 while Redis cannot be reached). Either a valid token or a valid signature is accepted when both are
   * configured.
   */
  hmac?: PurgeHmac;
  /**
   * Size of the purge index (`lua_shared_dict cdn_purge`): URL -> cache keys, tag -> cache keys, purge
   * markers. When it is full the least recently used entries are dropped (purge by exact URL still works
   * for keys computed from the URL alone).
   * @default "32m"
   */
  indexSize?: Size;
  /**
   * How long an index entry lives after the object was last stored. Default: the longer of
   * `cache.disk.inactive` and the longest TTL in `cache.ttl`.
   * @example "7d"
   */
  indexTtl?: Duration;
  /**
   * Most cache keys remembered per tag (objects stored beyond that are not purged by the tag).
   * @default 10000
   * @minimum 1
   * @maximum 1000000
   * @asType integer
   */
  maxKeysPerTag?: number;
  /**
   * Keep the origin's `Cache-Tag` / `Surrogate-Key` headers in responses to clients (they are removed by
   * default; the index still reads them).
   * @default false
   */
  exposeTags?: boolean;
  /**
   * Redis stream (key) of the fleet's purges, used when `redis` is configured: every node appends the purges
   * it receives, and every node with the same key applies them.
   * @default "cdn-build:purge:<policy name>"
   * @pattern ^[A-Za-z0-9:._-]{1,128}$
   */
  channel?: string;
}

/** HMAC-SHA256 request signing of the purge endpoint. */
export interface PurgeHmac {
  /** The signing secret, from the environment. */
  secret: EnvRef;
  /**
   * Largest accepted difference between `X-Purge-Timestamp` and the node's clock. A signature is also
   * accepted only once within this window, on the whole fleet with `redis` (replays get 403).
   * @default "60s"
   */
  maxSkew?: Duration;
}

/** nginx process settings. */
export interface Workers {
  /**
   * Worker processes (1 to 256), or `auto` for one per core. With a number, `processes × connections` is
   * at most 4,194,304: nginx allocates each worker's connection table when it starts (about 450 bytes a
   * connection).
   * @default "auto"
   */
  processes?: number | "auto";
  /**
   * Connections per worker (16 to 262,144). Each worker may open `2 × connections + 1024` files
   * (`worker_rlimit_nofile`), which must stay under the kernel's `fs.nr_open` (1,048,576 by default).
   * @default 4096
   * @minimum 16
   * @maximum 262144
   * @asType integer
   */
  connections?: number;
  /**
   * Unix user the workers run as when the master runs as root. Omit to use nginx's default.
   * @pattern ^[a-z_][a-z0-9_-]{0,31}$
   * @example "www-data"
   */
  user?: string;
  /**
   * Accept every pending connection at once when a worker wakes (`multi_accept`), rather than one per
   * wake-up: fewer wake-ups under connection storms, less even spread over the workers.
   * @default false
   */
  multiAccept?: boolean;
  /**
   * Open files per worker (`worker_rlimit_nofile`). Default: twice `connections` plus 1024 (a proxied
   * request holds two sockets and may hold a cache file).
   * @minimum 1024
   * @maximum 1048576
   * @asType integer
   */
  maxOpenFiles?: number;
}

/**
 * A request path match. A plain string is exact, unless it contains `*`: then it is a glob where `*` matches
 * any characters (including `/`), e.g. `/assets/*` or `/img/*.png`.
 * @example "/assets/*"
 * @pattern ^/[A-Za-z0-9/._~!&'()*+,=:@%-]{0,255}$
 */
export type PathPattern = string;

/**
 * Where an access gate applies; every gate's settings extend this. With neither key the gate applies to
 * every request (the health and purge endpoints are never gated). Patterns are `PathPattern`s: exact
 * paths, or globs where `*` matches anything.
 */
export interface GateScope {
  /**
   * The gate runs only for these paths.
   * @example ["/private/*", "/account"]
   */
  paths?: PathPattern[];
  /**
   * The gate never runs for these paths (checked after `paths`).
   * @example ["/private/public-*"]
   */
  exceptPaths?: PathPattern[];
}

/**
 * A value read from an environment variable of the nginx master when it starts (never written into the
 * bundle). In a TypeScript policy write `env("NAME")`; in YAML/JSON `{ env: NAME }`.
 * @example { "env": "EDGE_SECRET" }
 */
export interface EnvRef {
  /**
   * Name of the environment variable.
   * @pattern ^[A-Za-z_][A-Za-z0-9_]{0,127}$
   */
  env: string;
}

/** A JWT signature algorithm the `jwt` gate accepts. */
export type JwtAlgorithm = "HS256" | "HS384" | "HS512" | "RS256";

/**
 * An RSA public key in PEM (`-----BEGIN PUBLIC KEY-----`), from one of three places: inline in the policy
 * (`pem`, validated at build time and written into the bundle: a public key is not a secret), a file on the
 * edge host read when nginx starts (`file`, absolute or relative to the bundle directory), or an
 * environment variable of the nginx master (`env`).
 */
export type JwtPublicKey = { pem: PemText } | { file: FilePath } | EnvRef;

/**
 * A PEM block written in the policy.
 * @maxLength 16384
 */
export type PemText = string;

/**
 * A file path on the edge host (absolute, or relative to the bundle).
 * @maxLength 1024
 */
export type FilePath = string;

/**
 * The JWT gate: requests in scope must carry a valid JSON Web Token (`Authorization: Bearer <token>`, or the
 * cookie named by `cookie`). Anything else gets 401 with `WWW-Authenticate: Bearer`.
 */
export interface Jwt extends GateScope {
  /**
   * Accepted algorithms, all of one family: HMAC (`HS256`, `HS384`, `HS512`, with `secret`) or `RS256`
   * (with `publicKey`). The token header's `alg` must be one of these; `none` is never accepted.
   * @minItems 1
   * @example ["HS256"]
   */
  algorithms: JwtAlgorithm[];
  /** HMAC secret (HS256/384/512), read from the environment when nginx starts. */
  secret?: EnvRef;
  /** RSA public key (RS256). */
  publicKey?: JwtPublicKey;
  /**
   * Required issuer (`iss`): the token's `iss` must equal one of these.
   * @example "https://auth.example.com/"
   */
  issuer?: ClaimText | ClaimText[];
  /**
   * Required audience (`aud`): the token's `aud` (a string or a list) must contain one of these.
   * @example "shop-api"
   */
  audience?: ClaimText | ClaimText[];
  /**
   * Clock skew allowed when checking `exp` and `nbf`.
   * @default "30s"
   */
  clockSkew?: Duration;
  /**
   * Refuse tokens without an `exp` claim.
   * @default true
   */
  requireExp?: boolean;
  /**
   * Also accept the token from this cookie when there is no `Authorization` header.
   * @pattern ^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$
   * @example "session"
   */
  cookie?: string;
  /**
   * Claims forwarded to the origin as request headers: claim name -> header name. Client-sent copies of
   * these headers are always removed from proxied requests, in scope or not.
   * @example { "sub": "X-User-Id", "role": "X-User-Role" }
   * @propertyNames { "maxLength": 128 }
   */
  forwardClaims?: { [claim: string]: HeaderName };
  /**
   * `realm` of the `WWW-Authenticate` challenge.
   * @pattern ^[A-Za-z0-9 ._:/-]{1,64}$
   * @default "edge"
   */
  realm?: string;
}

/**
 * The signed-URL gate: requests in scope must carry an expiry and an HMAC-SHA256 signature in the query
 * string (see docs/gates.md, "Signed URLs", for the exact string that is signed; `cdn-build sign` produces them).
 * Expired -> 410, missing or bad signature -> 403. Both parameters are removed before the cache key and the
 * origin see the request.
 */
export interface SignedUrls extends GateScope {
  /** The HMAC-SHA256 key, read from the environment when nginx starts. */
  secret: EnvRef;
  /**
   * How the signature is written in the URL: lower-case hex or base64url without padding.
   * @default "hex"
   */
  encoding?: "hex" | "base64url";
  /**
   * Query parameter holding the expiry (Unix time, seconds).
   * @pattern ^[A-Za-z0-9._~-]{1,64}$
   * @default "expires"
   */
  expiresParam?: string;
  /**
   * Query parameter holding the signature.
   * @pattern ^[A-Za-z0-9._~-]{1,64}$
   * @default "signature"
   */
  signatureParam?: string;
  /**
   * Accept only URLs bound to the client's IP address (signed with `--ip`). When false, both forms are
   * accepted: a URL signed with an IP is valid from that IP only, one signed without from anywhere.
   * @default false
   */
  requireIp?: boolean;
}

/** The Redis server shared by the nodes of a fleet (cluster rate limits, purge fan-out). */
export interface Redis {
  /**
   * Host name or IP address.
   * @pattern ^[A-Za-z0-9.:_-]{1,253}$
   * @default "127.0.0.1"
   */
  host?: string;
  /**
   * TCP port.
   * @minimum 1
   * @maximum 65535
   * @default 6379
   */
  port?: number;
  /** Password (AUTH), from the environment. */
  password?: EnvRef;
  /**
   * Database number (SELECT).
   * @minimum 0
   * @maximum 1023
   * @default 0
   */
  db?: number;
  /**
   * Connect/send/read timeout of one Redis call. Keep it small: it is paid on the request path.
   * @default "50ms"
   */
  timeout?: Duration;
  /**
   * Idle connections kept per worker.
   * @minimum 1
   * @maximum 10000
   * @default 32
   */
  poolSize?: number;
  /**
   * How long an idle pooled connection is kept.
   * @default "60s"
   */
  idleTimeout?: Duration;
}

/**
 * A request rate: a number of requests per second, minute or hour, e.g. `"100r/s"`, `"600r/m"`, `"0.5r/s"`.
 * @example "100r/s"
 * @maxLength 32
 */
export type Rate = string;

/**
 * What a rate limit counts requests by (each distinct value has its own token bucket):
 * - `"ip"`: the client address (the IP rules gate's trusted-proxy address when it set one, else the peer);
 * - `{ header }`: the value of a request header (requests without it are counted by client address);
 * - `{ claim }`: a claim of the verified JWT (requests without a verified token are counted by client address);
 * - `{ pathGroup }`: one bucket for every request whose path is in the named group of `pathGroups` (requests
 *   outside the group are not limited by this limit).
 * @example { "header": "X-Api-Key" }
 */
export type RateLimitKey =
  | "ip"
  | {
      /**
       * Request header name.
       * @pattern ^[A-Za-z0-9-]{1,64}$
       */
      header: string;
    }
  | {
      /**
       * Name of a claim of the verified JWT, e.g. `sub`.
       * @pattern ^[A-Za-z0-9_.:-]{1,64}$
       */
      claim: string;
    }
  | {
      /**
       * Name of a group of `pathGroups`.
       * @pattern ^[A-Za-z0-9_-]{1,64}$
       */
      pathGroup: string;
    };

/**
 * One rate limit: a token bucket of `burst + 1` requests refilled at `rate`, one bucket per key value.
 * A request over the limit gets `429` with `Retry-After` and `RateLimit-Limit` / `RateLimit-Remaining` /
 * `RateLimit-Reset`.
 */
export interface RateLimit extends GateScope {
  /**
   * Name of the limit (unique; part of the bucket keys, so renaming a limit starts fresh buckets).
   * @pattern ^[A-Za-z0-9_-]{1,64}$
   * @example "api"
   */
  name: string;
  /** The sustained rate. */
  rate: Rate;
  /**
   * Requests admitted at once above the sustained rate: a full bucket holds `burst + 1` requests.
   * @default 0
   * @asType integer
   * @example 50
   */
  burst?: number;
  /**
   * What requests are counted by.
   * @default "ip"
   */
  key?: RateLimitKey;
  /**
   * `node`: the buckets live in a shared memory zone of this nginx (exact across its workers, per node).
   * `cluster`: the buckets live in the policy's `redis`, shared by every node using it.
   * @default "node"
   */
  scope?: "node" | "cluster";
  /**
   * Cluster scope only: what happens when Redis cannot be reached. `open` admits the request (without
   * `RateLimit-*` headers); `closed` refuses it with `429` and `Retry-After: 1`.
   * @default "open"
   */
  onRedisError?: "open" | "closed";
  /**
   * Send `RateLimit-Limit` / `RateLimit-Remaining` / `RateLimit-Reset` on admitted responses too (refused
   * ones always carry them). Off by default: three more headers on every response cost about 5% of
   * cache-HIT throughput, more than the limit itself.
   * @default false
   */
  headers?: boolean;
}

/**
 * Origin secret gate: only requests carrying a shared secret in a header pass (typically the header a CDN
 * or load balancer in front of this edge adds); every other request gets 403. The secret is read from the
 * environment when nginx starts and is never written into the bundle. When none of the named variables is
 * set at start, the gate refuses every request (fail closed) and logs one error.
 */
export interface OriginSecret extends GateScope {
  /**
   * Request header that carries the secret. It is removed before the request goes to the origin.
   * @default "X-Origin-Secret"
   */
  header?: HeaderName;
  /**
   * The secret, from the environment. Give `secret` or `secrets`, not both.
   * @example { "env": "EDGE_SECRET" }
   */
  secret?: EnvRef;
  /**
   * Several accepted secrets (rotation: accept the old and the new one while clients switch).
   * @example [{ "env": "EDGE_SECRET" }, { "env": "EDGE_SECRET_NEXT" }]
   */
  secrets?: EnvRef[];
  /**
   * Let requests from the loopback addresses (127.0.0.1, ::1) pass without the secret (local health
   * checks). The peer address is used, never a forwarded header.
   * @default false
   */
  allowLoopback?: boolean;
}

/**
 * IP rules gate: allow and deny lists of IPv4/IPv6 CIDR blocks. A client in `deny` gets 403 (deny wins);
 * when `allow` is given, a client outside it gets 403 too. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`)
 * count as IPv4. The client address is the one of `clientAddress` (the peer, or what a trusted proxy
 * reports). The lists are compiled into sorted, merged ranges and
 * binary-searched: thousands of blocks cost a few comparisons per request.
 */
export interface IpRules extends GateScope {
  /**
   * Only these clients may pass (omit to let everyone not denied pass).
   * @example ["10.0.0.0/8", "2001:db8::/32"]
   */
  allow?: Cidr[];
  /**
   * These clients are refused, even when `allow` lists them.
   * @example ["203.0.113.0/24"]
   */
  deny?: Cidr[];
  /**
   * Peers whose `realIpHeader` is believed. The same as the top-level `clientAddress.trustedProxies` (which
   * is preferred: the address it gives is used by every feature); give one of the two.
   * @example ["10.0.0.0/8"]
   */
  trustedProxies?: Cidr[];
  /**
   * Where a trusted proxy puts the client address; the same as `clientAddress.header`.
   * @default "X-Forwarded-For"
   */
  realIpHeader?: HeaderName;
}

/**
 * How the edge finds the client's address, for every feature that uses one (IP rules, rate limits, the
 * rules engine's `clientIp` and A/B splits by IP, signed URLs bound to an IP, the access log, the
 * `X-Real-IP` sent to the origin). Without trusted proxies it is the peer address. When the peer is one of
 * `trustedProxies`, it is the address that proxy reports in `header`: for `X-Forwarded-For`, the rightmost
 * hop that is not itself a trusted proxy. Hops written with a port (`203.0.113.5:4711`, `[2001:db8::1]:443`)
 * or in brackets are read as their address; IPv4-mapped IPv6 addresses count as IPv4.
 * @example { "trustedProxies": ["10.0.0.0/8"], "header": "X-Forwarded-For" }
 */
export interface ClientAddress {
  /**
   * Peers whose `header` is believed. From any other peer the header is ignored (it can be forged).
   * @example ["10.0.0.0/8", "2001:db8::/32"]
   */
  trustedProxies: Cidr[];
  /**
   * Where a trusted proxy puts the client address: `X-Forwarded-For` (a list, read right to left) or a header
   * holding one address, like `X-Real-IP`.
   * @default "X-Forwarded-For"
   */
  header?: HeaderName;
}

/**
 * The id of a built-in WAF rule.
 * @maxLength 64
 * @example "sqli-comment"
 */
export type WafRuleId = string;

/** A built-in WAF rule set. */
export type WafRuleSet = "sqli" | "xss" | "traversal" | "shell" | "scanners";

/** What a custom WAF rule looks at. */
export type WafTarget = "path" | "query" | "header" | "userAgent" | "body";

/** A custom WAF rule: a pattern (see docs/patterns.md) matched case-insensitively against one normalised part of the request. */
export interface WafRule {
  /**
   * Rule id, named in the log line when it matches.
   * @pattern ^[a-z0-9][a-z0-9-]{0,62}$
   * @example "block-old-admin"
   */
  id: string;
  /** The part of the request: the path, the query string, a request header (`header`), the user agent, or the body (needs `body`). */
  target: WafTarget;
  /**
   * Header name, with `target: "header"` only.
   * @example "Referer"
   */
  header?: HeaderName;
  /**
   * A regular expression in cdn-build's pattern dialect (the syntax JavaScript and PCRE share, see
   * docs/patterns.md; at most 1,024 characters), matched case-insensitively against the normalised value
   * (URL-decoded until stable, lower-cased, null bytes removed, `+`, whitespace runs and SQL comments
   * collapsed to one space). It must run in linear time (no repetition that can match the same input in
   * several ways) unless `unsafeRegex` is set.
   * @example "^/wp-admin"
   */
  pattern: RegexText;
  /**
   * Accept a pattern that can backtrack catastrophically (see docs/patterns.md). At runtime PCRE's match
   * limit still stops it: an evaluation that hits the limit is handled by the WAF's `mode` (refused in block
   * mode).
   * @default false
   */
  unsafeRegex?: boolean;
}

/** Request body inspection by the WAF. */
export interface WafBody {
  /**
   * Largest body inspected; larger bodies are passed without inspection (and the gate logs it).
   * @default "64k"
   */
  maxSize?: Size;
}

/**
 * Web application firewall gate: built-in rule sets and custom rules matched against normalised inputs
 * (URL-decoded repeatedly, case-folded, `+`/whitespace/comment variants collapsed, null bytes removed). Each
 * target's rules are compiled into one regular expression, so a request costs one match per target. A
 * match in `block` mode is a 403; in `log` mode the request passes. Either way one warning line names the
 * rule id and the target, never the payload.
 */
export interface Waf extends GateScope {
  /**
   * `block`: refuse a matching request with 403; `log`: only log it.
   * @default "block"
   */
  mode?: "block" | "log";
  /**
   * Built-in rule sets to use.
   * @default ["sqli", "xss", "traversal", "shell", "scanners"]
   */
  ruleSets?: WafRuleSet[];
  /**
   * Built-in rule ids to turn off (for a false positive on your traffic).
   * @example ["sqli-comment"]
   */
  exclude?: WafRuleId[];
  /** Custom rules. */
  rules?: WafRule[];
  /** Inspect request bodies (form posts, JSON) up to a size; omit to not read bodies. */
  body?: WafBody;
  /**
   * Most bytes inspected in one request, over every target together (path, query, user agent, the headers
   * of custom rules, the body). A request with more is handled by `mode` without inspecting the rest:
   * refused with 403 in block mode, passed and logged in log mode. Bodies over `body.maxSize` are not
   * inspected and do not count. Default: `body.maxSize` plus 64k (64k without body inspection); at most 2m.
   * @example "256k"
   */
  budget?: Size;
}

/** A path condition in its explicit forms: exactly one of `exact`, `prefix`, `glob` or `regex`. */
export interface PathMatch {
  /**
   * The whole path equals this.
   * @pattern ^/[A-Za-z0-9/._~!&'()*+,=:@%-]{0,255}$
   * @example "/login"
   */
  exact?: string;
  /**
   * The path starts with this.
   * @pattern ^/[A-Za-z0-9/._~!&'()*+,=:@%-]{0,255}$
   * @example "/api/"
   */
  prefix?: string;
  /**
   * A glob: `*` matches any characters, `/` included.
   * @pattern ^/[A-Za-z0-9/._~!&'()*+,=:@%-]{0,255}$
   * @example "/img/*.png"
   */
  glob?: string;
  /**
   * A regular expression in cdn-build's pattern dialect (see docs/patterns.md), matched against the path
   * (anchor it with `^`/`$` yourself).
   * @example "^/u/[0-9]+$"
   */
  regex?: RegexText;
}

/**
 * A file extension without the dot, compared case-insensitively.
 * @pattern ^[A-Za-z0-9_-]{1,16}$
 * @example "jpg"
 */
export type FileExtension = string;

/** An HTTP method. */
export type HttpMethod = "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS";

/**
 * A two-letter country code (ISO 3166-1 alpha-2, upper case).
 * @pattern ^[A-Z]{2}$
 * @example "DE"
 */
export type CountryCode = string;

/** A condition on a request header. Give at most one of `equals` / `matches`; neither means "exists". */
export interface HeaderCondition {
  /** Header name, case-insensitive. */
  name: HeaderName;
  /**
   * `true`: the header is present (and not empty); `false`: it is absent.
   * @default true
   */
  exists?: boolean;
  /**
   * The header value equals this exactly.
   * @maxLength 1024
   */
  equals?: string;
  /**
   * A regular expression in cdn-build's pattern dialect (see docs/patterns.md) the value must match.
   * @example "^Mozilla/"
   */
  matches?: RegexText;
}

/** A condition on a cookie or on a query parameter. */
export interface NamedValueCondition {
  /**
   * Cookie or query parameter name.
   * @pattern ^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$
   */
  name: string;
  /**
   * `true`: present; `false`: absent.
   * @default true
   */
  exists?: boolean;
  /**
   * The (URL-decoded, for query parameters) value equals this exactly.
   * @maxLength 1024
   */
  equals?: string;
}

/** Where the client's country comes from. */
export interface CountrySource {
  /**
   * A request header set by a GeoIP lookup in front of the edge (a load balancer, the outer CDN tier).
   * @default "X-Geoip-Country-Code"
   */
  header?: HeaderName;
  /**
   * An nginx variable holding the country code (for example `geoip2_data_country_code` when the target
   * nginx has the GeoIP2 module configured). Wins over `header` when set.
   * @pattern ^[a-z_][a-z0-9_]{0,63}$
   */
  variable?: string;
}

/** Client country condition. */
export interface CountryCondition extends CountrySource {
  /**
   * Countries that match.
   * @minItems 1
   */
  in: CountryCode[];
}

/**
 * A condition on the request. Every key given must hold (they are combined with AND); use `any` for OR
 * and `not` for negation. An empty condition matches every request.
 */
export interface Condition {
  /** The path (without query) matches this pattern, or one of these patterns. */
  path?: PathPattern | PathMatch | (PathPattern | PathMatch)[];
  /**
   * The path ends in one of these extensions.
   * @example ["jpg", "png"]
   */
  extension?: FileExtension[];
  /**
   * The method is one of these.
   * @example ["GET", "HEAD"]
   */
  method?: HttpMethod[];
  /**
   * The Host is one of these (case-insensitive); `*.example.com` matches any subdomain.
   * @example ["shop.example.com"]
   */
  host?: ServerName[];
  /** A request header exists / equals / matches. */
  header?: HeaderCondition;
  /** A cookie exists / equals. */
  cookie?: NamedValueCondition;
  /** A query parameter exists / equals. */
  query?: NamedValueCondition;
  /** The client's country is one of these. */
  country?: CountryCondition;
  /**
   * The client address is in one of these CIDR blocks.
   * @example ["10.0.0.0/8"]
   */
  clientIp?: Cidr[];
  /**
   * The User-Agent matches one of these patterns (cdn-build's pattern dialect, see docs/patterns.md),
   * case-insensitively (bot routing).
   * @example ["googlebot", "bingbot"]
   */
  userAgent?: RegexText[];
  /** Every one of these holds. */
  all?: Condition[];
  /** At least one of these holds. */
  any?: Condition[];
  /** This does not hold. */
  not?: Condition;
}

/** Extra parts of the cache key. */
export interface CacheKeyAdditions {
  /**
   * Values of these request headers become part of the key.
   * @example ["X-Device"]
   */
  headers?: HeaderName[];
  /**
   * Values of these cookies become part of the key.
   * @example ["currency"]
   */
  cookies?: CookieName[];
  /** Add the client country (same source as the `country` condition's default). */
  country?: boolean;
  /**
   * A fixed tag added to the key, e.g. to keep a rule's objects apart.
   * @pattern ^[A-Za-z0-9._-]{1,64}$
   */
  tag?: string;
}

/** Cache behaviour for the requests a rule matches. Needs `cache` in the policy. */
export interface RuleCache {
  /**
   * Edge TTL that overrides the origin's freshness (`Cache-Control` max-age/s-maxage, `Expires`) and the
   * policy's TTL table for 200, 203, 206, 301, 302, 307 and 308 responses. `private`, `no-store`,
   * `no-cache` and `Set-Cookie` responses are still never stored.
   * @example "1h"
   */
  ttl?: Duration;
  /** Neither serve from nor store in the cache. */
  bypass?: boolean;
  /** Parts added to the cache key. */
  key?: CacheKeyAdditions;
}

/** A path rewrite (what the origin receives; the cache key keeps the client's path). */
export interface Rewrite {
  /**
   * Replace the path with this one.
   * @pattern ^/[A-Za-z0-9/._~!&'()*+,=:@%-]{0,255}$
   */
  path?: string;
  /**
   * Remove this prefix from the path first (when present).
   * @pattern ^/[A-Za-z0-9/._~!&'()*+,=:@%-]{0,255}$
   */
  stripPrefix?: string;
  /**
   * Then add this prefix.
   * @pattern ^/[A-Za-z0-9/._~!&'()*+,=:@%-]{0,255}$
   */
  addPrefix?: string;
}

/** Redirect the client. */
export interface Redirect {
  /**
   * Target: a path on this host, or an absolute `http(s)://` URL.
   * @pattern ^(https?://[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?)?/[A-Za-z0-9/._~!&'()*+,=:@%-]{0,255}$
   * @example "https://www.example.com/new"
   */
  to: string;
  /**
   * Status code.
   * @default 301
   */
  status?: 301 | 302 | 307 | 308;
  /**
   * Append the request's query string to the target.
   * @default true
   */
  keepQuery?: boolean;
}

/** Answer from the edge with a fixed response. */
export interface Respond {
  /**
   * Status code.
   * @minimum 200
   * @maximum 599
   * @asType integer
   */
  status: number;
  /**
   * Body.
   * @default ""
   * @maxLength 65536
   */
  body?: string;
  /**
   * Content-Type of the body (at most 256 characters).
   * @default "text/plain"
   * @maxLength 256
   * @pattern ^[A-Za-z0-9!#$%&'*+.^_`|~-]+/[A-Za-z0-9!#$%&'*+.^_`|~-]+(; ?[A-Za-z0-9_-]+=[A-Za-z0-9_.-]+)?$
   */
  contentType?: string;
}

/** Route by the client's country. */
export interface GeoRoute extends CountrySource {
  /**
   * Country -> origin pool.
   * @example { "US": "us", "CA": "us", "DE": "eu" }
   * @propertyNames { "maxLength": 8 }
   */
  map: { [country: string]: PoolName };
  /** Pool for every other country and when the country is unknown. */
  default: PoolName;
}

/** One variant of an experiment. */
export interface ExperimentVariant {
  /**
   * Variant name (sent to the origin, stored in the cookie).
   * @pattern ^[A-Za-z0-9_-]{1,32}$
   */
  name: string;
  /**
   * Share of clients in percent; the weights of an experiment add up to 100.
   * @minimum 0
   * @maximum 100
   */
  weight: number;
}

/** An A/B split. */
export interface Experiment {
  /**
   * Experiment name.
   * @pattern ^[A-Za-z0-9_-]{1,32}$
   */
  name: string;
  /** @minItems 2 */
  variants: ExperimentVariant[];
  /**
   * How a client keeps its variant: `cookie` (assigned once, stored in a cookie, honoured after) or `ip`
   * (a hash of the client address: no cookie, same variant for the same address).
   * @default "cookie"
   */
  by?: "cookie" | "ip";
  /**
   * Cookie name (`by: "cookie"`). Default: `cdn_exp_<name>`.
   */
  cookie?: CookieName;
  /**
   * Cookie lifetime.
   * @default "30d"
   */
  cookieMaxAge?: Duration;
  /**
   * Request header that tells the origin the variant. Default: `X-Experiment-<name>`.
   */
  header?: HeaderName;
  /**
   * Also prefix the path sent to the origin with `/<variant>`.
   * @default false
   */
  pathPrefix?: boolean;
  /**
   * The origin's response differs per variant, so the variant is part of the cache key. Must not be false
   * with `pathPrefix`.
   * @default false
   */
  cacheKey?: boolean;
}

/** Image format negotiation. */
export interface ImageNegotiation {
  /**
   * Pool of the image service (imgproxy-style). Omit to keep the current pool.
   * @example "images"
   */
  origin?: PoolName;
  /**
   * Formats offered, best first, when the client's Accept allows them.
   * @default ["avif", "webp"]
   */
  formats?: ("avif" | "webp")[];
  /**
   * Path sent to the image origin; placeholders `{path}` (the request path), `{format}` (avif, webp or the
   * original extension) and `{width}` (normalised width, 0 when none was asked for).
   * @default "{path}"
   * @example "/insecure/rs:fit:{width}:0/plain{path}@{format}"
   * @pattern ^/?[A-Za-z0-9/._~!&'()*+,=:@%{}-]{0,255}$
   */
  url?: string;
  /**
   * Query parameter carrying the wanted width.
   * @default "w"
   * @pattern ^[A-Za-z0-9_-]{1,32}$
   */
  widthParam?: string;
  /**
   * Allowed widths: a requested width is rounded up to the next one (the largest when above), so the
   * cache holds few variants.
   * @example [320, 640, 1280, 1920]
   */
  widths?: number[];
}

/** What a rule does to the requests it matches. */
export interface Actions {
  /** Cache TTL override, bypass, key additions. */
  cache?: RuleCache;
  /** Headers of the request sent to the origin. */
  requestHeaders?: HeaderRules;
  /** Headers of the response (a `Cache-Control` set here overrides what the client sees, not the edge TTL). */
  responseHeaders?: HeaderRules;
  /**
   * Send the request to this origin pool.
   * @example "api"
   */
  origin?: PoolName;
  /** Rewrite the path sent to the origin. */
  rewrite?: Rewrite;
  /** Redirect the client (ends the request). */
  redirect?: Redirect;
  /** Answer with a fixed response (ends the request). */
  respond?: Respond;
  /**
   * Refuse the request with this status, or 403 for `true` (ends the request).
   * @example true
   */
  deny?: true | 401 | 403 | 404 | 410 | 429 | 451;
  /** Route by country. */
  geo?: GeoRoute;
  /** A/B split. */
  experiment?: Experiment;
  /** Image format negotiation (AVIF / WebP / original). */
  image?: ImageNegotiation;
  /**
   * Largest request body for the requests this rule matches, instead of `client.maxBodySize` (larger or
   * smaller); larger bodies get `413`.
   * @example "100m"
   */
  maxBodySize?: Size;
  /**
   * Proxy the requests this rule matches as WebSocket endpoints, like the paths of `websocket.paths`: the
   * upgrade passed on, never cached, the WebSocket idle timeout (`websocket.idleTimeout`).
   * @example true
   */
  websocket?: true;
}

/** One rule: when the condition holds, apply the actions. */
export interface Rule {
  /**
   * Rule name, unique; diagnostics name rules by it.
   * @pattern ^[A-Za-z0-9_.:-]{1,64}$
   * @example "assets-long-ttl"
   */
  name: string;
  /** The condition; omitted, the rule matches every request. */
  when?: Condition;
  /** The actions. */
  then: Actions;
  /**
   * Keep evaluating the next rules after this one matched (its actions still apply). Without it, the first
   * matching rule is the last one evaluated.
   * @default false
   */
  continue?: boolean;
  /**
   * Accept patterns in this rule's conditions that can backtrack catastrophically (see docs/patterns.md). At
   * runtime PCRE's match limit still stops them: a request whose evaluation hits the limit is refused with
   * 403.
   * @default false
   */
  unsafeRegex?: boolean;
}

/**
 * A media type (`type/subtype`, no parameters), compared with the response's `Content-Type` without its
 * parameters.
 * @pattern ^[a-z0-9][a-z0-9_.+-]{0,63}/[a-z0-9][a-z0-9_.+-]{0,126}$
 * @example "application/json"
 */
export type MediaType = string;

/** Edge-side gzip. */
export interface GzipCompression {
  /**
   * Compression level, 1 (fastest) to 9 (smallest).
   * @minimum 1
   * @maximum 9
   * @asType integer
   * @default 5
   */
  level?: number;
}

/** Edge-side brotli (needs the brotli filter module: the nginx-lua target loads Debian's; OpenResty has none). */
export interface BrotliCompression {
  /**
   * Compression level, 0 (fastest) to 11 (smallest). Levels above 6 cost several times the CPU for a few
   * percent less; 4 is about gzip 5's cost for a smaller body.
   * @minimum 0
   * @maximum 11
   * @asType integer
   * @default 4
   */
  level?: number;
}

/**
 * Compression of responses by the edge, as they go out to the client. The cache stores what the origin
 * sent (uncompressed, unless the origin encoded it itself), and each client gets the encoding it asked for
 * in `Accept-Encoding`: brotli before gzip, identity without either. Responses that already carry a
 * `Content-Encoding` (precompressed by the origin) pass untouched, never compressed twice. Compressible
 * responses always carry `Vary: Accept-Encoding`, and a strong `ETag` is made weak (`W/"..."`) when the
 * edge compresses (RFC 9110 8.8.3). Only 200, 403 and 404 responses are compressed; never byte ranges,
 * never a response with `Cache-Control: no-transform`.
 * @example { "gzip": { "level": 5 }, "brotli": { "level": 4 }, "minLength": "1k" }
 */
export interface Compression {
  /**
   * gzip settings, or `false` to not gzip.
   * @default {}
   */
  gzip?: GzipCompression | false;
  /**
   * brotli settings, or `false`. On the `openresty` target, which has no brotli module, brotli is left out
   * (with a warning, unless `false`).
   * @default {}
   */
  brotli?: BrotliCompression | false;
  /**
   * Media types compressed (text and structured text; never images, video, audio, archives or fonts that are
   * already compressed). Replaces the default list, which is `text/html`, `text/css`, `text/plain`,
   * `text/xml`, `text/javascript`, `text/markdown`, `text/csv`, `text/vtt`, `application/javascript`,
   * `application/json`, `application/ld+json`, `application/manifest+json`, `application/xml`,
   * `application/rss+xml`, `application/atom+xml`, `application/xhtml+xml`, `application/wasm`,
   * `image/svg+xml`, `image/x-icon`, `font/ttf`, `font/otf`, `application/vnd.ms-fontobject`.
   * @example ["text/html", "application/json"]
   */
  types?: MediaType[];
  /**
   * Smallest response compressed (by its `Content-Length`; a response without one is compressed). Below
   * about 1k, compression saves less than it costs.
   * @default "1k"
   */
  minLength?: Size;
}

/** `large_client_header_buffers`: the buffers a request line and header lines must fit in. */
export interface HeaderBuffers {
  /**
   * Number of buffers (all headers together must fit in them).
   * @minimum 1
   * @maximum 64
   * @asType integer
   * @default 4
   */
  count?: number;
  /**
   * Size of one buffer: the longest request line (else 414) or header line (else 400).
   * @default "8k"
   */
  size?: Size;
}

/**
 * How long and how much the edge waits for and accepts from clients, so slow or greedy clients cannot hold
 * workers and connections. Every timeout closes the connection when it fires (a client that stops sending
 * its headers gets `408` or a close). Defaults are what a CDN edge picks, and apply without this key too.
 * @example { "headerTimeout": "5s", "bodyDeadline": "60s", "maxBodySize": "10m", "connectionsPerAddress": 100 }
 */
export interface ClientLimits {
  /**
   * Time to receive the request line and headers (`client_header_timeout`): a slowloris client is closed
   * with `408` after this.
   * @default "5s"
   */
  headerTimeout?: Duration;
  /**
   * Longest pause between two reads of a request body (`client_body_timeout`).
   * @default "10s"
   */
  bodyTimeout?: Duration;
  /**
   * Total time a request body may take to arrive, however steadily it trickles in (nginx only bounds the
   * pause between two reads): past it the request gets `408` and the connection is closed. Applies to bodies
   * with a `Content-Length`, read by the edge (Lua) before the origin gets them; `false` for none.
   * @default "60s"
   */
  bodyDeadline?: Duration | false;
  /**
   * Longest pause between two writes to a client that does not read (`send_timeout`): a slow reader of a
   * large response is closed after it.
   * @default "10s"
   */
  sendTimeout?: Duration;
  /**
   * How long an idle keep-alive connection stays open.
   * @default "30s"
   */
  keepaliveTimeout?: Duration;
  /**
   * Requests served over one keep-alive connection before it is closed.
   * @minimum 1
   * @maximum 1000000
   * @asType integer
   * @default 1000
   */
  keepaliveRequests?: number;
  /**
   * Largest request body (`client_max_body_size`); larger gets `413`. A rule's `maxBodySize` replaces it for
   * the requests the rule matches.
   * @default "10m"
   */
  maxBodySize?: Size;
  /** Buffers for the request line and headers. */
  headerBuffers?: HeaderBuffers;
  /**
   * Most connections open at once from one client address (the peer's, `limit_conn`); more get `429`.
   * Omit for no limit. Behind a proxy or CDN this counts the proxy's addresses.
   * @minimum 1
   * @maximum 1000000
   * @asType integer
   * @example 100
   */
  connectionsPerAddress?: number;
}

/**
 * WebSocket proxying on some paths: a request there is proxied with its `Upgrade: websocket` and
 * `Connection: upgrade` (HTTP/1.1), after every access gate and rule ran on the upgrade request, and is never
 * served from or stored in the cache. Other paths never pass an upgrade to the origin.
 * @example { "paths": ["/ws/*", "/socket"], "idleTimeout": "10m" }
 */
export interface WebSocket {
  /**
   * Paths of WebSocket endpoints (the same patterns as a gate's `paths`); rules can add requests with their
   * `websocket` action. Omit when only rules pick them.
   * @minItems 1
   * @example ["/ws/*"]
   */
  paths?: PathPattern[];
  /**
   * How long a WebSocket connection may stay silent in both directions before the edge closes it (the
   * origin's `readTimeout` and `sendTimeout` on these paths). Keep it above the application's ping interval.
   * @default "10m"
   */
  idleTimeout?: Duration;
}

/**
 * The request id the origin receives and the access log records: the client's own when it is a valid id
 * (1 to 128 of `A-Z a-z 0-9 . _ : + / = -`, and `accept` is on), else one the edge makes (32 hex digits,
 * nginx's `$request_id`). A W3C `traceparent` / `tracestate` from the client is passed on unchanged.
 * @example { "header": "X-Request-Id", "accept": true }
 */
export interface RequestId {
  /**
   * The request header that carries the id, read from the client and sent to the origin.
   * @default "X-Request-Id"
   */
  header?: HeaderName;
  /**
   * Reuse a valid id the client (or a proxy in front) sent; `false` always makes a new one.
   * @default true
   */
  accept?: boolean;
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
  /** TLS for clients (with `listen.https`): certificates, protocols, sessions, HSTS, HTTP redirect. */
  tls?: Tls;
  /**
   * Host names this edge answers for. A request for any other host (its `Host` header, or the host of an
   * absolute request line) is refused with `421 Misdirected Request` by a catch-all default server, which
   * still answers the health and purge endpoints (load balancers and `cdn-build purge` address nodes by
   * IP). Omit to answer for any host.
   * @example ["shop.example.com"]
   * @maxItems 256
   */
  serverNames?: ServerName[];
  /**
   * Named origin pools.
   * @propertyNames { "maxLength": 128 }
   */
  origins: { [name: string]: Origin };
  /**
   * The origin pool requests go to. May be omitted when there is exactly one origin.
   * @example "app"
   */
  defaultOrigin?: PoolName;
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
  /** Prometheus metrics (`/metrics`) and the stats API (`/__stats`). Omit for none. */
  metrics?: Metrics;
  /**
   * The rules engine: evaluated in order for every request after the access gates and before the cache
   * key; the first matching rule wins unless it says `continue`.
   */
  rules?: Rule[];
  /** nginx process settings. */
  workers?: Workers;
  /** The Redis server shared by a fleet of edges (cluster rate limits, purge fan-out). */
  redis?: Redis;
  /** JWT gate: a valid token is required (optionally only on some paths). */
  jwt?: Jwt;
  /** Signed-URL gate: a valid signature and expiry in the query string are required (usually on some paths). */
  signedUrls?: SignedUrls;
  /**
   * Rate limits (an access gate, after the origin secret and IP rules): every limit whose scope matches
   * the request takes a token; when one has none left the request is refused with `429`.
   * @example [{ "name": "api", "rate": "100r/s", "burst": 50, "paths": ["/api/*"] }]
   */
  rateLimit?: RateLimit[];
  /**
   * Named sets of path patterns counted together by rate limits keyed by `{ pathGroup }`.
   * @example { "search": ["/search", "/api/search/*"] }
   * @propertyNames { "maxLength": 64 }
   */
  pathGroups?: { [name: string]: PathPattern[] };
  /** Access gate: refuse requests without the origin secret header (runs first). */
  originSecret?: OriginSecret;
  /** The client address every feature uses: the peer, or what a trusted proxy reports. */
  clientAddress?: ClientAddress;
  /** Access gate: IPv4/IPv6 allow and deny lists (runs after `originSecret`). */
  ipRules?: IpRules;
  /** Access gate: web application firewall (runs after the IP rules and rate limits). */
  waf?: Waf;
  /** Compression of responses by the edge (gzip, brotli). Omit to pass responses as the origin sent them. */
  compression?: Compression;
  /** Limits and timeouts for clients (slow headers, slow bodies, slow readers, body size, connections). */
  client?: ClientLimits;
  /** WebSocket proxying on some paths. */
  websocket?: WebSocket;
  /**
   * The request id sent to the origin and logged; on by default (`X-Request-Id`), `false` to send none (the
   * log then records nginx's own id).
   * @default {}
   */
  requestId?: RequestId | false;
  /**
   * Edge logic in TypeScript: hook files type-checked against `cdn-build/edge` and compiled to Lua by
   * TypeScriptToLua at build time. Each runs after the built-in features of its phase (docs/hooks.md).
   * @example { access: "./hooks/country-gate.ts", headers: "./hooks/variant.ts" }
   */
  hooks?: Hooks;
}

/**
 * A hook's TypeScript file, relative to the policy file (it may import files of its own folder and
 * `cdn-build/edge`, nothing else).
 * @pattern ^[^\u0000-\u001f]*\.ts$
 * @maxLength 1024
 * @example "./hooks/country-gate.ts"
 */
export type HookFile = string;

/** A hook with options. */
export interface HookOptions {
  /** The hook's TypeScript file, relative to the policy file. */
  file: HookFile;
  /**
   * On a runtime error in the hook, go on with the request as if the hook had done nothing more, instead of
   * answering 500 (the error is logged either way).
   * @default false
   */
  failOpen?: boolean;
}

/** The access hook with options. */
export interface AccessHookOptions extends HookOptions {
  /**
   * Run before the cache (right after the rules engine) instead of after every built-in access feature, so
   * the hook's `rewrite()` and request headers reach the cache key and can decide on a RAM-tier hit.
   */
  before?: "cache";
}

/** The user hooks, by phase: a file name, or an object with options. */
export interface Hooks {
  /** Runs for every request in the access phase (`onAccess`): read the request, change it, or answer it. */
  access?: HookFile | AccessHookOptions;
  /** Runs in the header filter for every response (`onHeaders`): read and change the response headers. */
  headers?: HookFile | HookOptions;
  /**
   * Runs on whole response bodies (`onBody`): returns a new body, or nothing to keep it. Bodies longer than
   * `maxBytes`, compressed ones (`Content-Encoding`), HEAD requests and 204/304 answers pass unchanged.
   */
  body?: HookFile | BodyHookOptions;
  /** Runs in the log phase after the response was sent (`onLog`): add fields to the access log line. */
  log?: HookFile | HookOptions;
  /**
   * The key/value store the hooks share (`store` of cdn-build/edge): one nginx shared memory zone for all
   * workers, with per-key TTLs. Kept across reloads, emptied by a restart; the least recently used keys
   * go when it is full.
   */
  store?: HookStore;
}

/** The hooks' key/value store. */
export interface HookStore {
  /**
   * Size of the shared memory zone (at least 64k).
   * @default "10m"
   * @example "10m"
   */
  size?: Size;
}

/** The body hook with options. */
export interface BodyHookOptions {
  /** The hook's TypeScript file, relative to the policy file. */
  file: HookFile;
  /**
   * The largest body the hook sees, in bytes: the edge buffers a body up to this size (per request) and
   * sends a longer one unchanged as it comes.
   * @minimum 1
   * @maximum 16777216
   * @default 1048576
   */
  maxBytes?: number;
}
