/**
 * Every user-written regular expression goes through here: parsed in cdn-build's dialect (./parse.ts, the
 * part of JavaScript and PCRE that means the same in both), checked for catastrophic backtracking
 * (./backtracking.ts), and written back out for PCRE (./emit.ts). Nothing needs nginx or PCRE on the build
 * machine. docs/patterns.md is the user's page for it.
 */
import { error, type Diagnostic, type ErrorName } from "../../../validate/diagnostic.js";
import { analyse, type Analysis } from "./backtracking.js";
import { emit } from "./emit.js";
import { MAX_PATTERN_LENGTH, parsePattern, type ParseError, type RegexNode } from "./parse.js";

export { MAX_PATTERN_LENGTH, MAX_REPEAT, parsePattern, type RegexNode } from "./parse.js";
export { analyse, type Analysis, type Verdict } from "./backtracking.js";
export { emit } from "./emit.js";

/** The pattern as the runtime gets it (PCRE text of the parsed pattern); throws on a pattern outside the dialect. */
export function toPcre(source: string): string {
  const r = parsePattern(source);
  if (!r.ok) throw new Error(`internal error: pattern ${JSON.stringify(source)} reached lowering unchecked: ${r.error.message}`);
  return emit(r.ast);
}

/** A pattern quoted for a message, shortened when long. */
export function quote(source: string): string {
  return JSON.stringify(source.length > 80 ? source.slice(0, 77) + "..." : source);
}

export interface PatternPlace {
  /** JSON pointer of the pattern. */
  at: string;
  /** Matched case-insensitively at runtime. */
  ci: boolean;
  /** The author accepted a pattern that may backtrack (`unsafeRegex: true`). */
  unsafe: boolean;
  /** The code for a pattern outside the dialect at this place. */
  invalid: ErrorName;
  /** The code for a back-reference, when the place has its own (the WAF's). */
  backReference?: ErrorName;
}

export interface PatternReport {
  diagnostics: Diagnostic[];
  /** Present when the pattern is in the dialect. */
  ast?: RegexNode;
  analysis?: Analysis;
}

function describe(e: ParseError): string {
  return e.construct === "" ? e.message : `${e.construct} at offset ${e.index}: ${e.message}`;
}

/** Parses and analyses one pattern; returns the diagnostics common to every place patterns appear. */
export function checkPattern(source: string, place: PatternPlace): PatternReport {
  const parsed = parsePattern(source);
  if (!parsed.ok) {
    const e = parsed.error;
    if (e.kind === "tooLong") {
      return { diagnostics: [error("regexTooLong", place.at, `the pattern is ${source.length} characters long; patterns are limited to ${MAX_PATTERN_LENGTH}`, "split it into several rules, or match a shorter distinctive part")] };
    }
    const name = e.kind === "backReference" && place.backReference ? place.backReference : place.invalid;
    return {
      diagnostics: [error(name, place.at, `pattern ${quote(source)} is outside the pattern dialect: ${describe(e)}`, "patterns use the syntax JavaScript and PCRE share; see docs/patterns.md for what they may contain")],
    };
  }
  const analysis = analyse(parsed.ast, place.ci);
  const diagnostics: Diagnostic[] = [];
  if (!place.unsafe && analysis.verdict !== "linear") {
    const near = analysis.offsets.length > 0 ? ` (the repetition${analysis.offsets.length > 1 ? "s" : ""} near offset${analysis.offsets.length > 1 ? "s" : ""} ${analysis.offsets.slice(0, 4).join(", ")})` : "";
    const what = analysis.verdict === "exponential" ? "can take exponential time" : analysis.verdict === "polynomial" ? "can take more than linear time" : "cannot be proven to run in linear time";
    const hint =
      analysis.verdict === "exponential"
        ? "make each part of the input match one way only, e.g. ^(\\w+\\s?)+$ -> ^\\w+(?:\\s\\w+)*$; or set `unsafeRegex: true` on the rule to accept it"
        : "bound the repetition (e.g. {0,100}), use a class that excludes what comes next ([^/]* rather than .* inside a path), or anchor the pattern with ^; or set `unsafeRegex: true` on the rule to accept it";
    diagnostics.push(error("regexBacktracking", place.at, `pattern ${quote(source)} ${what} on some inputs: ${analysis.detail}${near}`, hint));
  }
  return { diagnostics, ast: parsed.ast, analysis };
}
