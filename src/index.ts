export { definePolicy } from "./policy/define.js";
export { env } from "./policy/env.js";
export { value } from "./policy/value.js";
export type * from "./policy/types.js";
export type { Diagnostic } from "./validate/diagnostic.js";

/**
 * A policy may read `process.env` (one policy, several environments) without loading Node.js's types: the
 * loader type-checks policies without them. This merges with @types/node where a project has it.
 */
declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace NodeJS {
    interface ProcessEnv {
      [key: string]: string | undefined;
    }
    interface Process {
      env: ProcessEnv;
    }
  }
  // eslint-disable-next-line no-var
  var process: NodeJS.Process;
}
