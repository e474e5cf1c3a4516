/** Phase handlers a feature returns from `setup`; each runs once per request in its phase. */
export interface PhaseHandlers {
  access?: () => void;
  header?: () => void;
  /** Body filter (only emitted when a feature of the policy needs it: `ir.bodyFilter`). */
  body?: () => void;
  log?: () => void;
  initWorker?: () => void;
}

/** A feature on the Lua side: `setup` runs once (in the master, at init) with the feature's policy data. */
export interface LuaFeature<D> {
  name: keyof FeaturesData;
  setup(data: D): PhaseHandlers;
}
