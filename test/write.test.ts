/** The bundle writer `cdn-build build` uses: modes, in-place swap, stale files, refusals. */
import { execa } from "execa";
import { mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Bundle } from "../src/emit/index.js";
import { SwapError, writeBundleAtomic } from "../src/emit/write.js";
import { projectDir } from "./support/edge.js";

const BIN = join(import.meta.dirname, "..", "bin", "cdn-build.js");

function bundle(files: Record<string, string>): Bundle {
  const all = new Map(Object.entries(files));
  all.set("manifest.json", JSON.stringify({ generatedBy: "cdn-build", files: Object.fromEntries(Object.keys(files).map((f) => [f, {}])) }));
  return { files: all, dirs: ["cache", "logs", "temp"] };
}

const mode = async (p: string) => ((await stat(p)).mode & 0o777).toString(8);

let project: string;
beforeAll(async () => {
  project = await projectDir("cdn-write-");
});
afterAll(async () => {
  await rm(project, { recursive: true, force: true });
});

describe("bundle writer", () => {
  it("gives folders and files the modes of a plain mkdir / write under the process umask", async () => {
    // through the CLI, in a shell with a given umask, as a user runs it
    await writeFile(join(project, "p.yaml"), "name: m\norigins:\n  app:\n    servers:\n      - address: 127.0.0.1:3000\n");
    for (const [umask, dirMode, fileMode] of [["022", "755", "644"], ["027", "750", "640"], ["002", "775", "664"]] as const) {
      const out = join(project, `m${umask}`, "edge");
      const r = await execa("sh", ["-c", `umask ${umask} && exec node "$0" build p.yaml --target nginx-lua --out "$1"`, BIN, out], { cwd: project, reject: false });
      expect(r.exitCode, r.stderr).toBe(0);
      expect(await mode(join(project, `m${umask}`))).toBe(dirMode);
      for (const d of ["", "lua", "lua/core", "cache", "logs", "temp"]) expect(await mode(join(out, d)), `${umask} ${d}`).toBe(dirMode);
      for (const f of ["nginx.conf", "manifest.json", "lua/access.lua", "lua/core/json.lua"]) expect(await mode(join(out, f)), `${umask} ${f}`).toBe(fileMode);
    }
  });

  it("swaps files in place: the folder and its runtime folders stay, stale files go, manifest.json is current", async () => {
    const out = join(project, "swap");
    await writeBundleAtomic(bundle({ "nginx.conf": "v1", "lua/a.lua": "a1", "lua/old/x.lua": "x", "lua/keep.lua": "k" }), out);
    const folder = await stat(out);
    await writeFile(join(out, "cache", "object"), "cached");
    await writeFile(join(out, "logs", "error.log"), "log");
    await writeFile(join(out, "notes.txt"), "a user's file next to the bundle");
    const keepIno = (await stat(join(out, "lua/keep.lua"))).ino;

    await writeBundleAtomic(bundle({ "nginx.conf": "v2", "lua/a.lua": "a2", "lua/b.lua": "b", "lua/keep.lua": "k" }), out);
    expect((await stat(out)).ino).toBe(folder.ino);
    expect(await readFile(join(out, "nginx.conf"), "utf8")).toBe("v2");
    expect(await readFile(join(out, "lua/a.lua"), "utf8")).toBe("a2");
    expect(await readFile(join(out, "lua/b.lua"), "utf8")).toBe("b");
    expect((await stat(join(out, "lua/keep.lua"))).ino).toBe(keepIno); // unchanged: not rewritten
    await expect(stat(join(out, "lua/old"))).rejects.toMatchObject({ code: "ENOENT" }); // stale file and its folder
    expect(await readFile(join(out, "cache", "object"), "utf8")).toBe("cached");
    expect(await readFile(join(out, "logs", "error.log"), "utf8")).toBe("log");
    expect(await readFile(join(out, "notes.txt"), "utf8")).toBe("a user's file next to the bundle");
    expect(Object.keys(JSON.parse(await readFile(join(out, "manifest.json"), "utf8")).files)).toEqual(["nginx.conf", "lua/a.lua", "lua/b.lua", "lua/keep.lua"]);
    expect((await readdir(project)).filter((f) => f.includes("tmp"))).toEqual([]);
    expect((await readdir(join(out, "lua"))).filter((f) => f.includes("tmp"))).toEqual([]);
  });

  it("leaves the previous bundle untouched when the check fails", async () => {
    const out = join(project, "checked");
    await writeBundleAtomic(bundle({ "nginx.conf": "good", "lua/a.lua": "a" }), out);
    let staged = "";
    const err = await writeBundleAtomic(bundle({ "nginx.conf": "bad", "lua/z.lua": "z" }), out, async (dir) => {
      staged = dir;
      expect(await readFile(join(dir, "nginx.conf"), "utf8")).toBe("bad");
      throw new Error("nginx -t failed");
    }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(SwapError);
    expect(await readFile(join(out, "nginx.conf"), "utf8")).toBe("good");
    expect(await readFile(join(out, "lua/a.lua"), "utf8")).toBe("a");
    await expect(stat(join(out, "lua/z.lua"))).rejects.toThrow();
    await expect(stat(staged)).rejects.toThrow();
  });

  it("refuses a non-empty folder that is not a bundle, and never removes files outside the bundle", async () => {
    const precious = join(project, "precious");
    await mkdir(precious);
    await writeFile(join(precious, "notes.txt"), "keep me");
    await expect(writeBundleAtomic(bundle({ "nginx.conf": "x" }), precious)).rejects.toThrow(/not a cdn-build bundle/);
    expect(await readdir(precious)).toEqual(["notes.txt"]);

    // a manifest on disk is input: paths leading out of the bundle are ignored
    const out = join(project, "hostile");
    await writeBundleAtomic(bundle({ "nginx.conf": "x" }), out);
    await writeFile(join(out, "manifest.json"), JSON.stringify({ generatedBy: "cdn-build", files: { "../precious/notes.txt": {}, "/etc/hostname": {}, "cache/object": {} } }));
    await writeFile(join(out, "cache", "object"), "cached");
    await writeBundleAtomic(bundle({ "nginx.conf": "y" }), out);
    expect(await readFile(join(precious, "notes.txt"), "utf8")).toBe("keep me");
    expect(await readFile(join(out, "cache", "object"), "utf8")).toBe("cached");
  });

  it("completes a first install that was interrupted before its manifest", async () => {
    const out = join(project, "interrupted");
    await mkdir(join(out, "lua"), { recursive: true });
    await writeFile(join(out, "nginx.conf"), "half");
    await writeFile(join(out, "lua", ".a.lua.tmp-0123456789ab"), "partial");
    await writeBundleAtomic(bundle({ "nginx.conf": "full", "lua/a.lua": "a" }), out);
    expect(await readFile(join(out, "nginx.conf"), "utf8")).toBe("full");
    expect(await readdir(join(out, "lua"))).toEqual(["a.lua"]);
  });
});
