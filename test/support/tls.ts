/**
 * Test certificates made with the `openssl` command line: a CA, and certificates it signs for some DNS
 * names. Everything goes into a fresh world-traversable folder, the files with the usual mode of new files
 * (0644), like a user's `/etc/edge/tls`: the nginx master (root) reads them, the workers never need to.
 *
 *   const pki = await makePki();
 *   const shop = await pki.issue("shop", ["shop.test", "www.shop.test"]);
 *   ... shop.cert, shop.key (paths), pki.caFile, pki.caPem ...
 *   await pki.remove();
 */
import { execFile } from "node:child_process";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import { bootBuilt, projectDir, type BuildOptions, type Edge } from "./edge.js";
import { freePort } from "../../src/runtime/nginx.js";
import type { HttpsListen, Policy } from "../../src/policy/types.js";
import type { TestPolicy } from "./policy.js";

const run = promisify(execFile);

export interface Issued {
  /** PEM file: the certificate, then the CA (the chain a server sends). */
  cert: string;
  /** PEM file: the certificate alone. */
  leaf: string;
  key: string;
}

export interface Pki {
  dir: string;
  /** The CA certificate (PEM file) and its text. */
  caFile: string;
  caPem: string;
  /** A certificate for `names` (DNS subject alternative names), signed by the CA, valid `days` days. */
  issue(base: string, names: string[], opts?: { days?: number; rsa?: boolean; ocspUrl?: string }): Promise<Issued>;
  /** A self-signed certificate (no CA), for "untrusted" cases. */
  selfSigned(base: string, names: string[]): Promise<Issued>;
  remove(): Promise<void>;
}

async function openssl(cwd: string, args: string[]): Promise<void> {
  await run("openssl", args, { cwd, timeout: 20_000 });
}

/**
 * A new private key in `dir/name`: EC P-256 (fast handshakes), or 2048-bit RSA with `rsa`. openssl prints
 * it and the file is written here, so it gets the usual mode of a new file (0644 with umask 022) like the
 * certificates, rather than the 0600 openssl gives the key files it writes itself.
 */
async function newKey(dir: string, name: string, rsa = false): Promise<void> {
  const args = rsa ? ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"] : ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];
  const { stdout } = await run("openssl", args, { cwd: dir, timeout: 20_000 });
  await writeFile(join(dir, name), stdout);
}

export async function makePki(name = "cdn-build test CA"): Promise<Pki> {
  const dir = await projectDir("cdn-tls-");
  await newKey(dir, "ca.key");
  await openssl(dir, ["req", "-x509", "-key", "ca.key", "-out", "ca.pem", "-days", "30", "-subj", `/CN=${name}`, "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
  const ext = (names: string[]) => `subjectAltName=${names.map((n) => `DNS:${n}`).join(",")}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n`;
  const caPem = await readFile(join(dir, "ca.pem"), "utf8");
  return {
    dir,
    caFile: join(dir, "ca.pem"),
    caPem,
    async issue(base, names, opts = {}) {
      await writeFile(join(dir, `${base}.ext`), ext(names) + (opts.ocspUrl ? `authorityInfoAccess=OCSP;URI:${opts.ocspUrl}\n` : ""));
      await newKey(dir, `${base}.key`, opts.rsa);
      await openssl(dir, ["req", "-new", "-key", `${base}.key`, "-out", `${base}.csr`, "-subj", `/CN=${names[0] ?? base}`]);
      await openssl(dir, ["x509", "-req", "-in", `${base}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", `${base}.leaf.pem`, "-days", String(opts.days ?? 30), "-extfile", `${base}.ext`]);
      const leaf = await readFile(join(dir, `${base}.leaf.pem`), "utf8");
      await writeFile(join(dir, `${base}.pem`), leaf + caPem);
      return { cert: join(dir, `${base}.pem`), leaf: join(dir, `${base}.leaf.pem`), key: join(dir, `${base}.key`) };
    },
    async selfSigned(base, names) {
      await newKey(dir, `${base}.key`);
      await openssl(dir, ["req", "-x509", "-key", `${base}.key`, "-out", `${base}.pem`, "-days", "30", "-subj", `/CN=${names[0] ?? base}`, "-addext", `subjectAltName=${names.map((n) => `DNS:${n}`).join(",")}`]);
      return { cert: join(dir, `${base}.pem`), leaf: join(dir, `${base}.pem`), key: join(dir, `${base}.key`) };
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

export interface TlsEdge extends Edge {
  /** The TLS port (the plain one is `port`). */
  httpsPort: number;
}

/**
 * Compiles, writes (as the CLI does) and boots a policy with a TLS listener, both ports free ones on
 * 127.0.0.1 (`https` settings other than the port and address are kept). `stop()` also removes the bundle.
 */
export async function bootTlsEdge(p: TestPolicy, opts: { https?: Omit<HttpsListen, "port" | "address">; env?: Record<string, string> } & BuildOptions = {}): Promise<TlsEdge> {
  const port = await freePort();
  let httpsPort = await freePort();
  while (httpsPort === port) httpsPort = await freePort();
  const full = { ...p, listen: { http: port, address: "127.0.0.1", https: { ...opts.https, port: httpsPort } } } as Policy;
  return { ...(await bootBuilt(full, port, opts)), httpsPort };
}

export interface HttpsOrigin {
  /** "127.0.0.1:PORT" */
  address: string;
  /** Requests answered, with the SNI name and the client certificate's subject CN seen on their connection. */
  requests: { url: string; servername: string | false; clientCn: string | null }[];
  close(): Promise<void>;
}

/**
 * An HTTPS origin on 127.0.0.1 that answers every request with 200 "origin <url>". With `clientCa`, it
 * requires a client certificate signed by that CA (mutual TLS): a connection without one is refused.
 */
export async function startHttpsOrigin(opts: { cert: string; key: string; clientCa?: string }): Promise<HttpsOrigin> {
  const requests: HttpsOrigin["requests"] = [];
  const server = https.createServer(
    {
      cert: await readFile(opts.cert),
      key: await readFile(opts.key),
      ...(opts.clientCa ? { ca: await readFile(opts.clientCa), requestCert: true, rejectUnauthorized: true } : {}),
    },
    (req, res) => {
      const sock = req.socket as TLSSocket;
      const peer = opts.clientCa ? sock.getPeerCertificate() : undefined;
      const cn = peer?.subject?.CN;
      requests.push({ url: req.url ?? "", servername: sock.servername ?? false, clientCn: Array.isArray(cn) ? cn.join(",") : cn ?? null });
      res.writeHead(200, { "content-type": "text/plain" });
      res.end(`origin ${req.url}`);
    },
  );
  server.keepAliveTimeout = 2000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    address: `127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
