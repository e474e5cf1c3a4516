import { isIP } from "node:net";

/**
 * CIDR lists compiled into sorted, merged address ranges for binary search at run time. IPv4 ranges are
 * numbers (0 .. 2^32-1); IPv6 ranges are 32-digit lower-case hex strings, which order like the addresses
 * (fixed width), so Lua compares them with `<`. IPv4-mapped IPv6 blocks (`::ffff:a.b.c.d/n`, n >= 96) are
 * folded into the IPv4 ranges, as the runtime does with mapped client addresses.
 */

import type { IpRangeSetData } from "../contract/index.js";

export type IpRangeSet = IpRangeSetData;

export interface ParsedBlock {
  family: 4 | 6;
  /** First address of the block. */
  start: bigint;
  /** Last address of the block. */
  end: bigint;
  /** True when the address had bits set below the prefix (e.g. 10.1.2.3/8). */
  hostBits: boolean;
}

const MAPPED_PREFIX = 0xffffn << 32n;

function ipv4ToBig(a: string): bigint {
  return a.split(".").reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n);
}

function ipv6ToBig(a: string): bigint {
  let addr = a;
  // a trailing dotted quad ("::ffff:1.2.3.4") becomes two hextets
  const m = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(addr);
  if (m) {
    const v4 = ipv4ToBig(m[2]!);
    addr = m[1]! + ((v4 >> 16n) & 0xffffn).toString(16) + ":" + (v4 & 0xffffn).toString(16);
  }
  const [head, tail] = addr.includes("::") ? addr.split("::") : [addr, undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const fill = tail === undefined ? [] : new Array(8 - h.length - t.length).fill("0");
  const words = [...h, ...fill, ...t];
  return words.reduce((acc, w) => (acc << 16n) | BigInt(parseInt(w, 16)), 0n);
}

/** Parses an IPv4/IPv6 address or CIDR block; undefined when it is not one. */
export function parseBlock(value: string): ParsedBlock | undefined {
  const parts = value.split("/");
  if (parts.length > 2) return undefined;
  const [address, prefixText] = parts as [string, string | undefined];
  const family = isIP(address);
  if (family !== 4 && family !== 6) return undefined;
  const bits = family === 4 ? 32 : 128;
  let prefix = bits;
  if (prefixText !== undefined) {
    if (!/^[0-9]{1,3}$/.test(prefixText)) return undefined;
    prefix = Number(prefixText);
    if (prefix > bits) return undefined;
  }
  const value_ = family === 4 ? ipv4ToBig(address) : ipv6ToBig(address);
  const hostMask = (1n << BigInt(bits - prefix)) - 1n;
  const start = value_ & ~hostMask & ((1n << BigInt(bits)) - 1n);
  return { family, start, end: start | hostMask, hostBits: (value_ & hostMask) !== 0n };
}

/** Folds an IPv4-mapped IPv6 block into IPv4 when it lies entirely inside ::ffff:0:0/96. */
function foldMapped(b: ParsedBlock): ParsedBlock {
  if (b.family === 6 && b.start >= MAPPED_PREFIX && b.end <= (MAPPED_PREFIX | 0xffffffffn)) {
    return { family: 4, start: b.start - MAPPED_PREFIX, end: b.end - MAPPED_PREFIX, hostBits: b.hostBits };
  }
  return b;
}

function merge(blocks: { start: bigint; end: bigint }[]): { start: bigint; end: bigint }[] {
  const sorted = [...blocks].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: { start: bigint; end: bigint }[] = [];
  for (const b of sorted) {
    const last = out[out.length - 1];
    if (last && b.start <= last.end + 1n) {
      if (b.end > last.end) last.end = b.end;
    } else out.push({ start: b.start, end: b.end });
  }
  return out;
}

const hex32 = (v: bigint) => v.toString(16).padStart(32, "0");

/** Compiles CIDR strings (already validated) into merged ranges; invalid entries are skipped. */
export function compileRanges(cidrs: readonly string[]): IpRangeSet {
  const v4: { start: bigint; end: bigint }[] = [];
  const v6: { start: bigint; end: bigint }[] = [];
  for (const c of cidrs) {
    const b = parseBlock(c);
    if (!b) continue;
    const f = foldMapped(b);
    (f.family === 4 ? v4 : v6).push(f);
  }
  const m4 = merge(v4);
  const m6 = merge(v6);
  return {
    v4: { s: m4.map((r) => Number(r.start)), e: m4.map((r) => Number(r.end)) },
    v6: { s: m6.map((r) => hex32(r.start)), e: m6.map((r) => hex32(r.end)) },
  };
}

/** True when the address (no prefix) is inside the compiled set; a reference implementation for tests. */
export function rangesContain(set: IpRangeSet, address: string): boolean {
  const b = parseBlock(address);
  if (!b) return false;
  const f = foldMapped(b);
  if (f.family === 4) {
    const v = Number(f.start);
    return set.v4.s.some((s, i) => s <= v && v <= set.v4.e[i]!);
  }
  const h = hex32(f.start);
  return set.v6.s.some((s, i) => s <= h && h <= set.v6.e[i]!);
}
