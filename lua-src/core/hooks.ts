import type { Phase, PhaseStep } from "../../src/contract/index";
import type { Handler } from "./feature";
import { features, phases } from "./policy";
import { FEATURES } from "../features/registry.gen";
import { configureRegex } from "./regex";

// Runs once when the module is first required (init_by_lua, in the master): sets up every enabled feature,
// then builds each phase's handler list in the order the compiler planned (policy data `phases`, sorted by
// the contract's stages), so a request only walks the handlers that have work to do.
const setUp = new LuaTable<string, LuaTable<string, LuaTable<string, Handler | undefined>>>();
configureRegex(); // before any feature compiles a regex
for (const f of FEATURES) {
  const data = features[f.key];
  if (data !== undefined) setUp.set(f.key, (f.setup as (this: void, d: unknown) => unknown)(data) as LuaTable<string, LuaTable<string, Handler | undefined>>);
}

function handlersOf(phase: Phase, steps: PhaseStep[]): Handler[] {
  const out: Handler[] = [];
  for (const [key, stage] of steps) {
    const h = setUp.get(key);
    if (h === undefined) error("cdn-build runtime: the policy runs feature " + key + ", which is off or missing in this runtime");
    const fn = h.get(phase)?.get(stage);
    // the compiler plans a stage only when the feature's data says it has work there
    if (fn === undefined) error("cdn-build runtime: feature " + key + " has no " + phase + " handler for stage " + stage + " (compiler and runtime disagree)");
    out.push(fn);
  }
  return out;
}

/**
 * One function that calls the handlers of a phase in order, written without a loop: LuaJIT turns a loop
 * over a handful of handlers into a loop trace of its own, which the per-request traces of the phase then
 * keep aborting on ("inner loop in root trace"), so the whole phase ran interpreted.
 */
function chain(list: Handler[]): Handler {
  if (list.length === 0) return () => {};
  let f = list[list.length - 1];
  for (let i = list.length - 2; i >= 0; i--) {
    const first = list[i];
    const rest = f;
    f = () => {
      first();
      rest();
    };
  }
  return f;
}

export const runAccess = chain(handlersOf("access", phases.access));
export const runHeaders = chain(handlersOf("header", phases.header));
export const runBody = chain(handlersOf("body", phases.body));
export const runLog = chain(handlersOf("log", phases.log));
export const runInitWorker = chain(handlersOf("initWorker", phases.initWorker));
