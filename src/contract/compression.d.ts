/** Compression's runtime part (src/features/compression.ts -> lua-src/features/compression.ts). */
export interface CompressionData {
  /** Honour `Cache-Control: no-transform`: the edge does not compress such a response. */
  noTransform: true;
  /** Media types nginx compresses (lower case; text/html always): their responses get Vary: Accept-Encoding. */
  types: Record<string, true>;
  /** Smallest body compressed (bytes, by Content-Length). */
  minLength: number;
}
