/**
 * When the Lua features run. nginx calls the bundle's hooks in five phases; inside a phase, handlers run in
 * the order of the named stages below (access gates cheapest first, then the rules engine, then the cache).
 * This is the one declaration of that order: the compiler sorts the enabled features' handlers by it and
 * hands the result to the runtime as data (`phases` in lua/policy_data.lua).
 */
export interface StageOrder {
  access: [
    "client",
    "purge",
    "gate:secret",
    "gate:ip",
    "gate:rate",
    "gate:waf",
    "gate:jwt",
    "gate:signed",
    "gate:rate-claims",
    "rules",
    "client:body",
    // a user hook declared `before: "cache"` (its rewrite or header changes reach the cache key)
    "hooks:before-cache",
    "websocket",
    "cache",
    "headers",
    "rules:ttl",
    // user hooks run after every built-in feature of their phase (docs/hooks.md)
    "hooks",
  ];
  // compression last: it may clear the request's Accept-Encoding, which the cache reads before (Vary)
  header: ["rate-limit", "rules:nostore", "cache", "purge", "headers", "rules:headers", "hooks", "compression"];
  // no built-in feature filters bodies (the RAM tier copies bodies from nginx's cache file, see
  // lua-src/features/cache/ram.ts): a bundle has a body_filter_by_lua, which runs for every response, only
  // with a user body hook
  body: ["hooks"];
  log: ["cache", "hooks", "metrics"];
  initWorker: ["origin-secret", "waf", "purge", "rules", "tls", "metrics"];
}

export type Phase = keyof StageOrder;
export type Stage<P extends Phase> = StageOrder[P][number];

/**
 * The stages each runtime feature runs in, by phase. A feature that works early in one phase and late in
 * another (the rules engine, rate limits keyed by a JWT claim) is still one feature.
 */
export interface FeatureStages {
  clientAddress: { access: "client" };
  originSecret: { access: "gate:secret"; initWorker: "origin-secret" };
  ipRules: { access: "gate:ip" };
  rateLimit: { access: "gate:rate" | "gate:rate-claims"; header: "rate-limit" };
  waf: { access: "gate:waf"; initWorker: "waf" };
  jwt: { access: "gate:jwt" };
  signedUrls: { access: "gate:signed" };
  rules: { access: "rules" | "rules:ttl"; header: "rules:nostore" | "rules:headers"; initWorker: "rules" };
  cache: { access: "cache"; header: "cache"; log: "cache" };
  purge: { access: "purge"; header: "purge"; initWorker: "purge" };
  headers: { access: "headers"; header: "headers" };
  redis: {};
  tls: { initWorker: "tls" };
  metrics: { log: "metrics"; initWorker: "metrics" };
  hooks: { access: "hooks:before-cache" | "hooks"; header: "hooks"; body: "hooks"; log: "hooks" };
  client: { access: "client:body" };
  websocket: { access: "websocket" };
  compression: { header: "compression" };
}

/** One entry of a phase's run list: the feature and the stage of its handler. */
export type PhaseStep = [feature: keyof FeatureStages, stage: string];

/** The run list of every phase, in order (only the enabled features' handlers). */
export type PhasePlan = { [P in Phase]: PhaseStep[] };
