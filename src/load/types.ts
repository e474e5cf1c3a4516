import type { Diagnostic } from "../validate/diagnostic.js";

export type PolicyFormat = "ts" | "yaml" | "json";

/** A 1-based source position. */
export interface SourcePosition {
  line: number;
  col: number;
}

export interface LoadedPolicy {
  /** Absolute path of the policy file. */
  file: string;
  format: PolicyFormat;
  /** The policy object, not validated yet (JSON Schema and semantic checks run later). */
  value: unknown;
  /**
   * Source position of the value at a JSON pointer (RFC 6901, e.g. "/origins/app/servers/0/address"), or of the
   * nearest existing ancestor when the exact node is missing; undefined when unknown. line and col are 1-based.
   * Map entries are located at their key.
   */
  locate(pointer: string): SourcePosition | undefined;
}

export interface LoadResult {
  loaded?: LoadedPolicy;
  diagnostics: Diagnostic[];
}
