import { definePolicy } from "cdn-build";

/**
 * Edge logic in TypeScript: a country gate and a beta cookie check (access hook), response headers rewritten
 * from a lookup table (headers hook), a notice added to beta pages (body hook) and a log field (log hook).
 * See docs/hooks.md.
 */
export default definePolicy({
  name: "edge-hooks",
  origins: {
    app: { servers: [{ address: "127.0.0.1:8080" }] },
  },
  cache: {},
  health: {},
  hooks: {
    access: "./hooks/country-gate.ts",
    headers: "./hooks/backend-label.ts",
    body: { file: "./hooks/banner.ts", maxBytes: 262144 },
    log: { file: "./hooks/log-country.ts", failOpen: true },
  },
});
