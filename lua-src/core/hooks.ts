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

const accessHandlers = handlersOf("access", phases.access);
const headerHandlers = handlersOf("header", phases.header);
const bodyHandlers = handlersOf("body", phases.body);
const logHandlers = handlersOf("log", phases.log);
const initWorkerHandlers = handlersOf("initWorker", phases.initWorker);

function run(list: Handler[]): void {
  for (let i = 0; i < list.length; i++) list[i]();
}

export function runAccess(): void {
  run(accessHandlers);
}

export function runHeaders(): void {
  run(headerHandlers);
}

export function runBody(): void {
  run(bodyHandlers);
}

export function runLog(): void {
  run(logHandlers);
}

export function runInitWorker(): void {
  run(initWorkerHandlers);
}
