import { execa } from "execa";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodePath, signPath, stringToSign, verifySignedUrl } from "../src/sign.js";

interface Vector {
  name: string;
  policy: string;
  path: string;
  expires: number;
  ip?: string;
  url: string;
  request: string;
  expect: 200 | 403 | 410;
  originSees?: string;
}
interface Vectors {
  secret: string;
  policies: Record<string, { encoding?: "hex" | "base64url"; expiresParam?: string; signatureParam?: string; requireIp?: boolean }>;
  vectors: Vector[];
}

const vectors: Vectors = JSON.parse(await readFile(join(import.meta.dirname, "fixtures", "signed-urls", "vectors.json"), "utf8"));

describe("signed URLs: src/sign.ts against the shared vectors", () => {
  for (const v of vectors.vectors) {
    it(`${v.policy}: ${v.name}`, () => {
      const settings = vectors.policies[v.policy]!;
      expect(signPath({ path: v.path, expires: v.expires, key: vectors.secret, ip: v.ip, settings })).toBe(v.url);
      const verdict = verifySignedUrl(v.request, vectors.secret, "127.0.0.1", Math.floor(Date.now() / 1000), settings);
      expect(verdict.ok ? 200 : verdict.status).toBe(v.expect);
      if (verdict.ok) expect(v.request.slice(0, v.request.indexOf("?")) + (verdict.rest ? "?" + verdict.rest : "")).toBe(v.originSees);
    });
  }

  it("signs exactly <path>\\n<expires>\\n<query>[\\n<ip>]", () => {
    expect(stringToSign("/a", 5, "")).toBe("/a\n5\n");
    expect(stringToSign("/a", 5, "x=1", "::1")).toBe("/a\n5\nx=1\n::1");
  });

  it("percent-encodes what cannot appear raw in a path and keeps existing escapes", () => {
    expect(encodePath("/my file/é.txt")).toBe("/my%20file/%C3%A9.txt");
    expect(encodePath("/a%20b/c")).toBe("/a%20b/c");
  });

  it("refuses to sign a path that already carries a signature parameter", () => {
    expect(() => signPath({ path: "/a?signature=x", expires: 1, key: "k" })).toThrow(/signature/);
    expect(() => signPath({ path: "a", expires: 1, key: "k" })).toThrow(/start with/);
  });
});

describe("cdn-build sign", () => {
  const BIN = join(import.meta.dirname, "..", "bin", "cdn-build.js");
  let dir: string;
  const cli = (args: string[], env: Record<string, string> = {}) => execa("node", [BIN, ...args], { reject: false, cwd: dir, env: { ...env } });
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "cdn-sign-"));
    await writeFile(
      join(dir, "edge.yaml"),
      `name: signer
origins:
  app:
    servers:
      - address: 127.0.0.1:3000
signedUrls:
  paths: ["/media/*"]
  secret: { env: SIGN_KEY }
  encoding: base64url
  expiresParam: e
  signatureParam: sig
`,
    );
    await writeFile(join(dir, "nogate.yaml"), "name: nogate\norigins:\n  app:\n    servers:\n      - address: 127.0.0.1:3000\n");
    await writeFile(join(dir, "bad.yaml"), "name: bad\norigins: {}\nsignedUrls: { secret: { env: K }, expiresParam: x, signatureParam: x, paths: ['/a'] }\n");
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("prints a URL the reference verifier accepts, with the policy's encoding and parameter names", async () => {
    const r = await cli(["sign", "edge.yaml", "/media/v.mp4", "--ttl", "1h", "--base", "https://cdn.example.com/"], { SIGN_KEY: vectors.secret });
    expect(r.exitCode).toBe(0);
    const url = r.stdout.trim();
    expect(url).toMatch(/^https:\/\/cdn\.example\.com\/media\/v\.mp4\?e=[0-9]+&sig=[A-Za-z0-9_-]{43}$/);
    const target = url.slice("https://cdn.example.com".length);
    const exp = Number(/e=([0-9]+)/.exec(url)![1]);
    expect(Math.abs(exp - (Math.floor(Date.now() / 1000) + 3600))).toBeLessThan(5);
    const s = vectors.policies["b64"]!;
    expect(verifySignedUrl(target, vectors.secret, "127.0.0.1", Math.floor(Date.now() / 1000), s).ok).toBe(true);
  });

  it("reproduces a shared vector with --expires and --ip", async () => {
    const v = vectors.vectors.find((x) => x.policy === "b64" && x.name === "valid with query, base64url")!;
    const r = await cli(["sign", "edge.yaml", v.path, "--expires", String(v.expires)], { SIGN_KEY: vectors.secret });
    expect(r.stdout.trim()).toBe(v.url);
    const ipv = await cli(["sign", "edge.yaml", "/media/x", "--expires", "4102444800", "--ip", "10.0.0.1"], { SIGN_KEY: vectors.secret });
    expect(ipv.exitCode).toBe(0);
    expect(verifySignedUrl(ipv.stdout.trim(), vectors.secret, "10.0.0.1", 0, vectors.policies["b64"]).ok).toBe(true);
    expect(verifySignedUrl(ipv.stdout.trim(), vectors.secret, "10.0.0.2", 0, vectors.policies["b64"]).ok).toBe(false);
  });

  it("notes when the path is outside the gate's scope", async () => {
    const r = await cli(["sign", "edge.yaml", "/other"], { SIGN_KEY: "k" });
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toMatch(/outside the gate's paths/);
  });

  it("prints help with exit 0", async () => {
    for (const args of [["sign", "--help"], ["help", "sign"]]) {
      const r = await cli(args);
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toMatch(/Usage: cdn-build sign/);
    }
  });

  it("exits 1 when the key is not set, the policy has no gate, or the policy is invalid", async () => {
    const nokey = await cli(["sign", "edge.yaml", "/media/a"]);
    expect(nokey.exitCode).toBe(1);
    expect(nokey.stderr).toMatch(/SIGN_KEY/);
    const nogate = await cli(["sign", "nogate.yaml", "/media/a"], { SIGN_KEY: "k" });
    expect(nogate.exitCode).toBe(1);
    expect(nogate.stderr).toMatch(/no signedUrls gate/);
    const bad = await cli(["sign", "bad.yaml", "/a"], { K: "k" });
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toMatch(/CDN3080/);
  });

  it("exits 2 on usage errors", async () => {
    const env = { SIGN_KEY: "k" };
    for (const args of [
      ["sign", "edge.yaml"],
      ["sign", "edge.yaml", "media/a"],
      ["sign", "edge.yaml", "/media/a", "--ttl", "soon"],
      ["sign", "edge.yaml", "/media/a", "--ttl", "1h", "--expires", "5"],
      ["sign", "edge.yaml", "/media/a", "--ip", "not-an-ip"],
      ["sign", "edge.yaml", "/media/a", "--base", "cdn.example.com"],
      ["sign", "edge.yaml", "/media/a", "--bogus"],
      ["sign", "edge.yaml", "/media/a?sig=1"],
    ]) {
      const r = await cli(args, env);
      expect(r.exitCode, args.join(" ")).toBe(2);
    }
  });
});
