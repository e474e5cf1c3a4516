import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildPolicySchema } from "../src/policy/schema-gen.js";
import { renderDiagnosticsDocs, renderPolicyDocs } from "../src/policy/docs-gen.js";

const ROOT = join(import.meta.dirname, "..");

describe("generated from src/policy/types.ts (run `npm run schema` after changing the types)", () => {
  const schema = buildPolicySchema();
  it("schemas/policy.schema.json has not drifted", () => {
    expect(schema).toBe(readFileSync(join(ROOT, "schemas", "policy.schema.json"), "utf8"));
  });
  it("docs/policy-reference.md has not drifted", () => {
    expect(renderPolicyDocs(schema)).toBe(readFileSync(join(ROOT, "docs", "policy-reference.md"), "utf8"));
  });
});

describe("generated from src/validate/catalogue.ts (run `npm run schema` after changing the catalogue)", () => {
  it("docs/diagnostics.md has not drifted", () => {
    expect(renderDiagnosticsDocs()).toBe(readFileSync(join(ROOT, "docs", "diagnostics.md"), "utf8"));
  });
});
