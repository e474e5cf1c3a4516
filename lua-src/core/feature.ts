import type { FeatureKey, FeaturesData, FeatureStages } from "../../src/contract/index";

export type Handler = () => void;

/**
 * What a feature's `setup` returns: for each phase it runs in, a handler per stage of the contract's
 * `FeatureStages` (undefined when this policy gives the stage nothing to do). The stage names are checked
 * against the contract: a missing, extra or misspelt stage is a compile error.
 */
export type Handlers<K extends FeatureKey> = {
  [P in keyof FeatureStages[K]]: { [S in FeatureStages[K][P] & string]: Handler | undefined };
};

/** A feature on the Lua side: `setup` runs once (in the master, at init) with the feature's policy data. */
export interface LuaFeature<K extends FeatureKey> {
  key: K;
  setup(this: void, data: FeaturesData[K]): Handlers<K>;
}

export type AnyLuaFeature = { [K in FeatureKey]: LuaFeature<K> }[FeatureKey];
