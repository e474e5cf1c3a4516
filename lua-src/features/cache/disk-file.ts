import { readStart } from "../../core/fs";

/**
 * Reading what nginx itself stored for a disk key, when the metadata of an object is missing (a restart, a
 * reload that changed the dict's size, an evicted entry, or a request racing the log phase of the one that
 * stored it): the stored response carries what the cache needs to decide again, without trusting anything
 * that was lost.
 *
 * An nginx cache file (format version 5, nginx >= 1.13; 64-bit layout) starts with a binary header:
 * version, valid_sec, updating_sec, error_sec, last_modified, date (the time nginx stored the response),
 * each 8 bytes, then crc32 (4), valid_msec, header_start, body_start (2 each), etag and vary; then
 * "\nKEY: <key>\n", the upstream's status line and header lines, and the body at body_start.
 */

export interface StoredResponse {
  /** When nginx stored it (its own clock). */
  storedAt: number;
  status: number;
  /** Header lines by lower-case name (a repeated header gives a list), like ngx.header. */
  headers: LuaTable<string, string | string[]>;
  /** The body, when it was asked for and is at most that long. */
  body?: string;
}

const MAX_HEAD = 16384;

function u16(s: string, at: number): number {
  const [a, b] = string.byte(s, at + 1, at + 2);
  return a + b * 256;
}

function u64(s: string, at: number): number {
  let v = 0;
  for (let i = 8; i >= 1; i--) v = v * 256 + string.byte(s, at + i);
  return v;
}

/** The path of a disk key's file (levels "1:2": the last hex digit, then the two before it). */
export function cacheFilePath(this: void, diskDir: string, diskKey: string): string {
  const md5 = ngx.md5(diskKey);
  return diskDir + "/" + string.sub(md5, -1) + "/" + string.sub(md5, -3, -2) + "/" + md5;
}

/**
 * The stored response of `diskKey`, or undefined when there is none (or it cannot be read as one); with
 * `bodyMax`, also its body when that is at most `bodyMax` bytes.
 */
export function readStored(this: void, diskDir: string, diskKey: string, bodyMax = 0): StoredResponse | undefined {
  const data = readStart(cacheFilePath(diskDir, diskKey), MAX_HEAD + bodyMax + 1);
  if (data === undefined || data.length < 64) return undefined;
  if (u64(data, 0) !== 5) return undefined;
  const storedAt = u64(data, 40);
  const headerStart = u16(data, 54);
  const bodyStart = u16(data, 56);
  if (headerStart < 64 || bodyStart <= headerStart || bodyStart > data.length) return undefined;
  // the key line guards against a file of another key (or a damaged one)
  const keyLine = "\nKEY: " + diskKey + "\n";
  const [ks] = string.find(data, keyLine, 1, true);
  if (ks === undefined || ks + keyLine.length !== headerStart + 1) return undefined;
  const head = string.sub(data, headerStart + 1, bodyStart);
  const [code] = string.match(head, "^HTTP/%d%.%d (%d%d%d)");
  if (code === undefined) return undefined;
  const headers = new LuaTable<string, string | string[]>();
  for (const [name, value] of string.gmatch(head, "\n([^:\r\n]+):[ \t]*([^\r\n]*)")) {
    const n = string.lower(name);
    const cur = headers.get(n);
    if (cur === undefined) headers.set(n, value);
    else if (typeof cur === "string") headers.set(n, [cur, value]);
    else cur.push(value);
  }
  const body = bodyMax > 0 && data.length - bodyStart <= bodyMax ? string.sub(data, bodyStart + 1) : undefined;
  return { storedAt, status: tonumber(code)!, headers, body };
}
