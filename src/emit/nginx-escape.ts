/**
 * The only way a value reaches nginx.conf. Every helper either returns text that nginx reads back as exactly
 * one token with the same value, or throws: a policy string can never end a directive, open a block or
 * expand a variable. Validation rejects such values earlier with a diagnostic; these throws are the last guard.
 */

export class NginxEscapeError extends Error {}

const CONTROL = /[\u0000-\u001f\u007f]/;

function check(value: unknown, what: string): string {
  if (typeof value !== "string" && typeof value !== "number") {
    throw new NginxEscapeError(`${what}: expected a string or number, got ${typeof value}`);
  }
  const s = String(value);
  if (CONTROL.test(s)) throw new NginxEscapeError(`${what}: control characters are not allowed: ${JSON.stringify(s)}`);
  return s;
}

function quote(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** A quoted literal string for directives that do NOT expand variables or where `$` is refused. */
export function ngxString(value: unknown): string {
  const s = check(value, "string");
  if (s.includes("$")) throw new NginxEscapeError(`string: "$" would start an nginx variable: ${JSON.stringify(s)}`);
  return quote(s);
}

/**
 * A quoted string that may contain nginx variables. Only for strings the compiler builds itself
 * (log formats, cache keys); never for a policy value.
 */
export function ngxTemplate(value: unknown): string {
  return quote(check(value, "template"));
}

const WORD = /^[A-Za-z0-9_.:/\[\]*=@+-]+$/;

/** A bare token: numbers, sizes, durations, addresses, CIDRs, keywords. Anything else throws. */
export function ngxWord(value: unknown): string {
  const s = check(value, "word");
  if (!WORD.test(s)) throw new NginxEscapeError(`word: not a bare nginx token: ${JSON.stringify(s)}`);
  return s;
}

/** A whole number. */
export function ngxNumber(value: unknown): string {
  if (typeof value !== "number" || !Number.isSafeInteger(value)) {
    throw new NginxEscapeError(`number: expected an integer, got ${JSON.stringify(value)}`);
  }
  return String(value);
}

/** on / off. */
export function ngxFlag(value: unknown): string {
  if (typeof value !== "boolean") throw new NginxEscapeError(`flag: expected a boolean, got ${JSON.stringify(value)}`);
  return value ? "on" : "off";
}

/** Text for a `#` comment: only plain characters survive, so a comment can never end early. */
export function ngxComment(value: unknown): string {
  return String(value).replace(/[^A-Za-z0-9 ._:/@()-]/g, "_");
}
