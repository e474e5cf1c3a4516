import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildPolicySchema } from "../src/policy/schema-gen.js";

describe("schemas/policy.schema.json", () => {
  it("is generated from src/policy/types.ts (run `npm run schema` after changing the types)", () => {
    const committed = readFileSync(join(import.meta.dirname, "..", "schemas", "policy.schema.json"), "utf8");
    expect(buildPolicySchema()).toBe(committed);
  }, 60_000);
});
