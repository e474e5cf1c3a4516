import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { packageRoot } from "../util/package.js";
import { error, pointer, type Diagnostic } from "./diagnostic.js";
import { HEADER_NAME_PATTERN, headerNameProblem } from "../util/header-name.js";

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

/** A value as a message shows it: JSON, cut to 80 characters (a 50 MB string is named, not printed). */
function shown(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  if (s.length <= 80) return s;
  const size = typeof v === "string" ? `${v.length} characters` : Array.isArray(v) ? `${v.length} items` : `${s.length} characters of JSON`;
  return `${s.slice(0, 60)}... (${size})`;
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
      return error("schemaWrongType", e.instancePath, `must be ${String(p.type)}, got ${shown(e.data)}`, hint);
    case "pattern":
      if (e.schema === HEADER_NAME_PATTERN) {
        // the one header-name rule (src/util/header-name.ts), wherever a header is named; a key of a `set` map
        // is reported at the key
        const key = e.propertyName;
        const at = key === undefined ? e.instancePath : e.instancePath + pointer(key);
        const name = key ?? String(e.data);
        return error("invalidHeaderName", at, headerNameProblem(name), `use letters, digits and "-", e.g. "${name.replace(/[^A-Za-z0-9-]+/g, "-").slice(0, 64) || "X-Name"}"`);
      }
      return error("schemaPattern", e.instancePath, `invalid value ${shown(e.data)}`, hint);
    case "enum":
    case "const":
      return error("schemaEnum", e.instancePath, `must be one of ${JSON.stringify(p.allowedValues ?? [p.allowedValue])}, got ${shown(e.data)}`, hint);
    case "minimum":
    case "maximum":
    case "minItems":
    case "maxItems":
    case "minLength":
    case "maxLength":
    case "minProperties":
    case "maxProperties":
      return error("schemaRange", e.instancePath, `${e.message ?? "out of range"}, got ${shown(e.data)}`, hint);
    case "anyOf":
    case "oneOf":
      return error("schemaNoMatchingForm", e.instancePath, `${shown(e.data)} does not match any allowed form`, hint);
    default:
      return error("schemaOther", e.instancePath, e.message ?? "invalid value", hint);
  }
}

/** JSON Schema validation: every error, one diagnostic each; branch noise under an anyOf is folded into it. */
export function validateSchema(value: unknown): Diagnostic[] {
  const validate = getValidator();
  if (validate(value)) return [];
  const errors = validate.errors ?? [];
  const isHeaderName = (e: ErrorObject) => e.keyword === "pattern" && e.schema === HEADER_NAME_PATTERN;
  const under = (e: ErrorObject, u: string) => e.instancePath === u || e.instancePath.startsWith(u + "/");
  const unions = new Set(errors.filter((e) => e.keyword === "anyOf" || e.keyword === "oneOf").map((e) => e.instancePath));
  // a union (e.g. `cacheStatus: HeaderName | false`, `key: "ip" | { header }`) whose value failed only as a
  // header name: the header-name rule says what is wrong, not "matches none of the forms"
  const named = new Set([...unions].filter((u) => errors.some((e) => isHeaderName(e) && under(e, u))));
  // a union of a string and objects (a header value: a string or a computed value) given a string that is too
  // long or too short: the string form's length rule says what is wrong
  const isLength = (e: ErrorObject) => e.keyword === "maxLength" || e.keyword === "minLength";
  const sized = new Set([...unions].filter((u) => !named.has(u) && errors.some((e) => isLength(e) && e.instancePath === u)));
  const kept = errors.filter((e) => {
    // a key of a `set` map that is not a header name: its pattern error says it (see toDiagnostic)
    if (e.keyword === "propertyNames") return false;
    if (e.keyword === "anyOf" || e.keyword === "oneOf") return !named.has(e.instancePath) && !sized.has(e.instancePath);
    for (const u of unions) if (under(e, u)) return (named.has(u) && isHeaderName(e)) || (sized.has(u) && isLength(e) && e.instancePath === u);
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
