import { readFile } from "node:fs/promises";
import { createConnection } from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { accessLog, bootEdge, type AccessLogEntry } from "../support/edge.js";
import { startMockOrigin } from "../support/mock-origin.js";
import { http, luaErrors } from "../support/http.js";
import { sleep, waitFor } from "../support/wait.js";
import { createSocket } from "node:dgram";
import { codes, policy } from "../support/policy.js";

describe("access log", () => {
  it("writes one JSON object per request with cache status and timings", async () => {
    const origin = await startMockOrigin();
    const edge = await bootEdge({ name: "logs", origins: { app: { servers: [{ address: origin.address }] } }, cache: { ttl: { "200": "1m" } }, accessLog: { format: "json" } });
    try {
      await http(edge, "/page?x=1", { headers: { "user-agent": 'quote " and \\ backslash' } });
      await http(edge, "/page?x=1");
      await waitFor(async () => (await accessLog(edge)).length >= 2, { what: "two access log lines" });
      const lines = await accessLog(edge);
      expect(lines).toHaveLength(2);
      // each worker buffers its own lines: found by what they say, not by their order
      const a = lines.find((l) => l.cache === "MISS") as AccessLogEntry;
      const b = lines.find((l) => l.cache === "HIT") as AccessLogEntry;
      expect(a).toMatchObject({ method: "GET", uri: "/page?x=1", status: 200, cache: "MISS", upstream: origin.address, userAgent: 'quote " and \\ backslash' });
      expect(typeof a.duration).toBe("number");
      expect(a.duration).toBeGreaterThanOrEqual(0);
      expect(a.bytes).toBe(b.bytes);
      expect(typeof a.bytes).toBe("number");
      expect(Number(a.upstreamTime)).toBeGreaterThanOrEqual(0);
      expect(b).toMatchObject({ cache: "HIT", upstream: "" });
      expect(a.requestId).toMatch(/^[0-9a-f]{32}$/);
      expect(luaErrors(await edge.errors())).toEqual([]);
    } finally {
      await edge.stop();
      await origin.close();
    }
  });

  it("also sends each line to a syslog server, as JSON with numbers", async () => {
    const udp = createSocket("udp4");
    const got: string[] = [];
    udp.on("message", (m) => got.push(m.toString("utf8")));
    await new Promise<void>((resolve) => udp.bind(0, "127.0.0.1", resolve));
    const port = udp.address().port;
    const origin = await startMockOrigin();
    const edge = await bootEdge({
      name: "syslog",
      origins: { app: { servers: [{ address: origin.address }] } },
      accessLog: { format: "json", syslog: { server: `127.0.0.1:${port}`, tag: "cdn_test", facility: "local3" } },
    });
    try {
      expect(edge.conf).toContain(`access_log syslog:server=127.0.0.1:${port},facility=local3,tag=cdn_test,severity=info cdn_json;`);
      await http(edge, "/via-syslog");
      const line = await waitFor(() => got.find((m) => m.includes('"uri":"/via-syslog"')), { timeout: 5000, what: "the syslog datagram" });
      // <PRI>TIMESTAMP HOST TAG: MESSAGE; local3.info = 19 * 8 + 6
      expect(line).toMatch(/^<158>/);
      const json = JSON.parse(line.slice(line.indexOf("cdn_test: ") + "cdn_test: ".length)) as Record<string, unknown>;
      expect(json).toMatchObject({ uri: "/via-syslog", status: 200, method: "GET" });
      expect(typeof json["bytes"]).toBe("number");
      // the file is still written
      await waitFor(async () => (await accessLog(edge)).some((l) => l.uri === "/via-syslog"), { what: "the file line" });
      expect(luaErrors(await edge.errors())).toEqual([]);
    } finally {
      await edge.stop();
      await origin.close();
      udp.close();
    }
  });

  it("refuses syslog output when the log is off, and servers that are not addresses", () => {
    expect(codes(policy("127.0.0.1:3000", { accessLog: { format: "off", syslog: { server: "127.0.0.1" } } }))).toEqual(["CDN7003"]);
    for (const server of ["127.0.0.1:514;", "host name", "unix:relative", "a,b", "logs.example.com", "256.1.1.1", "1.2.3.4:70000", "[::g]:514"]) {
      expect(codes(policy("127.0.0.1:3000", { accessLog: { syslog: { server } } })), server).toHaveLength(1);
    }
    expect(codes(policy("127.0.0.1:3000", { accessLog: { syslog: { server: "256.1.1.1" } } }))).toEqual(["CDN7004"]);
    expect(codes(policy("127.0.0.1:3000", { accessLog: { syslog: { server: "localhost:5514" } } }))).toEqual([]);
    expect(codes(policy("127.0.0.1:3000", { accessLog: { syslog: { server: "[::1]:5514", tag: "bad-tag" } } }))).toHaveLength(1);
    expect(codes(policy("127.0.0.1:3000", { accessLog: { format: "combined", syslog: { server: "unix:/dev/log" } } }))).toEqual([]);
  });

  it("can be turned off", async () => {
    const origin = await startMockOrigin();
    const edge = await bootEdge({ name: "nologs", origins: { app: { servers: [{ address: origin.address }] } }, accessLog: { format: "off" } });
    try {
      expect((await http(edge, "/")).status).toBe(200);
      await expect(readFile(join(edge.dir, "logs", "access.log"), "utf8")).rejects.toThrow();
    } finally {
      await edge.stop();
      await origin.close();
    }
  });

  it("logs malformed and abandoned requests without an uninitialized-variable warning per request", async () => {
    const origin = await startMockOrigin();
    // cache and rules: the JSON log and the Lua log phase read variables the server sets with `set`
    const edge = await bootEdge({
      name: "malformed",
      origins: { app: { servers: [{ address: origin.address }] }, api: { servers: [{ address: origin.address }] } },
      defaultOrigin: "app",
      cache: { ttl: { "200": "1m" } },
      rules: [{ name: "api", when: { path: { prefix: "/api/" } }, then: { origin: "api" } }],
    });
    const port = Number(new URL(edge.baseUrl).port);
    /** Writes raw bytes, returns the status line of the answer ("" when the edge just closed). */
    const raw = (data: string, closeAfterMs?: number) =>
      new Promise<string>((resolve) => {
        let out = "";
        const s = createConnection({ host: "127.0.0.1", port }, () => s.write(data));
        s.on("data", (d) => (out += d.toString("latin1")));
        s.on("error", () => {});
        s.on("close", () => resolve(out.split("\r\n")[0]!));
        if (closeAfterMs !== undefined) setTimeout(() => s.destroy(), closeAfterMs);
      });
    try {
      const answers = [
        await raw("GARBAGE\r\n\r\n"),
        await raw("GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n"),
        await raw("GET /%00 HTTP/1.1\r\nHost: a\r\n\r\n"),
        await raw("GET / HTTP/9.9\r\nHost: a\r\n\r\n"),
        await raw(`GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${"x".repeat(9000)}\r\n\r\n`),
        await raw("GET /?" + "a".repeat(9000) + " HTTP/1.1\r\nHost: a\r\n\r\n"),
        // headers never finished: the client gives up (the same path as a header timeout, minus the wait)
        await raw("GET /slow HTTP/1.1\r\nHost: a\r\n", 300),
      ];
      expect(answers.slice(0, 6).map((a) => a.split(" ")[1])).toEqual(["400", "400", "400", "505", "400", "414"]);
      // a well-formed request still works and sets its variables
      expect((await http(edge, "/api/ok")).status).toBe(200);
      await sleep(100);
      const log = await edge.errorLog();
      expect(log).not.toMatch(/uninitialized/);
      expect(luaErrors(await edge.errors())).toEqual([]);
      // the log is buffered (written within a second)
      await waitFor(async () => (await accessLog(edge)).length >= 8, { what: "eight access log lines" });
      const lines = await accessLog(edge);
      // each worker buffers its own lines: compared without their order
      expect(lines.map((l) => l.status).sort()).toEqual([200, 400, 400, 400, 400, 400, 414, 505]);
      expect(lines.find((l) => l.status === 400)).toMatchObject({ cache: "", upstream: "" });
    } finally {
      await edge.stop();
      await origin.close();
    }
  });
});
