import type { Policy } from "../policy/types.js";
import type { Diagnostic } from "../validate/diagnostic.js";
import type { EdgeIR } from "../ir/types.js";

/**
 * One feature of the product on the compiler side. The registry (`./index.ts`) lists them in order; the
 * pipeline runs `check` for all of them (after the JSON Schema passed), then `lower` for all of them.
 * A feature owns: its policy key, its semantic checks, its part of the IR, `templates/partials/<name>.hbs`
 * and `lua-src/features/<name>.ts`.
 */
export interface Feature {
  /** kebab-case name, the same on every layer. */
  name: string;
  /** Semantic checks beyond the JSON Schema; the policy already matches the schema. */
  check?(policy: Policy): Diagnostic[];
  /** Adds this feature's part to the IR. Only called on a policy with no errors. */
  lower?(policy: Policy, ir: EdgeIR): void;
}
