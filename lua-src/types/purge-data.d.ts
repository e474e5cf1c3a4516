/** Policy data of the purge feature (src/features/purge.ts `PurgeData`). */

interface PurgeData {
  enabled: boolean;
  tokenEnv?: string;
  hmacEnv?: string;
  maxSkew: number;
  cachePath: string;
  levels: number[];
  query: "all" | "none" | "allow";
  allow: LuaTable<string, boolean>;
  host: boolean;
  indexTtl: number;
  maxKeysPerTag: number;
  exposeTags: boolean;
  channel: string;
}

interface FeaturesData {
  purge?: PurgeData;
}
