import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { packageRoot } from "../util/package.js";
import { error, type Diagnostic } from "./diagnostic.js";

let validator: ValidateFunction | undefined;

export function policySchema(): Record<string, unknown> {
  return JSON.parse(readFileSync(join(packageRoot(), "schemas", "policy.schema.json"), "utf8"));
}

function getValidator(): ValidateFunction {
  if (!validator) {
    const ajv = new Ajv({ allErrors: true, strict: false, verbose: true });
    validator = ajv.compile(policySchema());
  }
  return validator;
}

function describe(e: ErrorObject): string | undefined {
  const schema = e.parentSchema as { description?: string; examples?: unknown[] } | undefined;
  const parts: string[] = [];
  if (schema?.description) parts.push(schema.description);
  if (schema?.examples?.length) parts.push(`example: ${JSON.stringify(schema.examples[0])}`);
  return parts.length ? parts.join(" ") : undefined;
}

function toDiagnostic(e: ErrorObject): Diagnostic {
  const p = e.params as Record<string, unknown>;
  const hint = describe(e);
  switch (e.keyword) {
    case "required":
      return error("schemaMissingProperty", `${e.instancePath}/${String(p.missingProperty)}`, `missing required property "${String(p.missingProperty)}"`, hint);
    case "additionalProperties": {
      const allowed = Object.keys((e.parentSchema as { properties?: object })?.properties ?? {});
      return error("schemaUnknownProperty", `${e.instancePath}/${String(p.additionalProperty)}`, `unknown property "${String(p.additionalProperty)}"`, allowed.length ? `allowed here: ${allowed.join(", ")}` : undefined);
    }
    case "type":
      return error("schemaWrongType", e.instancePath, `must be ${String(p.type)}, got ${JSON.stringify(e.data)}`, hint);
    case "pattern":
      return error("schemaPattern", e.instancePath, `invalid value ${JSON.stringify(e.data)}`, hint);
    case "enum":
    case "const":
      return error("schemaEnum", e.instancePath, `must be one of ${JSON.stringify(p.allowedValues ?? [p.allowedValue])}, got ${JSON.stringify(e.data)}`, hint);
    case "minimum":
    case "maximum":
    case "minItems":
    case "maxItems":
    case "minLength":
    case "maxLength":
      return error("schemaRange", e.instancePath, `${e.message ?? "out of range"}, got ${JSON.stringify(e.data)}`, hint);
    case "anyOf":
    case "oneOf":
      return error("schemaNoMatchingForm", e.instancePath, `${JSON.stringify(e.data)} does not match any allowed form`, hint);
    default:
      return error("schemaOther", e.instancePath, e.message ?? "invalid value", hint);
  }
}

/** JSON Schema validation: every error, one diagnostic each; branch noise under an anyOf is folded into it. */
export function validateSchema(value: unknown): Diagnostic[] {
  const validate = getValidator();
  if (validate(value)) return [];
  const errors = validate.errors ?? [];
  const unions = new Set(errors.filter((e) => e.keyword === "anyOf" || e.keyword === "oneOf").map((e) => e.instancePath));
  const kept = errors.filter((e) => {
    if (e.keyword === "anyOf" || e.keyword === "oneOf") return true;
    for (const u of unions) if (e.instancePath === u || e.instancePath.startsWith(u + "/")) return false;
    return true;
  });
  const seen = new Set<string>();
  const out: Diagnostic[] = [];
  for (const d of kept.map(toDiagnostic)) {
    const k = `${d.code} ${d.path} ${d.message}`;
    if (!seen.has(k)) out.push(d), seen.add(k);
  }
  return out;
}
