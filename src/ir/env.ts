import type { EdgeIR } from "./types.js";

/**
 * Declares that the Lua runtime reads `ref` from the environment (nginx only passes variables listed with
 * `env`) and returns the variable name for the feature's Lua data.
 */
export function useEnv(ir: EdgeIR, ref: { env: string }): string {
  ir.main.env.push(ref.env);
  return ref.env;
}
