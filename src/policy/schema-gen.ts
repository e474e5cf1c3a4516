import { createGenerator } from "ts-json-schema-generator";
import { fileURLToPath } from "node:url";

/** Build the policy JSON Schema text from the TypeScript types (dev-time only: not part of the runtime CLI). */
export function buildPolicySchema(): string {
  const typesFile = fileURLToPath(new URL("./types.ts", import.meta.url));
  const schema = createGenerator({
    path: typesFile,
    type: "Policy",
    tsconfig: fileURLToPath(new URL("../../tsconfig.json", import.meta.url)),
    skipTypeCheck: true,
    additionalProperties: false,
    jsDoc: "extended",
    sortProps: true,
    topRef: true,
  }).createSchema("Policy");
  schema.$id = "https://cdn-build.dev/schemas/policy.schema.json";
  schema.title = "cdn-build edge policy";
  return JSON.stringify(schema, null, 2) + "\n";
}
