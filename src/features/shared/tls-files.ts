/**
 * Build-time reading of the TLS files a policy names (certificates, keys, CA bundles, ticket keys), with
 * node:crypto. Paths given by `env()` are only known on the edge host and never reach these helpers.
 *
 * This is the one place a check reads the disk: a certificate that does not match its key, or has expired,
 * would otherwise only show when nginx refuses to start on the edge host.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";

/** The bytes of a file, or why it cannot be read (a sentence fragment: "does not exist", ...). */
export function readTlsFile(path: string): { data: Buffer } | { problem: string } {
  try {
    return { data: readFileSync(path) };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return { problem: "does not exist" };
    if (code === "EACCES" || code === "EPERM") return { problem: "cannot be read (permission denied)" };
    if (code === "EISDIR") return { problem: "is a directory" };
    return { problem: `cannot be read (${code ?? String(err)})` };
  }
}

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Every certificate of a PEM file, in order (empty when there is none or one does not parse). */
export function parseCertificates(pem: Buffer): X509Certificate[] {
  const blocks = pem.toString("latin1").match(CERT_BLOCK) ?? [];
  try {
    return blocks.map((b) => new X509Certificate(b));
  } catch {
    return [];
  }
}

/** The private key of a PEM file, or undefined (none, encrypted, or unreadable by OpenSSL). */
export function parsePrivateKey(pem: Buffer): KeyObject | undefined {
  if (!/-----BEGIN (RSA |EC |)PRIVATE KEY-----/.test(pem.toString("latin1"))) return undefined;
  try {
    return createPrivateKey({ key: pem, format: "pem" });
  } catch {
    return undefined;
  }
}

/** The DNS names a certificate is for: its subject alternative names, else its common name. */
export function certificateNames(cert: X509Certificate): string[] {
  const san = cert.subjectAltName;
  if (san) {
    return san
      .split(/,\s*/)
      .filter((e) => e.startsWith("DNS:"))
      .map((e) => e.slice(4).toLowerCase());
  }
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject);
  return cn ? [cn[1]!.toLowerCase()] : [];
}

/**
 * Whether a certificate is valid for a server name of the policy. A wildcard server name (`*.example.com`)
 * is covered by the same wildcard in the certificate.
 */
export function certificateCovers(cert: X509Certificate, serverName: string): boolean {
  const name = serverName.toLowerCase();
  if (name.startsWith("*.")) return certificateNames(cert).includes(name);
  return cert.checkHost(name) !== undefined;
}

/** Validity of a certificate at `now`: "expired", "not yet valid", days left, ... */
export function certificateValidity(cert: X509Certificate, now: Date): { state: "expired" | "notYetValid" | "valid"; daysLeft: number } {
  const from = new Date(cert.validFrom).getTime();
  const to = new Date(cert.validTo).getTime();
  const daysLeft = Math.floor((to - now.getTime()) / 86_400_000);
  if (now.getTime() > to) return { state: "expired", daysLeft };
  if (now.getTime() < from) return { state: "notYetValid", daysLeft };
  return { state: "valid", daysLeft };
}

/**
 * Whether nginx can staple OCSP responses for a chain: the certificate names an OCSP responder, and its
 * issuer follows it in the file or is in `trustedFile` (nginx looks in both).
 */
export function canStaple(chain: readonly X509Certificate[], trustedFile?: string): boolean {
  const leaf = chain[0];
  if (!leaf || !/OCSP - URI:/.test(leaf.infoAccess ?? "")) return false;
  let candidates = chain.slice(1);
  if (trustedFile !== undefined) {
    const r = readTlsFile(trustedFile);
    if ("data" in r) candidates = [...candidates, ...parseCertificates(r.data)];
  }
  return candidates.some((c) => leaf.checkIssued(c));
}
