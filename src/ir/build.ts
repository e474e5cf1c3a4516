import type { Policy } from "../policy/types.js";
import type { Feature } from "../features/shared/feature.js";
import type { Phase, PhasePlan, PhaseStep } from "../contract/index.js";
import type { EdgeIR } from "./types.js";
import { TARGETS, type Target } from "./targets.js";
import { PHASES, STAGE_ORDER } from "./names.js";

/**
 * `lua_regex_match_limit`: how much backtracking PCRE may do in one match attempt (one start offset) before it
 * gives up with "pcre_exec() failed: -8". Patterns are proven linear at build time unless an author opted
 * out (`unsafeRegex`); this stops those within tens of milliseconds of a worker, and leaves room for the
 * linear ones (a lazy scan counts one step per byte, and the largest inspected value, 1m, is half of it).
 * What each feature does with an undecided match: docs/patterns.md.
 */
export const REGEX_MATCH_LIMIT = 2_000_000;

/**
 * Lowers a validated policy into the IR: a skeleton, then each feature adds its part, in registry order;
 * last, the run list of every phase from the enabled features' stages.
 */
export function buildIR(policy: Policy, target: Target, toolVersion: string, features: readonly Feature[]): EdgeIR {
  const t = TARGETS[target];
  const ir: EdgeIR = {
    name: policy.name,
    target,
    toolVersion,
    main: { user: null, workerProcesses: "auto", workerConnections: 4096, workerRlimitNofile: 9216, multiAccept: false, modules: [...t.modules], env: [] },
    luaPackagePath: ["$prefix/lua/?.lua", ...t.luaPath, ";"].join(";"),
    regexMatchLimit: REGEX_MATCH_LIMIT,
    sharedDicts: [],
    luaVars: [],
    server: { listen: [], serverNames: [], catchAll: false, https: null, blocks: [], redirect: null },
    slots: { main: [], http: [], server: [], proxy: [], locations: [], anyHost: [] },
    pathMatching: { caseInsensitive: false },
    luaData: {},
    files: [],
    phases: { access: [], header: [], body: [], log: [], initWorker: [] },
  };
  for (const f of features) f.lower?.(policy, ir);
  ir.main.env = [...new Set(ir.main.env)].sort();
  ir.phases = planPhases(ir, features);
  return ir;
}

/** Orders the handlers of the enabled features in each phase by the contract's stage order. */
function planPhases(ir: EdgeIR, features: readonly Feature[]): PhasePlan {
  const plan = { access: [], header: [], body: [], log: [], initWorker: [] } as PhasePlan;
  for (const phase of PHASES) {
    const order: readonly string[] = STAGE_ORDER[phase];
    const steps: { step: PhaseStep; at: number }[] = [];
    for (const f of features) {
      const rt = f.runtime;
      const data = rt && ir.luaData[rt.key];
      if (!rt || data === undefined) continue;
      const stages = (rt.stages as Partial<Record<Phase, Record<string, true | ((d: unknown) => boolean)>>>)[phase];
      for (const [stage, on] of Object.entries(stages ?? {})) {
        if (on === true || on(data)) steps.push({ step: [rt.key, stage], at: order.indexOf(stage) });
      }
    }
    // stable: features in the same stage keep registry order
    plan[phase] = steps.sort((a, b) => a.at - b.at).map((s) => s.step);
  }
  return plan;
}
