import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { accessLog, bootEdge, type AccessLogEntry } from "../support/edge.js";
import { startMockOrigin } from "../support/mock-origin.js";
import { http, luaErrors } from "../support/http.js";
import { waitFor } from "../support/wait.js";

describe("access log", () => {
  it("writes one JSON object per request with cache status and timings", async () => {
    const origin = await startMockOrigin();
    const edge = await bootEdge({ name: "logs", origins: { app: { servers: [{ address: origin.address }] } }, cache: {}, accessLog: { format: "json" } });
    try {
      await http(edge, "/page?x=1", { headers: { "user-agent": 'quote " and \\ backslash' } });
      await http(edge, "/page?x=1");
      await waitFor(async () => (await accessLog(edge)).length >= 2, { what: "two access log lines" });
      const lines = await accessLog(edge);
      expect(lines).toHaveLength(2);
      const [a, b] = lines as [AccessLogEntry, AccessLogEntry];
      expect(a).toMatchObject({ method: "GET", uri: "/page?x=1", status: "200", cache: "MISS", upstream: origin.address, userAgent: 'quote " and \\ backslash' });
      expect(Number(a.duration)).toBeGreaterThanOrEqual(0);
      expect(Number(a.upstreamTime)).toBeGreaterThanOrEqual(0);
      expect(b).toMatchObject({ cache: "HIT", upstream: "" });
      expect(a.requestId).toMatch(/^[0-9a-f]{32}$/);
      expect(luaErrors(await edge.errors())).toEqual([]);
    } finally {
      await edge.stop();
      await origin.close();
    }
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
});
