/**
 * HMAC-SHA2 and RSA (PKCS#1 v1.5) signature verification through LuaJIT's FFI to the OpenSSL libcrypto that
 * nginx already links. Inside nginx the symbols are in the global namespace (`ffi.C`); a bare LuaJIT (unit
 * tests) loads libcrypto by soname. Keys are parsed once (at init) and freed by the garbage collector.
 */

import * as ffi from "ffi";

// One declaration per cdef so a declaration another module already made does not stop the others.
// Pointers to OpenSSL's types are `void *`: their structs are opaque anyway, and no typedef can clash.
const DECLS = [
  "const void *EVP_sha256(void)",
  "const void *EVP_sha384(void)",
  "const void *EVP_sha512(void)",
  "unsigned char *HMAC(const void *md, const void *key, int key_len, const unsigned char *d, size_t n, unsigned char *out, unsigned int *out_len)",
  "void *BIO_new_mem_buf(const void *buf, int len)",
  "int BIO_free(void *bio)",
  "void *PEM_read_bio_PUBKEY(void *bio, void **x, void *cb, void *u)",
  "void EVP_PKEY_free(void *pkey)",
  "int EVP_PKEY_get_base_id(const void *pkey)",
  "int EVP_PKEY_base_id(const void *pkey)",
  "int EVP_PKEY_get_bits(const void *pkey)",
  "int EVP_PKEY_bits(const void *pkey)",
  "void *EVP_MD_CTX_new(void)",
  "void EVP_MD_CTX_free(void *ctx)",
  "int EVP_DigestVerifyInit(void *ctx, void **pctx, const void *md, void *engine, void *pkey)",
  "int EVP_DigestVerify(void *ctx, const unsigned char *sig, size_t siglen, const unsigned char *tbs, size_t tbslen)",
  "void ERR_clear_error(void)",
  "int CRYPTO_memcmp(const void *a, const void *b, size_t len)",
  "int EVP_Digest(const void *data, size_t count, unsigned char *md, unsigned int *size, const void *type, void *impl)",
];
for (const d of DECLS) pcall(ffi.cdef, d);

function has(lib: any, sym: string): boolean {
  const [ok] = pcall(() => lib[sym]);
  return ok;
}

/** libcrypto's namespace: the process's own symbols when nginx linked OpenSSL, else the shared library. */
function loadLibcrypto(): any {
  if (has(ffi.C, "HMAC") && has(ffi.C, "EVP_DigestVerify")) return ffi.C;
  for (const name of ["libcrypto.so.3", "libcrypto.so.1.1", "crypto"]) {
    const [ok, lib] = pcall(ffi.load, name);
    if (ok && has(lib, "HMAC")) return lib;
  }
  error("crypto: libcrypto (OpenSSL) not found: neither linked into nginx nor loadable as libcrypto.so.3 / .so.1.1");
}

const C = loadLibcrypto();
// OpenSSL 3 renamed EVP_PKEY_base_id/bits to get_*; 1.1 only has the old names
const pkeyBaseId = has(C, "EVP_PKEY_get_base_id") ? C.EVP_PKEY_get_base_id : C.EVP_PKEY_base_id;
const pkeyBits = has(C, "EVP_PKEY_get_bits") ? C.EVP_PKEY_get_bits : C.EVP_PKEY_bits;
const EVP_PKEY_RSA = 6;

export type DigestName = "sha256" | "sha384" | "sha512";
const DIGESTS = new LuaTable<string, unknown>();
DIGESTS.set("sha256", C.EVP_sha256());
DIGESTS.set("sha384", C.EVP_sha384());
DIGESTS.set("sha512", C.EVP_sha512());

/** The digest a JWS algorithm uses (HS256 / RS256 -> sha256, ...). */
export function digestOf(alg: string): DigestName {
  const bits = string.sub(alg, 3);
  return bits === "384" ? "sha384" : bits === "512" ? "sha512" : "sha256";
}

// output buffers, allocated once per process (a worker handles one request at a time between yields,
// and nothing here yields)
const macBuf = ffi.new("unsigned char[?]", 64);
const macLen = ffi.new("unsigned int[1]");

/** HMAC of `msg` with `key` (raw bytes). */
export function hmac(digest: DigestName, key: string, msg: string): string {
  const out = C.HMAC(DIGESTS.get(digest), key, key.length, msg, msg.length, macBuf, macLen);
  if (out === null) error("crypto: HMAC failed");
  return ffi.string(macBuf, macLen[0]);
}

// byte -> two lower-case hex digits, for one-call hex encoding with string.gsub
const HEX_OF = new LuaTable<string, string>();
for (let b = 0; b < 256; b++) HEX_OF.set(string.char(b), string.format("%02x", b));

/** A SHA-2 digest of `msg` (raw bytes). */
export function digest(name: DigestName, msg: string): string {
  if (C.EVP_Digest(msg, msg.length, macBuf, macLen, DIGESTS.get(name), null) !== 1) error("crypto: EVP_Digest failed");
  return ffi.string(macBuf, macLen[0]);
}

/** Lower-case hex of a byte string. */
export function toHex(s: string): string {
  const [out] = string.gsub(s, ".", HEX_OF as any);
  return out;
}

/** Constant-time equality of two byte strings (the length is not secret). */
export function constantTimeEquals(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  if (a.length === 0) return true;
  return C.CRYPTO_memcmp(a, b, a.length) === 0;
}

/** A parsed public key (an EVP_PKEY cdata, freed with it). */
export interface PublicKey {
  pkey: any;
  bits: number;
}

/** Parses an RSA public key (PEM SubjectPublicKeyInfo); returns the key or undefined and why. */
export function parseRsaPublicKey(pem: string): LuaMultiReturn<[PublicKey | undefined, string | undefined]> {
  const bio = C.BIO_new_mem_buf(pem, pem.length);
  if (bio === null) return $multi(undefined, "out of memory");
  const raw = C.PEM_read_bio_PUBKEY(bio, null, null, null);
  C.BIO_free(bio);
  if (raw === null) {
    C.ERR_clear_error();
    return $multi(undefined, "not a PEM public key (-----BEGIN PUBLIC KEY-----)");
  }
  const pkey = ffi.gc(raw, C.EVP_PKEY_free);
  if (pkeyBaseId(pkey) !== EVP_PKEY_RSA) return $multi(undefined, "not an RSA key");
  return $multi({ pkey, bits: pkeyBits(pkey) }, undefined);
}

/** Verifies an RSASSA-PKCS1-v1_5 signature of `msg` (RS256/384/512). */
export function rsaVerify(key: PublicKey, digest: DigestName, msg: string, sig: string): boolean {
  const ctx = C.EVP_MD_CTX_new();
  if (ctx === null) return false;
  let ok = C.EVP_DigestVerifyInit(ctx, null, DIGESTS.get(digest), null, key.pkey) === 1;
  if (ok) ok = C.EVP_DigestVerify(ctx, sig, sig.length, msg, msg.length) === 1;
  C.EVP_MD_CTX_free(ctx);
  if (!ok) C.ERR_clear_error();
  return ok;
}
