/**
 * HMAC-SHA256 through LuaJIT's FFI and OpenSSL's libcrypto (nginx is linked against it, so its symbols
 * are usually already loaded; otherwise the shared library is opened by name), plus a constant-time
 * comparison. Minimal on purpose: the purge endpoint's signatures only. (A general crypto module may
 * replace it; the declarations below are made under pcall so another module declaring the same C
 * functions does not break either.)
 */

interface CryptoLib {
  EVP_sha256(this: void): unknown;
  HMAC(this: void, md: unknown, key: string, keyLen: number, data: string, n: number, out: unknown, outLen: unknown): unknown;
}

interface Ffi {
  cdef(this: void, decl: string): void;
  load(this: void, name: string): CryptoLib;
  C: CryptoLib;
  "new"(this: void, ctype: string): unknown;
  string(this: void, ptr: unknown, len?: number): string;
}

interface Bit {
  bor(this: void, a: number, b: number): number;
  bxor(this: void, a: number, b: number): number;
}

const [, ffiModule] = pcall(require, "ffi");
const [, bitModule] = pcall(require, "bit");
const ffi = ffiModule as Ffi;
const bitOps = bitModule as Bit;

pcall(() =>
  ffi.cdef(`
const void *EVP_sha256(void);
unsigned char *HMAC(const void *evp_md, const void *key, int key_len, const unsigned char *d, size_t n, unsigned char *md, unsigned int *md_len);
`),
);

function loadCrypto(): CryptoLib | undefined {
  const [okC] = pcall(() => ffi.C.HMAC !== undefined && ffi.C.EVP_sha256 !== undefined);
  if (okC) return ffi.C;
  for (const name of ["crypto", "libcrypto.so.3", "libcrypto.so.1.1"]) {
    const [ok, lib] = pcall(() => {
      const l = ffi.load(name);
      // touch the symbols so a library without them fails here
      return l.HMAC !== undefined && l.EVP_sha256 !== undefined ? l : undefined;
    });
    if (ok && lib !== undefined) return lib;
  }
  return undefined;
}

const crypto = loadCrypto();
const outBuf = ffi.new("unsigned char[64]");
const outLen = ffi.new("unsigned int[1]");

function toHex(c: string): string {
  return string.format("%02x", string.byte(c));
}

/** True when libcrypto was found. */
export function hmacAvailable(): boolean {
  return crypto !== undefined;
}

/** Lower-case hex HMAC-SHA256 of `data` with `key`, or undefined when libcrypto is missing. */
export function hmacSha256Hex(key: string, data: string): string | undefined {
  if (crypto === undefined) return undefined;
  const r = crypto.HMAC(crypto.EVP_sha256(), key, key.length, data, data.length, outBuf, outLen);
  if (r === undefined || r === null) return undefined;
  const [hex] = string.gsub(ffi.string(outBuf, 32), ".", toHex);
  return hex;
}

/** Compares two strings in time that depends only on their lengths (the secret's length is not secret). */
export function constantTimeEquals(a: string, b: string): boolean {
  const n = a.length;
  let diff = n === b.length ? 0 : 1;
  const m = diff === 0 ? n : b.length;
  for (let i = 1; i <= m; i++) {
    diff = bitOps.bor(diff, bitOps.bxor(string.byte(a, ((i - 1) % (n > 0 ? n : 1)) + 1) ?? 0, string.byte(b, i)));
  }
  return diff === 0;
}
