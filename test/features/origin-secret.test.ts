import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootEdge, buildForTest, nginxBinary, type Edge } from "../support/edge.js";
import { startMockOrigin, type MockOrigin } from "../support/mock-origin.js";
import { codes, policy } from "../support/policy.js";
import { http, luaErrors } from "../support/http.js";
import { waitFor } from "../support/wait.js";
import { freePort, startBundle } from "../../src/runtime/nginx.js";
import type { Policy } from "../../src/policy/types.js";
import { env } from "../../src/policy/env.js";

const SECRET = "s3cr3t-Value-that-must-not-leak-7f1c";
const NEXT = "next-secret-2b9e";

let origin: MockOrigin;
beforeAll(async () => {
  origin = await startMockOrigin();
});
afterAll(async () => {
  await origin?.close();
});

const secretPolicy = (gate: Policy["originSecret"], extra: Partial<Policy> = {}) =>
  policy(origin, { name: "secret", health: { path: "/health" }, originSecret: gate, ...extra });


async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else out.push(p);
  }
  return out;
}

describe("origin secret: one secret from the environment", () => {
  let edge: Edge;
  beforeAll(async () => {
    edge = await bootEdge(secretPolicy({ secret: env("EDGE_SECRET"), header: "X-Edge-Key" }), { env: { EDGE_SECRET: SECRET } });
  });
  afterAll(async () => {
    await edge?.stop();
  });

  it("passes a request with the secret and strips the header before the origin", async () => {
    origin.reset();
    const r = await http(edge, "/page", { headers: { "x-edge-key": SECRET } });
    expect(r.status).toBe(200);
    expect(origin.hits("/page")).toBe(1);
    const req = origin.requests[origin.requests.length - 1]!;
    expect(req.headers["x-edge-key"]).toBeUndefined();
  });

  it("refuses a missing, wrong, truncated, extended or case-changed secret with 403", async () => {
    origin.reset();
    for (const h of [undefined, "wrong", SECRET.slice(0, -1), SECRET + "x", SECRET.toUpperCase(), ""]) {
      const r = await http(edge, "/page", { headers: h === undefined ? {} : { "x-edge-key": h } });
      expect(r.status, `header ${JSON.stringify(h)}`).toBe(403);
      expect(r.body).toContain("origin-secret");
    }
    expect(origin.hits()).toBe(0);
  });

  it("does not let loopback through unless allowLoopback is set", async () => {
    expect((await http(edge, "/page")).status).toBe(403); // tests connect from 127.0.0.1
  });

  it("never gates the health endpoint", async () => {
    expect((await http(edge, "/health")).status).toBe(200);
    expect(luaErrors(await edge.errors())).toEqual([]);
  });

  it("writes the secret into no bundle file", async () => {
    const files = await filesUnder(edge.dir);
    expect(files.length).toBeGreaterThan(5);
    for (const f of files) {
      if (f.includes(`${join("logs", "")}`)) continue;
      expect((await readFile(f)).includes(SECRET), f).toBe(false);
    }
    expect(edge.conf).toContain("env EDGE_SECRET;");
  });
});

describe("origin secret: rotation, loopback, scope", () => {
  it("accepts any of several secrets", async () => {
    const edge = await bootEdge(secretPolicy({ secrets: [env("SECRET_A"), env("SECRET_B")] }), { env: { SECRET_A: SECRET, SECRET_B: NEXT } });
    try {
      expect((await http(edge, "/a", { headers: { "x-origin-secret": SECRET } })).status).toBe(200);
      expect((await http(edge, "/a", { headers: { "x-origin-secret": NEXT } })).status).toBe(200);
      expect((await http(edge, "/a", { headers: { "x-origin-secret": "nope" } })).status).toBe(403);
      expect(luaErrors(await edge.errors())).toEqual([]);
    } finally {
      await edge.stop();
    }
  });

  it("lets loopback peers through with allowLoopback, and still strips the header", async () => {
    const edge = await bootEdge(secretPolicy({ secret: env("EDGE_SECRET"), allowLoopback: true }), { env: { EDGE_SECRET: SECRET } });
    try {
      origin.reset();
      expect((await http(edge, "/lb")).status).toBe(200);
      expect((await http(edge, "/lb", { headers: { "x-origin-secret": "whatever", "x-forwarded-for": "203.0.113.9" } })).status).toBe(200);
      expect(origin.requests.every((r) => r.headers["x-origin-secret"] === undefined)).toBe(true);
    } finally {
      await edge.stop();
    }
  });

  it("allowLoopback also covers ::1", async () => {
    const port = await freePort();
    const { dir, remove } = await buildForTest({ ...secretPolicy({ secret: env("EDGE_SECRET"), allowLoopback: true }), listen: { http: port, address: "[::1]" } } as Policy);
    const edge = await startBundle(dir, { port, host: "::1", bin: await nginxBinary(), env: { EDGE_SECRET: SECRET } });
    try {
      expect(edge.baseUrl).toContain("[::1]");
      expect((await http(edge, "/v6")).status).toBe(200);
    } finally {
      await edge.stop();
      await remove();
    }
  });

  it("applies only to its paths (and not to exceptPaths)", async () => {
    const edge = await bootEdge(secretPolicy({ secret: env("EDGE_SECRET"), paths: ["/private/*"], exceptPaths: ["/private/open"] }), { env: { EDGE_SECRET: SECRET } });
    try {
      expect((await http(edge, "/public")).status).toBe(200);
      expect((await http(edge, "/private/x")).status).toBe(403);
      expect((await http(edge, "/private/x", { headers: { "x-origin-secret": SECRET } })).status).toBe(200);
      expect((await http(edge, "/private/open")).status).toBe(200);
    } finally {
      await edge.stop();
    }
  });

  it("fails closed when the variable is missing at start, and logs one error", async () => {
    const edge = await bootEdge(secretPolicy({ secret: env("EDGE_SECRET_MISSING") }), { env: {} });
    try {
      for (let i = 0; i < 5; i++) {
        const r = await http(edge, "/x", { headers: { "x-origin-secret": "" } });
        expect(r.status).toBe(403);
      }
      expect((await http(edge, "/x", { headers: { "x-origin-secret": "anything" } })).status).toBe(403);
      expect((await http(edge, "/health")).status).toBe(200);
      // worker 0 logs it from init_worker: under load the other worker may have served every request first
      const errs = await waitFor(
        async () => {
          const e = (await edge.errors()).filter((l) => l.includes("origin-secret"));
          return e.length > 0 && e;
        },
        { timeout: 2000, what: "the origin-secret error line" },
      );
      expect(errs.length).toBe(1);
      expect(errs[0]).toContain("EDGE_SECRET_MISSING");
      expect(errs[0]).toContain("fail closed");
    } finally {
      await edge.stop();
    }
  });

  it("does not gate the purge endpoint", async () => {
    const edge = await bootEdge(secretPolicy({ secret: env("EDGE_SECRET") }, { cache: { disk: { size: "10m", keysZone: "1m" } } }), { env: { EDGE_SECRET: SECRET } });
    try {
      const r = await http(edge, "/__purge", { method: "POST" });
      // reaches the purge handler (which refuses: this policy gives purge no credentials), not the gate
      expect(r.status).toBe(403);
      expect(JSON.parse(r.body)).toEqual({ ok: false, error: "forbidden" });
      expect((await http(edge, "/x")).status).toBe(403);
    } finally {
      await edge.stop();
    }
  });
});

describe("origin secret: compile-time checks", () => {
  it("reports a missing secret, both forms, a duplicate variable and a reserved header", () => {
    expect(codes(secretPolicy({}))).toContain("CDN3010");
    expect(codes(secretPolicy({ secret: env("A"), secrets: [env("B")] }))).toContain("CDN3011");
    expect(codes(secretPolicy({ secrets: [env("A"), env("A")] }))).toContain("CDN3012");
    expect(codes(secretPolicy({ secret: env("A"), header: "Host" }))).toContain("CDN3013");
    // the one header-name rule (CDN2030): letters, digits and "-" (test/security/header-names.test.ts)
    expect(codes(secretPolicy({ secret: env("A"), header: "X-S$cret" }))).toContain("CDN2030");
    expect(codes(secretPolicy({ secret: env("A"), header: "X_Origin_Secret" }))).toContain("CDN2030");
    expect(codes(secretPolicy({ secret: env("A"), paths: [] }))).toContain("CDN3001");
    expect(codes(secretPolicy({ secret: env("A") }))).toEqual([]);
  });

  it("rejects an invalid variable name through the schema", () => {
    expect(codes(secretPolicy({ secret: { env: "BAD NAME;" } }))[0]).toMatch(/^CDN1/);
  });
});
