/**
 * What `deploy` ships: a bundle built from a policy, or a bundle folder written by `cdn-build build`.
 * Either way it is checked against its manifest, and only the files the manifest lists are shipped
 * (never logs/, cache/, temp/, and never a secret: secrets stay in the host's environment).
 */
import { createHash } from "node:crypto";
import { chmod, mkdtemp, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { execa } from "execa";
import { compileFile } from "../compile.js";
import { healthPath } from "../features/health.js";
import type { Target } from "../ir/targets.js";
import { formatDiagnostic, hasErrors, type Diagnostic } from "../validate/diagnostic.js";

export interface Manifest {
  generatedBy: string;
  toolVersion: string;
  policy: string;
  target: string;
  files: Record<string, { sha256: string; bytes: number }>;
}

export interface DeployBundle {
  files: Map<string, Buffer>;
  manifest: Manifest;
  /** sha256 of manifest.json (which lists the sha256 of every other file). */
  sha: string;
  /** The policy's health path, when it has one. */
  healthPath?: string;
  /** The HTTP port the edge listens on. */
  port: number;
  /** The bind address, when the policy sets one (other than `*`). */
  address?: string;
}

export class SourceError extends Error {
  constructor(
    message: string,
    readonly diagnostics: Diagnostic[] = [],
  ) {
    super(message);
  }
}

const sha256 = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

/** Builds `file` with `env` set in process.env while the policy module runs (policies may read it). */
export async function bundleFromPolicy(file: string, target: Target, env: Record<string, string> = {}): Promise<DeployBundle> {
  const saved = new Map<string, string | undefined>();
  for (const [k, v] of Object.entries(env)) {
    saved.set(k, process.env[k]);
    process.env[k] = v;
  }
  let result;
  try {
    result = await compileFile(resolve(file), { target });
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
  const { bundle, diagnostics, policy } = result;
  if (!bundle || !policy || hasErrors(diagnostics)) {
    const text = diagnostics.filter((d) => d.severity === "error").map(formatDiagnostic).join("\n");
    throw new SourceError(`the policy ${file} is invalid:\n${text}`, diagnostics);
  }
  const files = new Map<string, Buffer>();
  for (const [p, t] of bundle.files) files.set(p, Buffer.from(t));
  const manifestText = files.get("manifest.json")!;
  const address = policy.listen?.address;
  return {
    files,
    manifest: JSON.parse(manifestText.toString("utf8")) as Manifest,
    sha: sha256(manifestText),
    healthPath: healthPath(policy),
    port: policy.listen?.http ?? 80,
    address: address && address !== "*" ? address.replace(/^\[|\]$/g, "") : undefined,
  };
}

/** Reads a bundle folder, checking every file against manifest.json. */
export async function bundleFromDir(dir: string): Promise<DeployBundle> {
  let manifestText: Buffer;
  try {
    manifestText = await readFile(join(dir, "manifest.json"));
  } catch {
    throw new SourceError(`${dir} has no manifest.json: not a bundle written by \`cdn-build build\``);
  }
  let manifest: Manifest;
  try {
    manifest = JSON.parse(manifestText.toString("utf8")) as Manifest;
  } catch (e) {
    throw new SourceError(`${dir}/manifest.json is not valid JSON: ${(e as Error).message}`);
  }
  if (manifest?.generatedBy !== "cdn-build" || typeof manifest.files !== "object" || !manifest.files) {
    throw new SourceError(`${dir}/manifest.json was not written by cdn-build`);
  }
  const files = new Map<string, Buffer>();
  const problems: string[] = [];
  for (const [p, meta] of Object.entries(manifest.files)) {
    if (p.startsWith("/") || p.split("/").includes("..")) {
      problems.push(`${p}: path outside the bundle`);
      continue;
    }
    try {
      const data = await readFile(join(dir, p));
      if (sha256(data) !== meta.sha256) problems.push(`${p}: sha256 differs from the manifest (edited after the build?)`);
      files.set(p, data);
    } catch {
      problems.push(`${p}: missing`);
    }
  }
  if (problems.length) throw new SourceError(`the bundle ${dir} does not match its manifest:\n  ${problems.join("\n  ")}`);
  files.set("manifest.json", manifestText);
  return { files, manifest, sha: sha256(manifestText), ...healthFromConf(files.get("nginx.conf")?.toString("utf8") ?? "") };
}

/** The listen port and address and the health path of a generated nginx.conf. */
export function healthFromConf(conf: string): Pick<DeployBundle, "healthPath" | "port" | "address"> {
  const listen = /^\s*listen\s+(?:(\[[^\]]+\]|[^:\s;]+):)?(\d+)\b/m.exec(conf);
  const health = /location = "([^"]+)" \{\s*access_log off;\s*default_type text\/plain;\s*return 200 "ok\\n";/.exec(conf);
  const address = listen?.[1] && listen[1] !== "*" ? listen[1].replace(/^\[|\]$/g, "") : undefined;
  return { healthPath: health?.[1], port: listen ? Number(listen[2]) : 80, address };
}

export async function isDirectory(p: string): Promise<boolean> {
  return stat(p).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

/** A tar stream of the bundle's files (what `receive` unpacks on the host). */
export async function tarBundle(bundle: DeployBundle): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), "cdn-deploy-"));
  try {
    await chmod(dir, 0o755); // tar records the mode of ".", which becomes the release folder's
    for (const [p, data] of bundle.files) {
      await mkdir(dirname(join(dir, p)), { recursive: true });
      await writeFile(join(dir, p), data, { mode: 0o644 });
    }
    const r = await execa("tar", ["-C", dir, "-cf", "-", "."], { encoding: "buffer" });
    return Buffer.from(r.stdout as Uint8Array);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
