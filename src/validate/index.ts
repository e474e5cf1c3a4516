import type { Policy } from "../policy/types.js";
import type { Feature } from "../features/shared/feature.js";
import { hasErrors, type Diagnostic } from "./diagnostic.js";
import { validateSchema } from "./schema.js";

/**
 * Validates a policy value: JSON Schema first, then every feature's semantic checks (only on a value that
 * matches the schema, so checks can trust the types). Returns every problem found.
 */
export function validatePolicy(value: unknown, features: readonly Feature[]): { policy?: Policy; diagnostics: Diagnostic[] } {
  const schemaDiags = validateSchema(value);
  if (hasErrors(schemaDiags)) return { diagnostics: schemaDiags };
  const policy = value as Policy;
  const diagnostics = [...schemaDiags];
  for (const f of features) if (f.check) diagnostics.push(...f.check(policy));
  return hasErrors(diagnostics) ? { diagnostics } : { policy, diagnostics };
}
