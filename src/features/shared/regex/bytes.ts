/**
 * Sets of bytes (0-255), the alphabet the runtime's regex engine works on: ngx.re runs PCRE without UTF
 * mode, so a pattern and the value it is matched against are sequences of bytes.
 */
export type ByteSet = Uint32Array;

export function emptySet(): ByteSet {
  return new Uint32Array(8);
}

export function setOf(...bytes: number[]): ByteSet {
  const s = emptySet();
  for (const b of bytes) add(s, b);
  return s;
}

export function rangeSet(lo: number, hi: number): ByteSet {
  const s = emptySet();
  for (let b = lo; b <= hi; b++) add(s, b);
  return s;
}

export function add(s: ByteSet, b: number): void {
  s[b >>> 5]! |= 1 << (b & 31);
}

export function has(s: ByteSet, b: number): boolean {
  return (s[b >>> 5]! & (1 << (b & 31))) !== 0;
}

export function union(a: ByteSet, b: ByteSet): ByteSet {
  const s = emptySet();
  for (let i = 0; i < 8; i++) s[i] = a[i]! | b[i]!;
  return s;
}

export function intersect(a: ByteSet, b: ByteSet): ByteSet {
  const s = emptySet();
  for (let i = 0; i < 8; i++) s[i] = a[i]! & b[i]!;
  return s;
}

export function complement(a: ByteSet): ByteSet {
  const s = emptySet();
  for (let i = 0; i < 8; i++) s[i] = ~a[i]! >>> 0;
  return s;
}

export function isEmpty(a: ByteSet): boolean {
  for (let i = 0; i < 8; i++) if (a[i] !== 0) return false;
  return true;
}

/** True when a ∩ b is not empty. */
export function overlaps(a: ByteSet, b: ByteSet): boolean {
  for (let i = 0; i < 8; i++) if ((a[i]! & b[i]!) !== 0) return true;
  return false;
}

export function equals(a: ByteSet, b: ByteSet): boolean {
  for (let i = 0; i < 8; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function size(a: ByteSet): number {
  let n = 0;
  for (let b = 0; b < 256; b++) if (has(a, b)) n++;
  return n;
}

export function members(a: ByteSet): number[] {
  const out: number[] = [];
  for (let b = 0; b < 256; b++) if (has(a, b)) out.push(b);
  return out;
}

/** Adds the other case of every ASCII letter (PCRE's caseless matching without UTF mode). */
export function foldCase(a: ByteSet): ByteSet {
  const s = union(a, emptySet());
  for (let b = 0x41; b <= 0x5a; b++) {
    if (has(a, b) || has(a, b + 0x20)) {
      add(s, b);
      add(s, b + 0x20);
    }
  }
  return s;
}

// The classes of the dialect, as the runtime's PCRE defines them without UTF mode (its default C-locale
// tables): ASCII only.
export const DIGIT = rangeSet(0x30, 0x39);
export const WORD = union(union(union(rangeSet(0x30, 0x39), rangeSet(0x41, 0x5a)), rangeSet(0x61, 0x7a)), setOf(0x5f));
/** Space, \t, \n, \v, \f, \r (PCRE 8.34 and later include \v). */
export const SPACE = setOf(0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d);
export const ANY = complement(emptySet());
/** `.`: any byte but \n. */
export const DOT = complement(setOf(0x0a));
export const NON_WORD = complement(WORD);
