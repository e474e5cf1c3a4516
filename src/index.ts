export { definePolicy } from "./policy/define.js";
export { env } from "./policy/env.js";
export { value } from "./policy/value.js";
export type * from "./policy/types.js";
export type { Diagnostic } from "./validate/diagnostic.js";
