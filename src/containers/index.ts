import { randomBytes } from "node:crypto";
import { lstat, mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import type { Bundle } from "../emit/index.js";
import type { Policy } from "../policy/types.js";
import { renderCompose } from "./compose.js";
import { ContainerPolicyError, edgeFacts, GENERATED } from "./facts.js";
import { renderK8s } from "./k8s.js";
import type { ContainerOptions } from "./options.js";

export { ContainerPolicyError, ContainerUsageError } from "./facts.js";
export { CONTAINER_ARGS, CONTAINER_HELP, parseContainerOptions, type ContainerOptions } from "./options.js";

/** The folder and the file the emitters own inside the bundle folder (never listed in its manifest). */
export const K8S_DIR = "k8s";
export const COMPOSE_FILE = "compose.yaml";

/** The container files of one build, rendered in memory before anything is written. */
export interface PreparedContainers {
  k8s?: Map<string, string>;
  compose?: string;
  warnings: string[];
  notes: string[];
}

const suffix = () => randomBytes(6).toString("hex");

async function kind(p: string): Promise<"dir" | "file" | "other" | undefined> {
  const st = await lstat(p).catch(() => undefined);
  if (!st) return undefined;
  return st.isDirectory() ? "dir" : st.isFile() ? "file" : "other";
}

async function generatedByUs(file: string): Promise<boolean> {
  const text = await readFile(file, "utf8").catch(() => "");
  return text.startsWith(GENERATED + " ");
}

/** A k8s folder we wrote (its kustomization.yaml has our header), or an empty one. */
async function ownK8sDir(dir: string): Promise<boolean> {
  const entries = await readdir(dir).catch(() => [] as string[]);
  return entries.length === 0 || (await generatedByUs(join(dir, "kustomization.yaml")));
}

/**
 * Renders the asked-for container files and checks that they can be installed, before the bundle is
 * written: a policy the containers cannot run, or a `k8s/` / `compose.yaml` in the way that a build did not
 * write, is refused (ContainerPolicyError) and nothing is written.
 */
export async function prepareContainers(policy: Policy, bundle: Bundle, toolVersion: string, opts: ContainerOptions | undefined, outDir: string): Promise<PreparedContainers> {
  const prepared: PreparedContainers = { warnings: [], notes: [] };
  const out = resolve(outDir);
  if (opts) {
    const facts = edgeFacts(policy, bundle, toolVersion);
    if (opts.emit.includes("k8s")) {
      const k = renderK8s(facts, opts);
      prepared.k8s = k.files;
      prepared.warnings.push(...k.warnings);
      prepared.notes.push(`wrote ${join(outDir, K8S_DIR)}/ (${[...k.files.keys()].join(", ")}; bundle in ConfigMap${k.configMaps.length > 1 ? "s" : ""} ${k.configMaps.join(", ")})`);
    }
    if (opts.emit.includes("compose")) {
      const c = renderCompose(facts, opts);
      prepared.compose = c.text;
      prepared.warnings.push(...c.warnings);
      prepared.notes.push(`wrote ${join(outDir, COMPOSE_FILE)}`);
    }
  }
  const k8sDir = join(out, K8S_DIR);
  const k8sKind = await kind(k8sDir);
  if (prepared.k8s && k8sKind !== undefined && (k8sKind !== "dir" || !(await ownK8sDir(k8sDir)))) {
    throw new ContainerPolicyError(`${k8sDir} exists and was not written by cdn-build (no kustomization.yaml of ours); refusing to replace it`);
  }
  const composeFile = join(out, COMPOSE_FILE);
  const composeKind = await kind(composeFile);
  if (prepared.compose !== undefined && composeKind !== undefined && (composeKind !== "file" || !(await generatedByUs(composeFile)))) {
    throw new ContainerPolicyError(`${composeFile} exists and was not written by cdn-build; refusing to replace it`);
  }
  return prepared;
}

/**
 * Installs the prepared files into the bundle folder (after the bundle itself was installed): `k8s/` is
 * written in full to a staging folder and swapped in by two renames, `compose.yaml` by a rename over the old
 * one. What an earlier build wrote and this one was not asked for is removed (a `k8s/` left behind would
 * deploy the previous bundle). Returns what it did, for the user.
 */
export async function installContainers(prepared: PreparedContainers, outDir: string): Promise<string[]> {
  const out = resolve(outDir);
  const done = [...prepared.notes];
  // leftovers of an interrupted earlier install
  for (const n of await readdir(out).catch(() => [] as string[])) {
    if (/^\.(k8s|compose\.yaml)\.(staging|old)-[0-9a-f]{12}$/.test(n)) await rm(join(out, n), { recursive: true, force: true });
  }
  const k8sDir = join(out, K8S_DIR);
  if (prepared.k8s) {
    const stage = join(out, `.${K8S_DIR}.staging-${suffix()}`);
    try {
      await mkdir(stage, { mode: 0o777 });
      // kustomization.yaml, the folder's marker, last
      const ordered = [...prepared.k8s].sort(([a], [b]) => Number(a === "kustomization.yaml") - Number(b === "kustomization.yaml"));
      for (const [path, text] of ordered) {
        await mkdir(dirname(join(stage, path)), { recursive: true, mode: 0o777 });
        await writeFile(join(stage, path), text, { mode: 0o666 });
      }
      const old = join(out, `.${K8S_DIR}.old-${suffix()}`);
      const had = (await kind(k8sDir)) !== undefined;
      if (had) await rename(k8sDir, old);
      await rename(stage, k8sDir);
      if (had) await rm(old, { recursive: true, force: true });
    } catch (err) {
      await rm(stage, { recursive: true, force: true });
      throw err;
    }
  } else if ((await kind(k8sDir)) === "dir" && (await generatedByUs(join(k8sDir, "kustomization.yaml")))) {
    await rm(k8sDir, { recursive: true, force: true });
    done.push(`removed ${join(outDir, K8S_DIR)}/ (written by an earlier build; not asked for with --emit k8s)`);
  }
  const composeFile = join(out, COMPOSE_FILE);
  if (prepared.compose !== undefined) {
    const tmp = join(out, `.${COMPOSE_FILE}.staging-${suffix()}`);
    try {
      await writeFile(tmp, prepared.compose, { mode: 0o666, flag: "wx" });
      await rename(tmp, composeFile);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  } else if ((await kind(composeFile)) === "file" && (await generatedByUs(composeFile))) {
    await rm(composeFile, { force: true });
    done.push(`removed ${join(outDir, COMPOSE_FILE)} (written by an earlier build; not asked for with --emit compose)`);
  }
  return done;
}
