/**
 * Reads back `lua/policy_data.lua` as written by `toLuaModule` (src/emit/lua-data.ts): a `return { ... }`
 * of tables, strings with \ddd escapes, numbers and booleans. Data split into filler functions (policies of
 * thousands of rules) is not read back: `parseLuaData` returns undefined for it.
 */
export function parseLuaData(text: string): unknown {
  if (/^local F = \{\}$/m.test(text)) return undefined;
  const src = text.replace(/^--[^\n]*$/gm, "");
  let i = src.indexOf("return");
  if (i < 0) throw new Error("policy_data.lua has no return statement");
  i += "return".length;
  const ws = () => {
    while (i < src.length && /\s/.test(src[i]!)) i++;
  };
  const fail = (what: string): never => {
    throw new Error(`policy_data.lua: ${what} at offset ${i}`);
  };
  const str = (): string => {
    i++; // opening quote
    const bytes: number[] = [];
    while (src[i] !== '"') {
      if (i >= src.length) fail("unterminated string");
      if (src[i] === "\\") {
        const m = /^\d{1,3}/.exec(src.slice(i + 1, i + 4));
        if (!m) fail("unknown escape");
        bytes.push(Number(m![0]));
        i += 1 + m![0].length;
      } else {
        bytes.push(src.charCodeAt(i));
        i++;
      }
    }
    i++;
    return Buffer.from(bytes).toString("utf8");
  };
  const value = (): unknown => {
    ws();
    const c = src[i];
    if (c === "{") return table();
    if (c === '"') return str();
    const m = /^(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|nil)/.exec(src.slice(i, i + 40));
    if (!m) return fail("unexpected token");
    i += m![0].length;
    return m![0] === "true" ? true : m![0] === "false" ? false : m![0] === "nil" ? null : Number(m![0]);
  };
  const table = (): unknown => {
    i++; // {
    const list: unknown[] = [];
    const obj: Record<string, unknown> = {};
    let keyed = false;
    for (;;) {
      ws();
      if (src[i] === "}") {
        i++;
        break;
      }
      if (src[i] === "[") {
        i++;
        ws();
        const k = src[i] === '"' ? str() : String(value());
        ws();
        if (src[i] !== "]") fail("expected ]");
        i++;
        ws();
        if (src[i] !== "=") fail("expected =");
        i++;
        obj[k] = value();
        keyed = true;
      } else list.push(value());
      ws();
      if (src[i] === ",") i++;
    }
    return keyed ? obj : list;
  };
  return value();
}
