import type { Policy } from "../../policy/types.js";
import type { Diagnostic } from "../../validate/diagnostic.js";
import type { EdgeIR, Target } from "../../ir/types.js";
import type { FeatureKey, FeaturesData, FeatureStages } from "../../contract/index.js";

/**
 * The stages a runtime feature runs in, per phase (exactly those of `FeatureStages` in the contract): `true`
 * when the handler runs whenever the feature is on, or a test on the feature's lowered data (e.g. the
 * cache's body filter only with a RAM tier).
 */
export type StageDecl<K extends FeatureKey> = {
  [P in keyof FeatureStages[K]]: { [S in FeatureStages[K][P] & string]: true | ((data: FeaturesData[K]) => boolean) };
};

/** The Lua side of a feature: its key in `FeaturesData` (its data and its `lua-src/features/` module) and its stages. */
export type RuntimePart = { [K in FeatureKey]: { key: K; stages: StageDecl<K> } }[FeatureKey];

/**
 * One feature on the compiler side. The registry (`../registry.gen.ts`, generated from the files of
 * src/features/) lists them; the pipeline runs `check` for all of them (after the JSON Schema passed), then
 * `lower` for all of them. A feature owns its policy key, its semantic checks, its part of the IR, its
 * `templates/partials/<name>.hbs` and, with `runtime`, `lua-src/features/<name>`.
 */
export interface Feature {
  /** kebab-case name, the same on every layer (and the file name). */
  name: string;
  /** Semantic checks beyond the JSON Schema; the policy already matches the schema. */
  check?(policy: Policy): Diagnostic[];
  /**
   * Checks that depend on the build target (a module one target lacks); only warnings, since the same policy
   * must build for every target. Runs after `check`, on a policy with no errors.
   */
  checkTarget?(policy: Policy, target: Target): Diagnostic[];
  /** Adds this feature's part to the IR. Only called on a policy with no errors. */
  lower?(policy: Policy, ir: EdgeIR): void;
  /** The feature's Lua part, when it has one: its data key (`ir.luaData[key]`) and when its handlers run. */
  runtime?: RuntimePart;
}
