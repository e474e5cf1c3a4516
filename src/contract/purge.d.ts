/** The purge feature's data (src/features/purge.ts -> lua-src/features/purge/). */
export interface PurgeData {
  /** False when the policy has no cache: the endpoint answers 404. */
  enabled: boolean;
  tokenEnv?: string;
  hmacEnv?: string;
  /** Seconds a signed request's timestamp may be off. */
  maxSkew: number;
  /** Disk cache directory (relative: to the nginx prefix) and its `levels`. */
  cachePath: string;
  levels: number[];
  /** How the cache computes its key (a copy of the cache feature's settings, to compute keys from URLs). */
  query: "all" | "none" | "allow";
  allow: Record<string, true>;
  host: boolean;
  /** Seconds an index entry / purge marker lives. */
  indexTtl: number;
  maxKeysPerTag: number;
  /** Cache-Tag / Surrogate-Key reach clients. */
  exposeTags: boolean;
  /** Redis stream of the fleet fan-out. */
  channel: string;
}
