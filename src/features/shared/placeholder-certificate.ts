/**
 * The certificate nginx loads for a server whose certificate comes from an env() path. nginx refuses a TLS
 * server without an `ssl_certificate`, yet that path is only known when nginx starts; the Lua runtime then
 * replaces this certificate in every handshake (`ssl_certificate_by_lua`), and aborts the handshake when it
 * has nothing to present, so this one is never sent to a client. Its key is public (it is in every such
 * bundle) on purpose: it protects nothing. Self-signed EC P-256, valid until 2126.
 */
export const PLACEHOLDER_CERTIFICATE = `-----BEGIN CERTIFICATE-----
MIIBuzCCAWGgAwIBAgIUZV3UufzI/x8BRZxiId3fKeUiX8kwCgYIKoZIzj0EAwIw
MjEwMC4GA1UEAwwnY2RuLWJ1aWxkIHBsYWNlaG9sZGVyIChuZXZlciBwcmVzZW50
ZWQpMCAXDTI2MTIwMTEwMzMzN1oYDzIxMjYxMTA3MTAzMzM3WjAyMTAwLgYDVQQD
DCdjZG4tYnVpbGQgcGxhY2Vob2xkZXIgKG5ldmVyIHByZXNlbnRlZCkwWTATBgcq
hkjOPQIBBggqhkjOPQMBBwNCAARBxmEPG6an1E1xS1XcQZhYcXmtIA6amGLqTFzp
V2JG6sKAgGR4qwE58Df7Lz6jT0+QhHu51flVigNgZjnuZQwao1MwUTAdBgNVHQ4E
FgQU2PicCfWc3jk5PmyDiiuibMggjfwwHwYDVR0jBBgwFoAU2PicCfWc3jk5PmyD
iiuibMggjfwwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiEAs1hx
sY+b1WQxyE8KlQSHc2aBAM149dU9dbRU3BCPDEECIFrjDJ3DWOdp2+xtn0fuwUtB
mBTbnLnMdZaClyxZKnH3
-----END CERTIFICATE-----
`;

export const PLACEHOLDER_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgJM9B1wFbRDfAQsE+
5cLoBa8BULWUSH8QR1mO33cKlt6hRANCAARBxmEPG6an1E1xS1XcQZhYcXmtIA6a
mGLqTFzpV2JG6sKAgGR4qwE58Df7Lz6jT0+QhHu51flVigNgZjnuZQwa
-----END PRIVATE KEY-----
`;

/** Where the bundle carries them (relative to the nginx prefix). */
export const PLACEHOLDER_PATHS = { certificate: "tls/placeholder.pem", key: "tls/placeholder.key" } as const;
