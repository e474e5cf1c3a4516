/**
 * Generates schemas/policy.schema.json and docs/policy-reference.md from src/policy/types.ts (the single
 * source of truth), and docs/diagnostics.md from src/validate/catalogue.ts. `npm run schema` writes them;
 * test/schema.test.ts fails when a committed file drifts.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { buildPolicySchema } from "../src/policy/schema-gen.js";
import { renderDiagnosticsDocs, renderPolicyDocs } from "../src/policy/docs-gen.js";

const schemaFile = fileURLToPath(new URL("../schemas/policy.schema.json", import.meta.url));
const docsFile = fileURLToPath(new URL("../docs/policy-reference.md", import.meta.url));
const diagnosticsFile = fileURLToPath(new URL("../docs/diagnostics.md", import.meta.url));
const schema = buildPolicySchema();
writeFileSync(schemaFile, schema);
mkdirSync(fileURLToPath(new URL("../docs", import.meta.url)), { recursive: true });
writeFileSync(docsFile, renderPolicyDocs(schema));
writeFileSync(diagnosticsFile, renderDiagnosticsDocs());
console.log(`wrote ${schemaFile}\nwrote ${docsFile}\nwrote ${diagnosticsFile}`);
