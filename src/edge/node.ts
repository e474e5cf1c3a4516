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
