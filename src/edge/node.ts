/**
 * `cdn-build/edge` in Node: the phase markers (a hook is its function) and the helpers, so a hook file can be
 * imported and called from a user's own tests with a request object of their making. Inside nginx the same
 * calls go to the Lua runtime (lua-src/edge/index.ts); both implement src/edge/api.d.ts.
 */
import { createHash, createHmac } from "node:crypto";
import type * as Api from "./api.js";

export type * from "./api.js";

export const onAccess: typeof Api.onAccess = (fn) => fn as Api.AccessHook;
export const onHeaders: typeof Api.onHeaders = (fn) => fn as Api.HeadersHook;
export const onLog: typeof Api.onLog = (fn) => fn as Api.LogHook;
export const onBody: typeof Api.onBody = (fn) => fn as Api.BodyHook;

// an in-memory store (one per Node process), with the shared dict's TTL semantics
const values = new Map<string, { value: string | number | boolean; expires: number }>();
function live(key: string): { value: string | number | boolean; expires: number } | undefined {
  const e = values.get(key);
  if (e && e.expires !== 0 && e.expires <= Date.now()) {
    values.delete(key);
    return undefined;
  }
  return e;
}
export const store: Api.Store = {
  get: (key) => live(key)?.value,
  set: (key, value, ttl) => void values.set(key, { value, expires: ttl ? Date.now() + ttl * 1000 : 0 }),
  incr: (key, by = 1, ttl = 0) => {
    const e = live(key);
    if (e !== undefined && typeof e.value !== "number") throw new Error("store.incr: not a number");
    const value = (e?.value as number | undefined ?? 0) + by;
    values.set(key, { value, expires: e ? e.expires : ttl ? Date.now() + ttl * 1000 : 0 });
    return value;
  },
  delete: (key) => void values.delete(key),
};

export const now: typeof Api.now = () => Math.floor(Date.now()) / 1000;
export const sha256Hex: typeof Api.sha256Hex = (data) => createHash("sha256").update(data, "latin1").digest("hex");
export const hmacSha256Hex: typeof Api.hmacSha256Hex = (key, message) => createHmac("sha256", Buffer.from(key, "latin1")).update(message, "latin1").digest("hex");
export const base64Encode: typeof Api.base64Encode = (data) => Buffer.from(data, "latin1").toString("base64");
export const base64Decode: typeof Api.base64Decode = (text) => (/^[A-Za-z0-9+/]*={0,2}$/.test(text) && text.length % 4 === 0 ? Buffer.from(text, "base64").toString("latin1") : undefined);
export const jsonEncode: typeof Api.jsonEncode = (value) => JSON.stringify(value);
export const jsonDecode: typeof Api.jsonDecode = (text) => {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
};
