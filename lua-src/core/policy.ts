import * as generated from "policy_data";
import type { PolicyData } from "../../src/contract/index";

/**
 * The policy data the compiler generated (lua/policy_data.lua), typed by the contract. Loaded once, in the
 * master at init, so workers share it. Every feature reads its data through `features`.
 */
const data = generated as unknown as PolicyData;

export const policyName = data.name;
export const features = data.features;
export const phases = data.phases;
export const pathMatching = data.paths;
