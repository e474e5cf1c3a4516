/**
 * Generates schemas/policy.schema.json from src/policy/types.ts (the single source of truth).
 * `npm run schema` writes it; test/schema.test.ts fails when the committed file drifts.
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { buildPolicySchema } from "../src/policy/schema-gen.js";

const out = fileURLToPath(new URL("../schemas/policy.schema.json", import.meta.url));
writeFileSync(out, buildPolicySchema());
console.log(`wrote ${out}`);
