import type { IpRangeSetData } from "../../src/contract/index";

/**
 * The one IP address parser of the runtime, and membership in compiled range sets (src/util/ip-ranges.ts).
 *
 * `parseAddr(text)` leaves its result in module-level fields (no table per request): `ip.family` 4, 6, or 0
 * when the text is not an address; `ip.v4` a number; `ip.v6` 32 lower-case hex digits. IPv4 inside IPv6 is
 * folded to IPv4 where it means an IPv4 host: IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d,
 * except :: and ::1) and the NAT64 well-known prefix (64:ff9b::a.b.c.d), so IPv4 lists match them.
 *
 * Parsing is done with byte loops and plain finds only: LuaJIT compiles those, while Lua pattern functions
 * (match, gmatch, gsub) would abort the trace and run the whole handler in the interpreter.
 */

const find = string.find;
const sub = string.sub;
const byte = string.byte;
const format = string.format;
const floor = math.floor;

const DOT = 46;
const COLON = 58;

export const ip = { family: 0, v4: 0, v6: "" };
const words: LuaTable<number, number> = new LuaTable();

/** A dotted quad in text[from..to], as a number; undefined when malformed. */
function parseV4(text: string, from: number, to: number): number | undefined {
  let v = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = from; i <= to; i++) {
    const c = byte(text, i);
    if (c >= 48 && c <= 57) {
      octet = octet * 10 + (c - 48);
      digits++;
      if (digits > 3 || octet > 255) return undefined;
    } else if (c === DOT) {
      if (digits === 0 || dots === 3) return undefined;
      v = v * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else return undefined;
  }
  if (dots !== 3 || digits === 0) return undefined;
  return v * 256 + octet;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** Parses an address into ip.family / ip.v4 / ip.v6. */
export function parseAddr(text: string): void {
  ip.family = 0;
  const len = text.length;
  if (len === 0 || len > 45) return;
  if (find(text, ":", 1, true)[0] === undefined) {
    const v = parseV4(text, 1, len);
    if (v !== undefined) {
      ip.family = 4;
      ip.v4 = v;
    }
    return;
  }
  let n = 0;
  let gap = -1;
  let i = 1;
  if (byte(text, 1) === COLON) {
    if (byte(text, 2) !== COLON) return;
    gap = 0;
    i = 3;
  }
  while (i <= len) {
    let j = i;
    let w = 0;
    let digits = 0;
    while (j <= len) {
      const h = hexValue(byte(text, j));
      if (h < 0) break;
      w = w * 16 + h;
      digits++;
      j++;
    }
    if (j <= len && byte(text, j) === DOT) {
      // trailing dotted quad (::ffff:1.2.3.4)
      const v = parseV4(text, i, len);
      if (v === undefined || n > 6) return;
      words.set(n + 1, floor(v / 65536));
      words.set(n + 2, v % 65536);
      n += 2;
      break;
    }
    if (digits === 0 || digits > 4) return;
    n++;
    if (n > 8) return;
    words.set(n, w);
    if (j > len) break;
    if (byte(text, j) !== COLON) return;
    if (j < len && byte(text, j + 1) === COLON) {
      if (gap >= 0) return;
      gap = n;
      i = j + 2;
    } else {
      i = j + 1;
      if (i > len) return;
    }
  }
  if (gap >= 0) {
    if (n > 7) return;
    const tail = n - gap;
    for (let k = tail; k >= 1; k--) words.set(8 - tail + k, words.get(gap + k));
    for (let k = gap + 1; k <= 8 - tail; k++) words.set(k, 0);
  } else if (n !== 8) return;
  const w1 = words.get(1);
  const w2 = words.get(2);
  if (words.get(3) === 0 && words.get(4) === 0 && words.get(5) === 0) {
    const w6 = words.get(6);
    const low = words.get(7) * 65536 + words.get(8);
    // ::ffff:a.b.c.d (mapped), ::a.b.c.d (compatible; not :: or ::1), 64:ff9b::a.b.c.d (NAT64)
    if ((w1 === 0 && w2 === 0 && (w6 === 0xffff || (w6 === 0 && low > 1))) || (w1 === 0x64 && w2 === 0xff9b && w6 === 0)) {
      ip.family = 4;
      ip.v4 = low;
      return;
    }
  }
  ip.family = 6;
  ip.v6 = format("%04x%04x%04x%04x%04x%04x%04x%04x", w1, w2, words.get(3), words.get(4), words.get(5), words.get(6), words.get(7), words.get(8));
}

/** Membership test of the last parsed address in a compiled range set. */
export type SetTest = () => boolean;

/** A binary-search membership test for a range set (about log2(n) comparisons, whatever the list size). */
export function compileSet(set: IpRangeSetData | undefined): SetTest | undefined {
  if (set === undefined) return undefined;
  const s4 = set.v4.s;
  const e4 = set.v4.e;
  const n4 = s4.length;
  const s6 = set.v6.s;
  const e6 = set.v6.e;
  const n6 = s6.length;
  return () => {
    if (ip.family === 4) {
      const v = ip.v4;
      let lo = 0;
      let hi = n4 - 1;
      let at = -1;
      while (lo <= hi) {
        const mid = floor((lo + hi) / 2);
        if (s4[mid] <= v) {
          at = mid;
          lo = mid + 1;
        } else hi = mid - 1;
      }
      return at >= 0 && v <= e4[at];
    }
    if (ip.family === 6) {
      const v = ip.v6;
      let lo = 0;
      let hi = n6 - 1;
      let at = -1;
      while (lo <= hi) {
        const mid = floor((lo + hi) / 2);
        if (s6[mid] <= v) {
          at = mid;
          lo = mid + 1;
        } else hi = mid - 1;
      }
      return at >= 0 && v <= e6[at];
    }
    return false;
  };
}

/**
 * The address part of a forwarded hop: surrounding blanks removed, and a port or brackets stripped
 * (`203.0.113.5:4711`, `[2001:db8::1]`, `[2001:db8::1]:443`). Leaves it parsed (ip.family 0 when it is not
 * an address) and returns it.
 */
export function parseHop(text: string, from: number, to: number): string {
  while (from <= to && (byte(text, from) === 32 || byte(text, from) === 9)) from++;
  while (to >= from && (byte(text, to) === 32 || byte(text, to) === 9)) to--;
  if (byte(text, from) === 91) {
    // [v6] or [v6]:port
    const [close] = find(text, "]", from, true);
    if (close === undefined || close > to) {
      ip.family = 0;
      return "";
    }
    if (close < to && !(byte(text, close + 1) === COLON && allDigits(text, close + 2, to))) {
      ip.family = 0;
      return "";
    }
    const addr = sub(text, from + 1, close - 1);
    parseAddr(addr);
    return addr;
  }
  // a.b.c.d:port (one colon only: an IPv6 address has at least two)
  const [colon] = find(text, ":", from, true);
  const [colon2] = colon === undefined ? [undefined] : find(text, ":", colon + 1, true);
  if (colon !== undefined && colon <= to && (colon2 === undefined || colon2 > to) && allDigits(text, colon + 1, to)) {
    const addr = sub(text, from, colon - 1);
    parseAddr(addr);
    if (ip.family === 4) return addr;
    ip.family = 0;
    return "";
  }
  const addr = sub(text, from, to);
  parseAddr(addr);
  return addr;
}

function allDigits(text: string, from: number, to: number): boolean {
  if (from > to || to - from > 4) return false;
  for (let i = from; i <= to; i++) {
    const c = byte(text, i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}
