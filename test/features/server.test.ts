import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { compile } from "../../src/compile.js";
import { rlimitNofileFor } from "../../src/features/server.js";
import { bootEdge } from "../support/edge.js";
import { http } from "../support/http.js";
import { policy } from "../support/policy.js";

describe("server: worker limits", () => {
  it("sets worker_rlimit_nofile to 2x worker_connections plus headroom", () => {
    expect(rlimitNofileFor(4096)).toBe(9216);
    const conf = (p: object) => compile({ ...policy("127.0.0.1:3000"), listen: { http: 8080 }, ...p }, { target: "openresty" }).bundle!.files.get("nginx.conf")!;
    expect(conf({})).toMatch(/^worker_rlimit_nofile 9216;$/m);
    expect(conf({})).toMatch(/^\s*worker_connections 4096;$/m);
    expect(conf({ workers: { connections: 100 } })).toMatch(/^worker_rlimit_nofile 1224;$/m);
  });

  it("the workers of a booted bundle really have that limit", async () => {
    const edge = await bootEdge({ ...policy("127.0.0.1:9"), health: {}, workers: { processes: 1, connections: 512 } });
    try {
      expect((await http(edge, "/health")).status).toBe(200);
      const workers = (await readFile(`/proc/${edge.pid}/task/${edge.pid}/children`, "utf8")).split(/\s+/).filter(Boolean);
      expect(workers.length).toBeGreaterThan(0);
      for (const w of workers) {
        const limits = await readFile(`/proc/${w}/limits`, "utf8");
        expect(limits).toMatch(/^Max open files\s+2048\s+/m);
      }
    } finally {
      await edge.stop();
    }
  });
});
