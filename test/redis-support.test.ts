import { describe, expect, it } from "vitest";
import { startRedis } from "./support/redis.js";

describe("test redis-server", () => {
  it("starts, answers, stops and restarts on the same port", async () => {
    const r = await startRedis();
    try {
      expect(await r.cli("PING")).toBe("PONG");
      await r.cli("SET", "k", "v");
      await r.stop();
      await expect(r.cli("PING")).rejects.toThrow();
      await r.start();
      expect(await r.cli("GET", "k")).toBe("");
    } finally {
      await r.stop();
    }
  });
});
