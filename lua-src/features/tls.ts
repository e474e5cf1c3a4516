import type { LuaFeature } from "../core/feature";
import type { TlsFileSource } from "../../src/contract/index";
import { readEnv } from "../core/env";
import * as ssl from "ngx.ssl";

/**
 * Certificates whose paths come from env(): the master reads and parses them once, in init_by_lua (as root,
 * like nginx's own `ssl_certificate`), and `presentCertificate(i)` hands certificate `i` to each handshake
 * of its server (ssl_certificate_by_lua). A certificate that could not be loaded fails closed: its handshakes
 * are aborted (nginx's placeholder is never presented), and worker 0 logs why at start.
 */

type Parsed = NonNullable<ReturnType<typeof ssl.parse_pem_cert>[0]>;
const loaded: ({ chain: Parsed; key: Parsed } | undefined)[] = [];
const problems: string[] = [];

/** The text of a PEM file, or why it cannot be had. */
function readPem(src: TlsFileSource, what: string): LuaMultiReturn<[string | undefined, string | undefined]> {
  let path = src.path;
  if (src.env !== undefined) {
    path = readEnv(src.env);
    if (path === undefined) return $multi(undefined, "the environment variable " + src.env + " (path of the " + what + ") is not set");
  }
  const [f, err] = io.open(path!, "rb");
  if (f === undefined) return $multi(undefined, "cannot read the " + what + " file " + path! + ": " + tostring(err));
  const text = f.read("*a") as unknown as string | undefined;
  f.close();
  if (text === undefined || text === "") return $multi(undefined, "the " + what + " file " + path! + " is empty");
  return $multi(text, undefined);
}

function load(i: number, c: { certificate: TlsFileSource; key: TlsFileSource }): string | undefined {
  const [certPem, certErr] = readPem(c.certificate, "certificate");
  if (certPem === undefined) return certErr;
  const [keyPem, keyErr] = readPem(c.key, "private key");
  if (keyPem === undefined) return keyErr;
  const [chain, chainErr] = ssl.parse_pem_cert(certPem);
  if (chain === undefined) return "the certificate file holds no usable PEM certificate: " + tostring(chainErr);
  const [key, parseErr] = ssl.parse_pem_priv_key(keyPem);
  if (key === undefined) return "the private key file holds no usable unencrypted PEM key: " + tostring(parseErr);
  loaded[i] = { chain, key };
  return undefined;
}

/** ssl_certificate_by_lua of a server whose certificate is entry `i`: present it, or abort the handshake. */
export function presentCertificate(this: void, i: number): void {
  const c = loaded[i];
  if (c === undefined) {
    ngx.log(ngx.ERR, "tls: certificate ", i, " could not be loaded at start; refusing the handshake");
    return ngx.exit(ngx.ERROR);
  }
  const [cleared, clearErr] = ssl.clear_certs();
  if (cleared === undefined) {
    ngx.log(ngx.ERR, "tls: cannot clear the placeholder certificate: ", clearErr);
    return ngx.exit(ngx.ERROR);
  }
  const [set, setErr] = ssl.set_cert(c.chain);
  if (set === undefined) {
    ngx.log(ngx.ERR, "tls: cannot set certificate ", i, ": ", setErr);
    return ngx.exit(ngx.ERROR);
  }
  // OpenSSL checks here that the key is the certificate's
  const [keyed, keyErr] = ssl.set_priv_key(c.key);
  if (keyed === undefined) {
    ngx.log(ngx.ERR, "tls: cannot set the private key of certificate ", i, ": ", keyErr);
    return ngx.exit(ngx.ERROR);
  }
}

export const tls: LuaFeature<"tls"> = {
  key: "tls",
  setup(data) {
    data.certificates.forEach((c, i) => {
      const problem = load(i, c);
      if (problem !== undefined) problems.push("tls: certificate " + i + ": " + problem + "; its handshakes are refused");
    });
    return {
      initWorker: {
        // logged from worker 0's init_worker: at init_by_lua time the error log of the bundle is not open yet
        tls: () => {
          if (ngx.worker.id() !== 0) return;
          for (const p of problems) ngx.log(ngx.ERR, p);
        },
      },
    };
  },
};
