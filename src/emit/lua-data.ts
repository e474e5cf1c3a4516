/**
 * Serialises plain data (the policy as the Lua runtime sees it) into a Lua chunk that returns it.
 * Deterministic: object keys are sorted. Strings are escaped byte by byte, so any value is safe.
 */
export function toLuaModule(value: unknown, header: string): string {
  return `${header}\nreturn ${toLua(value, "")}\n`;
}

export function toLua(value: unknown, indent = ""): string {
  if (value === null || value === undefined) return "nil";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Error(`lua-data: non-finite number ${value}`);
    return String(value);
  }
  if (typeof value === "string") return luaString(value);
  const next = indent + "  ";
  if (Array.isArray(value)) {
    if (value.length === 0) return "{}";
    return `{\n${value.map((v) => `${next}${toLua(v, next)},`).join("\n")}\n${indent}}`;
  }
  if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    if (entries.length === 0) return "{}";
    return `{\n${entries.map(([k, v]) => `${next}[${luaString(k)}] = ${toLua(v, next)},`).join("\n")}\n${indent}}`;
  }
  throw new Error(`lua-data: cannot serialise ${typeof value}`);
}

/** A double-quoted Lua string; every byte outside printable ASCII, and `"` `\`, becomes a \ddd escape. */
export function luaString(s: string): string {
  let out = '"';
  for (const byte of Buffer.from(s, "utf8")) {
    if (byte >= 0x20 && byte < 0x7f && byte !== 0x22 && byte !== 0x5c) out += String.fromCharCode(byte);
    else out += "\\" + String(byte).padStart(3, "0");
  }
  return out + '"';
}
