import type { Feature } from "./shared/feature.js";
import type { EnvRef, Policy, TlsCertificate } from "../policy/types.js";
import type { X509Certificate } from "node:crypto";
import { error, pointer, warning, type Diagnostic } from "../validate/diagnostic.js";
import { checkDuration, checkSize } from "../validate/checks.js";
import { durationSeconds, sizeBytes } from "../util/units.js";
import { canStaple, certificateCovers, certificateNames, certificateValidity, parseCertificates, parsePrivateKey, readTlsFile } from "./shared/tls-files.js";
import { isIP } from "node:net";
import { createSecureContext } from "node:tls";
import { useEnv } from "../ir/env.js";
import type { EdgeIR } from "../ir/types.js";
import type { TlsFileSource } from "../contract/index.js";
import { PLACEHOLDER_CERTIFICATE, PLACEHOLDER_KEY, PLACEHOLDER_PATHS } from "./shared/placeholder-certificate.js";

/**
 * TLS 1.2 suites offered by default: forward secrecy (ECDHE) and AEAD only, AES-GCM first (hardware AES),
 * ChaCha20-Poly1305 for clients without it. No CBC, no RSA key exchange, no DHE (slow, needs dhparams).
 */
export const DEFAULT_CIPHERS = [
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-CHACHA20-POLY1305",
].join(":");

export const TLS_DEFAULTS = {
  port: 443,
  protocols: ["TLSv1.2", "TLSv1.3"] as const,
  sessionCacheSize: "10m",
  sessionTimeout: "1h",
  hstsMaxAge: "365d",
  redirectHttp: 308 as const,
};

/** A certificate warns this many days before it expires. */
const EXPIRY_WARNING_DAYS = 14;

const isEnv = (v: string | EnvRef): v is EnvRef => typeof v === "object";

/** The certificate chain of a literal path, or undefined (an env() path, or a file the checks reject). */
function loadChain(c: TlsCertificate): X509Certificate[] | undefined {
  if (isEnv(c.certificate)) return undefined;
  const r = readTlsFile(c.certificate);
  if (!("data" in r)) return undefined;
  const chain = parseCertificates(r.data);
  return chain.length ? chain : undefined;
}

/**
 * Which of the policy's server names each certificate serves (by SNI): the names a certificate lists
 * itself, then each other name to the first certificate without a list that covers it, else to the first
 * that covers it; a name no certificate covers goes to the first certificate, the default.
 */
export function assignServerNames(policy: Policy, chains: readonly (X509Certificate[] | undefined)[]): { names: string[][]; uncovered: string[] } {
  const certs = policy.tls?.certificates ?? [];
  const names = policy.serverNames ?? [];
  const out = certs.map(() => [] as string[]);
  const taken = new Set<string>();
  certs.forEach((c, i) => {
    for (const n of c.serverNames ?? []) {
      const known = names.find((m) => m.toLowerCase() === n.toLowerCase());
      if (known !== undefined && !taken.has(known.toLowerCase())) {
        out[i]!.push(known);
        taken.add(known.toLowerCase());
      }
    }
  });
  const uncovered: string[] = [];
  for (const n of names) {
    if (taken.has(n.toLowerCase())) continue;
    const covers = (j: number) => chains[j] !== undefined && certificateCovers(chains[j]![0]!, n);
    let i = certs.findIndex((c, j) => c.serverNames === undefined && (covers(j) || (isEnv(c.certificate) && certs.length === 1)));
    if (i < 0) i = certs.findIndex((_, j) => covers(j));
    if (i >= 0) out[i]!.push(n);
    else {
      out[0]?.push(n);
      uncovered.push(n);
    }
    taken.add(n.toLowerCase());
  }
  return { names: out, uncovered };
}

function checkFile(path: string, at: string): { data: Buffer } | Diagnostic {
  const r = readTlsFile(path);
  if ("data" in r) return r;
  return error("tlsFileUnreadable", at, `${path} ${r.problem}`, "fix the path or the file's permissions; a path only the edge hosts have can be given with env(\"NAME\")");
}

/**
 * Checks a certificate (and its key) given by literal paths: readable, PEM, key pair, validity. Shared with
 * the origins' client certificate. Returns the chain when the certificate itself is usable.
 */
export function checkCertificatePair(certPath: string, keyPath: string | undefined, certAt: string, keyAt: string, now = new Date()): { diagnostics: Diagnostic[]; chain?: X509Certificate[] } {
  const out: Diagnostic[] = [];
  const cf = checkFile(certPath, certAt);
  let chain: X509Certificate[] | undefined;
  if (!("data" in cf)) out.push(cf);
  else {
    chain = parseCertificates(cf.data);
    if (chain.length === 0) {
      out.push(error("tlsCertificateInvalid", certAt, `${certPath} holds no PEM certificate`, "point to the PEM certificate chain (-----BEGIN CERTIFICATE-----), not the key or a DER file"));
      chain = undefined;
    } else {
      const leaf = chain[0]!;
      const v = certificateValidity(leaf, now);
      if (v.state === "expired") out.push(error("tlsCertificateExpired", certAt, `the certificate in ${certPath} expired on ${leaf.validTo}`, "renew it"));
      else if (v.state === "notYetValid") out.push(error("tlsCertificateExpired", certAt, `the certificate in ${certPath} is not valid before ${leaf.validFrom}`, "check the clock of the machine that issued it, or wait"));
      else if (v.daysLeft < EXPIRY_WARNING_DAYS) out.push(warning("tlsCertificateExpiresSoon", certAt, `the certificate in ${certPath} expires on ${leaf.validTo} (in ${v.daysLeft} days)`, "renew it and rebuild"));
    }
  }
  if (keyPath !== undefined) {
    const kf = checkFile(keyPath, keyAt);
    if (!("data" in kf)) out.push(kf);
    else {
      const key = parsePrivateKey(kf.data);
      if (!key) out.push(error("tlsKeyInvalid", keyAt, `${keyPath} holds no unencrypted PEM private key`, "point to the private key; remove a passphrase with `openssl pkey -in enc.key -out plain.key`"));
      else if (chain && !chain[0]!.checkPrivateKey(key)) {
        out.push(error("tlsKeyMismatch", keyAt, `the key in ${keyPath} is not the private key of the certificate in ${certPath}`, "pair each certificate with its own key"));
      }
    }
  }
  return { diagnostics: out, chain };
}

/** A PEM bundle of CA certificates given by a literal path (origin `trustedCa`, OCSP `verifyWith`). */
export function checkCaFile(path: string, at: string): Diagnostic[] {
  const f = checkFile(path, at);
  if (!("data" in f)) return [f];
  return parseCertificates(f.data).length ? [] : [error("tlsCertificateInvalid", at, `${path} holds no PEM certificate`, "point to a PEM file of CA certificates")];
}

function checkCertificates(policy: Policy): { diagnostics: Diagnostic[]; chains: (X509Certificate[] | undefined)[] } {
  const tls = policy.tls!;
  const out: Diagnostic[] = [];
  const chains: (X509Certificate[] | undefined)[] = [];
  const serverNames = policy.serverNames ?? [];
  tls.certificates.forEach((c, i) => {
    const at = (...s: (string | number)[]) => pointer("tls", "certificates", i, ...s);
    if (isEnv(c.certificate) || isEnv(c.key)) {
      for (const k of ["certificate", "key"] as const) {
        const v = c[k];
        if (isEnv(v)) out.push(warning("tlsEnvPathUnchecked", at(k), `the ${k} path comes from $${v.env} on the edge host, so it is checked only when nginx starts (a file it cannot use refuses the handshakes for this certificate, and the error log says why)`, "give a literal path to have it checked at build time"));
      }
      if (tls.certificates.length > 1 && c.serverNames === undefined) {
        out.push(error("tlsEnvPathNeedsNames", at("serverNames"), `certificate ${i} is read from an env() path, so the names it covers are unknown at build time`, "list the names it serves in serverNames"));
      }
    }
    let chain: X509Certificate[] | undefined;
    if (!isEnv(c.certificate)) {
      const r = checkCertificatePair(c.certificate, isEnv(c.key) ? undefined : c.key, at("certificate"), at("key"));
      out.push(...r.diagnostics);
      chain = r.chain;
    } else if (!isEnv(c.key)) {
      const kf = checkFile(c.key, at("key"));
      if (!("data" in kf)) out.push(kf);
    }
    chains.push(chain);
    if (chain && serverNames.length > 0 && !serverNames.some((n) => certificateCovers(chain![0]!, n))) {
      out.push(
        error(
          "tlsCertificateNoServerName",
          at("certificate"),
          `the certificate in ${c.certificate as string} is for ${certificateNames(chain[0]!).join(", ") || "(no DNS name)"}, none of serverNames (${serverNames.join(", ")})`,
          "use a certificate issued for the edge's names, or add the names it covers to serverNames",
        ),
      );
    }
    (c.serverNames ?? []).forEach((n, j) => {
      if (!serverNames.some((m) => m.toLowerCase() === n.toLowerCase())) {
        out.push(error("tlsCertificateUnknownName", at("serverNames", j), `"${n}" is not one of serverNames (${serverNames.join(", ") || "none"})`, "list only names of serverNames, or add it there"));
      }
      const earlier = tls.certificates.findIndex((o, k) => k < i && (o.serverNames ?? []).some((m) => m.toLowerCase() === n.toLowerCase()));
      if (earlier >= 0) out.push(error("tlsCertificateNameTaken", at("serverNames", j), `"${n}" is already served by certificate ${earlier}`, "keep each name in one certificate's serverNames"));
    });
  });
  if (tls.certificates.length > 1 && serverNames.length === 0) {
    out.push(error("tlsCertificatesNeedServerNames", pointer("tls", "certificates"), `${tls.certificates.length} certificates but no serverNames: the edge picks a certificate by the name a client asks for`, "add serverNames, or keep one certificate"));
  }
  if (serverNames.length > 0) {
    const { names, uncovered } = assignServerNames(policy, chains);
    for (const n of uncovered) {
      // only known when every certificate was read (a file the checks refused already has its error)
      if (chains.some((c) => c === undefined)) continue;
      out.push(warning("tlsServerNameUncovered", pointer("serverNames", serverNames.indexOf(n)), `no certificate covers "${n}": clients asking for it get certificate 0 and a name mismatch`, "add a certificate for it, or remove it from serverNames"));
    }
    names.forEach((list, i) => {
      const chain = chains[i];
      if (list.length === 0 && chain && serverNames.some((n) => certificateCovers(chain[0]!, n))) {
        out.push(warning("tlsCertificateUnused", pointer("tls", "certificates", i), `every name certificate ${i} covers is served by an earlier certificate, so it is never presented`, "remove it, or give it names with serverNames"));
      }
    });
  }
  if (tls.ocspStapling) {
    chains.forEach((chain, i) => {
      if (chain && !canStaple(chain, tls.ocspStapling?.verifyWith)) {
        out.push(warning("ocspNoResponder", pointer("tls", "certificates", i, "certificate"), `the certificate in ${tls.certificates[i]!.certificate as string} names no OCSP responder, or its issuer is not in the file: nothing is stapled for it`, "add the issuer to the file after the certificate, or remove ocspStapling"));
      }
    });
  }
  return { diagnostics: out, chains };
}

function checkTls(policy: Policy): Diagnostic[] {
  const out: Diagnostic[] = [];
  const tls = policy.tls;
  const https = policy.listen?.https;
  if (https && !tls) out.push(error("httpsWithoutTls", pointer("listen", "https"), "listen.https needs certificates", 'add tls: { certificates: [{ certificate: "/etc/edge/tls/site.pem", key: "/etc/edge/tls/site.key" }] }'));
  if (tls && !https) out.push(error("tlsWithoutHttps", pointer("tls"), "tls is set but listen.https opens no TLS port", "add listen: { https: { port: 443 } }, or remove tls"));
  if (https) {
    const port = https.port ?? TLS_DEFAULTS.port;
    const httpPort = policy.listen?.http ?? 80;
    if (port === httpPort) out.push(error("httpsPortClash", pointer("listen", "https", "port"), `port ${port} is also the plain HTTP port`, `use another port than ${httpPort} for one of them`));
    const address = https.address;
    if (address !== undefined && address !== "*") {
      const ok = address.startsWith("[") ? address.endsWith("]") && isIP(address.slice(1, -1)) === 6 : isIP(address) === 4;
      if (!ok) out.push(error("invalidListenAddress", pointer("listen", "https", "address"), `"${address}" is not an IPv4 address or an IPv6 address in brackets`, 'e.g. "127.0.0.1", "[::1]" or "*"'));
    }
  }
  if (!tls) return out;
  out.push(...checkCertificates(policy).diagnostics);
  if (tls.ciphers !== undefined) {
    // the same OpenSSL call nginx makes (SSL_CTX_set_cipher_list): unknown names are skipped, no match fails
    try {
      createSecureContext({ ciphers: tls.ciphers });
    } catch (err) {
      out.push(error("tlsCiphersInvalid", pointer("tls", "ciphers"), `OpenSSL finds no cipher suite in "${tls.ciphers}" (${(err as Error).message})`, "use OpenSSL cipher names, or remove ciphers for the default"));
    }
  }
  const s = tls.sessions;
  out.push(...checkSize(s?.cacheSize === "0" ? undefined : s?.cacheSize, pointer("tls", "sessions", "cacheSize"), { min: 8192, minText: '"8k"', max: 1024 ** 3, maxText: '"1g"' }));
  out.push(...checkDuration(s?.timeout, pointer("tls", "sessions", "timeout")));
  if (Array.isArray(s?.tickets)) {
    s.tickets.forEach((p, i) => {
      const f = checkFile(p, pointer("tls", "sessions", "tickets", i));
      if (!("data" in f)) out.push(f);
      else if (f.data.length !== 80 && f.data.length !== 48) out.push(error("tlsTicketKeyInvalid", pointer("tls", "sessions", "tickets", i), `${p} holds ${f.data.length} bytes; a ticket key file holds 80 (or 48)`, "make one with `openssl rand 80 > ticket.key`"));
    });
  }
  const o = tls.ocspStapling;
  if (o) {
    o.resolvers.forEach((r, i) => {
      const ip = r.startsWith("[") && r.endsWith("]") ? isIP(r.slice(1, -1)) === 6 : isIP(r) === 4;
      if (!ip) out.push(error("invalidResolverAddress", pointer("tls", "ocspStapling", "resolvers", i), `"${r}" is not an IP address`, 'e.g. "1.1.1.1" or "[2606:4700:4700::1111]"'));
    });
    if (o.verifyWith !== undefined) out.push(...checkCaFile(o.verifyWith, pointer("tls", "ocspStapling", "verifyWith")));
  }
  const h = tls.hsts;
  if (h) {
    out.push(...checkDuration(h.maxAge, pointer("tls", "hsts", "maxAge"), { allowZero: true }));
    const secs = durationSeconds(h.maxAge ?? TLS_DEFAULTS.hstsMaxAge);
    if (h.preload && (!h.includeSubDomains || (secs !== undefined && secs < 31_536_000))) {
      out.push(warning("hstsPreloadRequirements", pointer("tls", "hsts", "preload"), "the preload list requires includeSubDomains and a max-age of at least one year", 'set includeSubDomains: true and maxAge: "365d", or remove preload'));
    }
  }
  return out;
}

/** The value of `Strict-Transport-Security`. */
export function hstsValue(h: NonNullable<NonNullable<Policy["tls"]>["hsts"]>): string {
  const parts = [`max-age=${durationSeconds(h.maxAge ?? TLS_DEFAULTS.hstsMaxAge)}`];
  if (h.includeSubDomains) parts.push("includeSubDomains");
  if (h.preload) parts.push("preload");
  return parts.join("; ");
}

/**
 * Certificates from env() paths: the Lua runtime reads them in the master when nginx starts and presents
 * them by SNI (`ssl_certificate_by_lua`); nginx itself loads the bundle's placeholder, never presented.
 */
function addLuaCertificates(ir: EdgeIR, certificates: { certificate: TlsFileSource; key: TlsFileSource }[]): void {
  ir.luaData.tls = { certificates };
  ir.files.push({ path: PLACEHOLDER_PATHS.certificate, text: PLACEHOLDER_CERTIFICATE }, { path: PLACEHOLDER_PATHS.key, text: PLACEHOLDER_KEY });
}

/** Client TLS: the HTTPS listener, one server per certificate (chosen by SNI), sessions, HSTS, redirect. */
export const tls: Feature = {
  name: "tls",
  check: checkTls,
  runtime: { key: "tls", stages: { initWorker: { tls: true } } },
  lower(policy, ir) {
    const tls = policy.tls;
    const https = policy.listen?.https;
    if (!tls || !https) return;
    const address = https.address ?? policy.listen?.address;
    const port = https.port ?? TLS_DEFAULTS.port;
    ir.server.https = { address: address === undefined || address === "*" ? null : address, port, http2: https.http2 ?? true };
    const chains = tls.certificates.map(loadChain);
    const { names } = assignServerNames(policy, chains);
    const stapling = tls.ocspStapling;
    const fromLua: { certificate: TlsFileSource; key: TlsFileSource }[] = [];
    const source = (v: string | EnvRef): TlsFileSource => (isEnv(v) ? { env: useEnv(ir, v) } : { path: v });
    const block = (c: TlsCertificate, i: number, serverNames: string[]) => {
      const lua = isEnv(c.certificate) || isEnv(c.key);
      if (lua) fromLua.push({ certificate: source(c.certificate), key: source(c.key) });
      return {
        names: serverNames,
        tls: {
          certificate: lua ? PLACEHOLDER_PATHS.certificate : (c.certificate as string),
          key: lua ? PLACEHOLDER_PATHS.key : (c.key as string),
          stapling: stapling !== undefined && chains[i] !== undefined && canStaple(chains[i]!, stapling.verifyWith) ? { resolvers: stapling.resolvers, verifyWith: stapling.verifyWith ?? null } : null,
          hsts: tls.hsts !== undefined,
          lua: lua ? { index: fromLua.length - 1 } : null,
        },
      };
    };
    if ((policy.serverNames ?? []).length === 0) {
      ir.server.blocks = [block(tls.certificates[0]!, 0, [])];
    } else {
      ir.server.blocks = tls.certificates.flatMap((c, i) => (names[i]!.length > 0 ? [block(c, i, names[i]!)] : []));
    }
    if (fromLua.length > 0) addLuaCertificates(ir, fromLua);
    const s = tls.sessions ?? {};
    const cacheSize = s.cacheSize ?? TLS_DEFAULTS.sessionCacheSize;
    const redirect = tls.redirectHttp ?? TLS_DEFAULTS.redirectHttp;
    if (redirect !== false) {
      ir.server.redirect = { status: redirect, target: port === 443 ? "https://$host$request_uri" : `https://$host:${port}$request_uri` };
    }
    ir.slots.http.push({
      partial: "tls",
      data: {
        protocols: [...(tls.protocols ?? TLS_DEFAULTS.protocols)].sort(),
        ciphers: tls.ciphers ?? DEFAULT_CIPHERS,
        sessionCache: sizeBytes(cacheSize) === 0 || cacheSize === "0" ? null : cacheSize,
        sessionTimeout: s.timeout ?? TLS_DEFAULTS.sessionTimeout,
        tickets: s.tickets !== false,
        ticketKeys: Array.isArray(s.tickets) ? s.tickets : [],
        hsts: tls.hsts ? hstsValue(tls.hsts) : null,
      },
    });
  },
};
