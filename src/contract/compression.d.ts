/** Compression's runtime part (src/features/compression.ts -> lua-src/features/compression.ts). */
export interface CompressionData {
  /** Honour `Cache-Control: no-transform`: the edge does not compress such a response. */
  noTransform: true;
}
