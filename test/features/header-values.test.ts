/**
 * Header values computed per request (client address, request id, country, query argument, cookie, request
 * header) and read from the environment, in `headers.*.set` and in the rules' header actions.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { compile } from "../../src/compile.js";
import { env, value } from "../../src/index.js";
import { bootEdge, type Edge } from "../support/edge.js";
import { http, luaErrors } from "../support/http.js";
import { startMockOrigin, type MockOrigin } from "../support/mock-origin.js";
import { codes, diagnostics, policy } from "../support/policy.js";

describe("computed header values: policy", () => {
  it("the TypeScript helpers write the objects YAML users write", () => {
    expect(value.clientIp()).toEqual({ clientIp: true });
    expect(value.requestId()).toEqual({ requestId: true });
    expect(value.country()).toEqual({ country: true });
    expect(value.country({ header: "CF-IPCountry" })).toEqual({ country: { header: "CF-IPCountry" } });
    expect(value.arg("w")).toEqual({ arg: "w" });
    expect(value.cookie("ab")).toEqual({ cookie: "ab" });
    expect(value.header("X-Device")).toEqual({ header: "X-Device" });
    expect(value.env("TOKEN")).toEqual(env("TOKEN"));
  });

  it("refuses unknown kinds and bad names, naming the field", () => {
    const at = (v: unknown) => diagnostics({ ...policy("127.0.0.1:3000"), headers: { request: { set: { "X-A": v } } } });
    expect(at({ arg: "w" })).toEqual([]);
    expect(at({ args: "w" }).some((d) => d.startsWith("CDN1") && d.includes("/headers/request/set/X-A"))).toBe(true);
    expect(at({ arg: "bad name" }).some((d) => d.includes("/headers/request/set/X-A"))).toBe(true);
    expect(at({ header: "X_Under" }).some((d) => d.includes("/headers/request/set/X-A"))).toBe(true);
    expect(at({ env: "1BAD" }).some((d) => d.includes("/headers/request/set/X-A"))).toBe(true);
    expect(codes({ ...policy("127.0.0.1:3000"), headers: { request: { set: { "X-A": { clientIp: false } } } } })).not.toEqual([]);
  });

  it("declares the environment variables and never writes a value into the bundle", () => {
    const b = compile({ ...policy("127.0.0.1:3000"), headers: { request: { set: { "X-Token": env("ORIGIN_TOKEN") } } } }, { target: "openresty" }).bundle!;
    expect(b.files.get("nginx.conf")).toMatch(/^env ORIGIN_TOKEN;$/m);
  });
});

describe("computed header values in a real nginx", () => {
  let origin: MockOrigin;
  let edge: Edge;
  beforeAll(async () => {
    origin = await startMockOrigin();
    edge = await bootEdge(
      policy(origin.address, {
        name: "values",
        headers: {
          request: {
            set: {
              "X-Client-IP": value.clientIp(),
              "X-Rid": value.requestId(),
              "X-Country": value.country(),
              "X-Width": value.arg("w"),
              "X-Ab": value.cookie("ab"),
              "X-Device": value.header("X-Device-Type"),
              "X-Origin-Token": env("EDGE_VALUES_TOKEN"),
              "X-Missing": env("EDGE_VALUES_UNSET"),
              "X-Fixed": "plain",
            },
          },
          response: { set: { "X-Request-Id": value.requestId(), "X-Echo-Width": value.arg("w") } },
        },
        rules: [
          {
            name: "rule",
            when: { path: "/rule" },
            then: { requestHeaders: { set: { "X-Rule-Token": env("EDGE_VALUES_TOKEN"), "X-Rule-Arg": value.arg("q") } }, responseHeaders: { set: { "X-Rule-Cookie": value.cookie("ab") } } },
          },
        ],
      }),
      { env: { EDGE_VALUES_TOKEN: "tok-5ecret" } },
    );
  });
  afterEach(async () => {
    expect(luaErrors(await edge.errors())).toEqual([]);
  });
  afterAll(async () => {
    await edge?.stop();
    await origin?.close();
  });

  const last = (path: string) => origin.requests.filter((r) => r.path === path).at(-1)!.headers;

  it("computes each value from the request, and reads the environment at start", async () => {
    const r = await http(edge, "/a?w=640%20px", { headers: { cookie: "ab=B; other=1", "x-device-type": "phone", "x-geoip-country-code": "DE" } });
    const h = last("/a");
    expect(h["x-client-ip"]).toBe("127.0.0.1");
    expect(h["x-rid"]).toMatch(/^[0-9a-f]{32}$/);
    expect(h["x-country"]).toBe("DE");
    expect(h["x-width"]).toBe("640 px");
    expect(h["x-ab"]).toBe("B");
    expect(h["x-device"]).toBe("phone");
    expect(h["x-origin-token"]).toBe("tok-5ecret");
    expect(h["x-fixed"]).toBe("plain");
    expect(h["x-missing"]).toBeUndefined();
    expect(r.headers["x-request-id"]).toBe(h["x-rid"]);
    expect(r.headers["x-echo-width"]).toBe("640 px");
  });

  it("sends no header for a missing value, and drops the client's own of that name", async () => {
    const r = await http(edge, "/b", { headers: { "x-country": "FR", "x-width": "9999", "x-missing": "from-client", "x-origin-token": "forged" } });
    const h = last("/b");
    expect(h["x-country"]).toBeUndefined();
    expect(h["x-width"]).toBeUndefined();
    expect(h["x-missing"]).toBeUndefined();
    expect(h["x-origin-token"]).toBe("tok-5ecret");
    expect(r.headers["x-echo-width"]).toBeUndefined();
  });

  it("strips control characters: a value cannot add a header line", async () => {
    await http(edge, "/c?w=a%0D%0AX-Evil:%201");
    const h = last("/c");
    expect(h["x-width"]).toBe("aX-Evil: 1");
    expect(h["x-evil"]).toBeUndefined();
  });

  it("works in the rules' header actions too", async () => {
    const r = await http(edge, "/rule?q=z%2By", { headers: { cookie: "ab=A" } });
    const h = last("/rule");
    expect(h["x-rule-token"]).toBe("tok-5ecret");
    expect(h["x-rule-arg"]).toBe("z+y");
    expect(r.headers["x-rule-cookie"]).toBe("A");
  });

  it("the secret is in no file of the bundle", async () => {
    const walk = async (dir: string): Promise<string[]> =>
      (await readdir(dir, { withFileTypes: true })).flatMap((e) => (e.isDirectory() ? [] : [join(dir, e.name)])).concat(
        ...(await Promise.all((await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory() && e.name !== "logs" && e.name !== "temp").map((e) => walk(join(dir, e.name))))),
      );
    for (const f of await walk(edge.dir)) expect(await readFile(f, "latin1"), f).not.toContain("tok-5ecret");
  });
});
