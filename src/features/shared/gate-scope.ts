import type { GateScope } from "../../policy/types.js";
import { pathAlt } from "../rules/conditions.js";
import { error, type Diagnostic } from "../../validate/diagnostic.js";

import type { PathSetData, ScopeData } from "../../contract/index.js";

export type { PathSetData, ScopeData };

function pathSet(patterns: readonly string[]): PathSetData {
  const set: PathSetData = { exact: {}, prefix: [], re: [] };
  for (const p of patterns) {
    const alt = pathAlt(p);
    if (alt.kind === "exact") set.exact[alt.value] = true;
    else if (alt.kind === "prefix") set.prefix.push(alt.value);
    else if (alt.kind === "glob") set.re.push(alt.regex);
  }
  set.prefix = [...new Set(set.prefix)].sort();
  set.re = [...new Set(set.re)].sort();
  return set;
}

/** Lowers a gate's scope; `undefined` means the gate applies to every request. */
export function lowerScope(scope: GateScope | undefined): ScopeData | undefined {
  if (!scope || (!scope.paths && !scope.exceptPaths)) return undefined;
  const out: ScopeData = {};
  if (scope.paths) out.only = pathSet(scope.paths);
  if (scope.exceptPaths) out.except = pathSet(scope.exceptPaths);
  return out;
}

/** Semantic checks of a gate's scope; `at` is the JSON pointer of the gate's settings object. */
export function checkScope(scope: GateScope | undefined, at: string): Diagnostic[] {
  if (scope?.paths !== undefined && scope.paths.length === 0) {
    return [error("gateEmptyPaths", at + "/paths", "the gate's path list is empty, so the gate would never run", "list at least one path, or remove `paths` to apply the gate everywhere")];
  }
  return [];
}
