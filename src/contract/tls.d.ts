/** The tls feature's data (src/features/tls.ts -> lua-src/features/tls.ts): certificates given by env() paths. */

/** Where a PEM file is: a path read from an environment variable of the master, or a literal path. */
export interface TlsFileSource {
  env?: string;
  path?: string;
}

export interface TlsData {
  /**
   * The certificates the Lua runtime presents (`ssl_certificate_by_lua_block { cdn.certificate(i) }` with
   * `i` the index here): read by the master when nginx starts.
   */
  certificates: { certificate: TlsFileSource; key: TlsFileSource }[];
}
