import { features } from "policy_data";
import { FEATURES } from "../features/index";

const accessHandlers: (() => void)[] = [];
const headerHandlers: (() => void)[] = [];
const bodyHandlers: (() => void)[] = [];
const logHandlers: (() => void)[] = [];
const initWorkerHandlers: (() => void)[] = [];

// Runs once when the module is first required (init_by_lua, in the master): builds the per-phase lists of
// the enabled features, so a request only walks the handlers that have work to do.
for (const f of FEATURES) {
  const data = features[f.name];
  if (data !== undefined) {
    const h = f.setup(data);
    if (h.access) accessHandlers.push(h.access);
    if (h.header) headerHandlers.push(h.header);
    if (h.body) bodyHandlers.push(h.body);
    if (h.log) logHandlers.push(h.log);
    if (h.initWorker) initWorkerHandlers.push(h.initWorker);
  }
}

function run(list: (() => void)[]): void {
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
