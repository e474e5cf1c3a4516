/**
 * Request ids: a valid incoming id is reused, anything else replaced by nginx's; the origin receives it, the
 * JSON access log records it, a W3C traceparent passes unchanged. And the logs stay small.
 */
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { compile } from "../../src/compile.js";
import { REQUEST_ID_PATTERN } from "../../src/features/request-id.js";
import { accessLog, bootEdge, type Edge } from "../support/edge.js";
import { http, luaErrors } from "../support/http.js";
import { startMockOrigin, type MockOrigin } from "../support/mock-origin.js";
import { policy } from "../support/policy.js";
import { waitFor } from "../support/wait.js";

describe("request id: config", () => {
  const conf = (extra: object) => compile({ ...policy("127.0.0.1:3000"), ...extra }, { target: "openresty" }).bundle!.files.get("nginx.conf")!;

  it("is on by default: a map, the header to the origin, the id in the log", () => {
    const c = conf({});
    expect(c).toContain("map $http_x_request_id $cdn_request_id {");
    expect(c).toContain("proxy_set_header X-Request-Id $cdn_request_id;");
    expect(c).toContain('\\"requestId\\":\\"$cdn_request_id\\"');
    // the template writes out the pattern the code declares
    expect(c).toContain(`"~${REQUEST_ID_PATTERN}" $http_x_request_id;`);
  });

  it("takes another header, can refuse incoming ids, or be off", () => {
    expect(conf({ requestId: { header: "X-Trace-Id" } })).toContain("proxy_set_header X-Trace-Id $cdn_request_id;");
    expect(conf({ requestId: { accept: false } })).not.toContain("~^[A-Za-z0-9");
    const off = conf({ requestId: false });
    expect(off).not.toContain("cdn_request_id");
    expect(off).toContain('\\"requestId\\":\\"$request_id\\"');
  });
});

describe("request id in a real nginx", () => {
  let origin: MockOrigin;
  let edge: Edge;
  beforeAll(async () => {
    origin = await startMockOrigin();
    edge = await bootEdge(policy(origin.address, { name: "rid", cache: { ttl: { "200": "1h" } }, accessLog: { format: "json" } }));
  });
  afterEach(async () => {
    expect(luaErrors(await edge.errors())).toEqual([]);
  });
  afterAll(async () => {
    await edge?.stop();
    await origin?.close();
  });

  const lastRequest = (path: string) => origin.requests.filter((r) => r.path === path).at(-1)!;
  const logged = async (path: string) => {
    await waitFor(async () => (await accessLog(edge)).some((l) => l.uri === path), { what: `the access log line of ${path}` });
    return (await accessLog(edge)).find((l) => l.uri === path)!;
  };

  it("makes an id when the client sends none, sends it to the origin and logs it", async () => {
    await http(edge, "/new");
    const id = lastRequest("/new").headers["x-request-id"];
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect((await logged("/new")).requestId).toBe(id);
  });

  it("reuses a valid incoming id, and replaces an invalid one", async () => {
    await http(edge, "/mine", { headers: { "x-request-id": "lb-7f3a:0001" } });
    expect(lastRequest("/mine").headers["x-request-id"]).toBe("lb-7f3a:0001");
    expect((await logged("/mine")).requestId).toBe("lb-7f3a:0001");
    for (const [path, bad] of [
      ["/bad1", "has space"],
      ["/bad2", "x".repeat(129)],
      ["/bad3", '"},{"injected":"1'],
    ] as const) {
      await http(edge, path, { headers: { "x-request-id": bad } });
      expect(lastRequest(path).headers["x-request-id"]).toMatch(/^[0-9a-f]{32}$/);
    }
    const line = await logged("/bad3");
    expect(line["injected"]).toBeUndefined();
    expect(line.requestId).toMatch(/^[0-9a-f]{32}$/);
  });

  it("passes a W3C traceparent and tracestate unchanged", async () => {
    const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    await http(edge, "/traced", { headers: { traceparent: tp, tracestate: "vendor=abc" } });
    expect(lastRequest("/traced").headers["traceparent"]).toBe(tp);
    expect(lastRequest("/traced").headers["tracestate"]).toBe("vendor=abc");
  });

  it("keeps the logs small: one access line per request, nothing in error.log at warn or above", async () => {
    const many = async () => (await accessLog(edge)).filter((l) => l.uri === "/many");
    for (let i = 0; i < 200; i++) await http(edge, "/many", { headers: { "x-request-id": `id-${i}` } });
    await waitFor(async () => (await many()).length >= 200, { what: "200 access log lines of /many" });
    expect((await many()).map((l) => l.requestId).sort()).toEqual(Array.from({ length: 200 }, (_, i) => `id-${i}`).sort());
    const access = statSync(join(edge.dir, "logs/access.log")).size;
    expect(access).toBeLessThan(200 * 1024);
    const errors = readFileSync(join(edge.dir, "logs/error.log"), "utf8")
      .split("\n")
      .filter((l) => /\[(warn|error|crit|alert|emerg)\]/.test(l));
    expect(errors).toEqual([]);
  });
});
