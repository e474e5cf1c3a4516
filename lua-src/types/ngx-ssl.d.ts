/**
 * lua-resty-core's `ngx.ssl` (the parts the tls feature uses): PEM parsing (any phase, the master included)
 * and the certificate of the current handshake (ssl_certificate_by_lua). Failures return undefined and a
 * message.
 * @noResolution
 */
declare module "ngx.ssl" {
  /** A parsed certificate chain or private key (cdata, freed by the GC). */
  type Parsed = { readonly __parsedPem: unique symbol };
  const ssl: {
    parse_pem_cert(this: void, pem: string): LuaMultiReturn<[Parsed | undefined, string | undefined]>;
    parse_pem_priv_key(this: void, pem: string): LuaMultiReturn<[Parsed | undefined, string | undefined]>;
    clear_certs(this: void): LuaMultiReturn<[true | undefined, string | undefined]>;
    set_cert(this: void, chain: Parsed): LuaMultiReturn<[true | undefined, string | undefined]>;
    set_priv_key(this: void, key: Parsed): LuaMultiReturn<[true | undefined, string | undefined]>;
    server_name(this: void): LuaMultiReturn<[string | undefined, string | undefined]>;
  };
  export = ssl;
}
