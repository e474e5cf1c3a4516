/** True for a value that can be a policy: a non-null, non-array object that is not a function or a promise. */
export function isPolicyObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  return typeof (value as { then?: unknown }).then !== "function";
}

/** A short description of a value's kind, for messages. */
export function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "nothing (undefined)";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "function") return "a function";
  if (typeof value === "object" && typeof (value as { then?: unknown }).then === "function") return "a Promise";
  const type = typeof value;
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}
