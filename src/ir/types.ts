/**
 * EdgeIR: the normalised plan a bundle is emitted from. Features fill it in `lower()`; the emitter renders
 * it. Every field is present (null when absent) so templates can run in Handlebars strict mode.
 */
import type { CdnVar, FeaturesData, PathMatchingData, PhasePlan, SharedDictName } from "../contract/index.js";
import type { Target } from "./targets.js";

export type { Target };

/** A piece of nginx.conf rendered by `templates/partials/<partial>.hbs` with `data` as its context. */
export interface Part {
  partial: string;
  data: unknown;
}

/** Where in nginx.conf a part goes. */
export interface Slots {
  /** Top level, before `events`. */
  main: Part[];
  /** Inside `http {}`. */
  http: Part[];
  /** Inside the `server {}` of the edge, before locations. */
  server: Part[];
  /** Inside `location /`, the proxy location that reaches the origins. */
  proxy: Part[];
  /** Extra locations inside the server (health, purge, ...). */
  locations: Part[];
  /**
   * Locations also answered for any host, by the catch-all server that refuses unknown hosts (health and
   * purge: load balancers and `cdn-build purge` address nodes by IP). Only rendered with `server.catchAll`.
   */
  anyHost: Part[];
}

/** One `server {}` of the edge. */
export interface ServerBlock {
  names: string[];
  tls: {
    certificate: string;
    key: string;
    /** OCSP stapling for this certificate, or null. */
    stapling: { resolvers: string[]; verifyWith: string | null } | null;
    /** Send `Strict-Transport-Security` (the value is `$cdn_hsts`). */
    hsts: boolean;
    /**
     * The certificate comes from env() paths: Lua presents entry `index` of the tls feature's data in every
     * handshake (`certificate` and `key` are then the bundle's placeholder).
     */
    lua: { index: number } | null;
  } | null;
}

export interface EdgeIR {
  name: string;
  target: Target;
  toolVersion: string;
  main: {
    user: string | null;
    workerProcesses: string;
    workerConnections: number;
    /** `worker_rlimit_nofile`: descriptors a worker may open (see `rlimitNofileFor`). */
    workerRlimitNofile: number;
    /** `multi_accept`: accept every pending connection per wake-up. */
    multiAccept: boolean;
    /** Absolute paths of dynamic modules to load (nginx-lua target). */
    modules: string[];
    /** Environment variables the Lua runtime reads at start (`env NAME;`); see `useEnv`. */
    env: string[];
  };
  /** lua_package_path: the bundle's own lua/ first, then the target's libraries. */
  luaPackagePath: string;
  /** lua_regex_match_limit: the backtracking PCRE may do in one match attempt (see REGEX_MATCH_LIMIT). */
  regexMatchLimit: number;
  /** lua_shared_dict zones. */
  sharedDicts: { name: SharedDictName; size: string }[];
  /** nginx variables the Lua hooks write (declared with `set` in the server). */
  luaVars: { name: CdnVar; value: string }[];
  server: {
    listen: { address: string | null; port: number }[];
    serverNames: string[];
    /** A catch-all default server answers 421 to every host not in `serverNames` (set when there are names). */
    catchAll: boolean;
    /** The TLS listener (every edge server and the catch-all listen on it), or null. */
    https: { address: string | null; port: number; http2: boolean } | null;
    /**
     * The edge's servers: one without TLS, or one per certificate with the server names it is chosen for
     * by SNI (each a full copy of the edge's locations). `names` empty: `server_name _`.
     */
    blocks: ServerBlock[];
    /** With TLS: the plain listener only redirects to HTTPS (health and purge still answer), or null. */
    redirect: { status: 301 | 308; target: string } | null;
  };
  slots: Slots;
  /** How the gates' path scopes read a request's path (set by the origins feature). */
  pathMatching: PathMatchingData;
  /** Policy data handed to the Lua runtime, by feature; a feature with no entry is off in Lua. */
  luaData: Partial<FeaturesData>;
  /** Other files of the bundle a feature writes (the TLS placeholder certificate, the metrics feature's Grafana dashboard), by relative path. */
  files: { path: string; text: string }[];
  /**
   * The handlers each phase runs, in order (filled by the pipeline from the enabled features' stages). A
   * phase with none gets no `*_by_lua` directive at all.
   */
  phases: PhasePlan;
}
