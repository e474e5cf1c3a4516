/**
 * A purge never silently misses: when the purge index has lost entries (its dict filled up and evicted
 * whole tags), a tag purge still retires every object of the tag (the marker holds it), and the answer says
 * the index was incomplete.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootEdge, type Edge } from "../support/edge.js";
import { startMockOrigin, type MockOrigin } from "../support/mock-origin.js";
import { http, luaErrors } from "../support/http.js";
import { sendPurge } from "../../src/purge/client.js";
import { getAll, range } from "./support.js";

const TOKEN = "overflow-token-0123456789";
const N = 6000;
let origin: MockOrigin;
let edge: Edge;

beforeAll(async () => {
  origin = await startMockOrigin();
  origin.setDefault((req, n) => ({
    // every object: the shared tag, and a long tag of its own that fills the index
    headers: { "cache-control": "max-age=3600", "cache-tag": `bulk, ${req.path.replace(/\W/g, "-")}-${"x".repeat(120)}` },
    body: `${req.path}#${n}`,
  }));
  edge = await bootEdge(
    {
      name: "overflow",
      origins: { app: { servers: [{ address: origin.address }], retries: 0 } },
      cache: { ttl: { "200": "1h" } },
      headers: { cacheStatus: "X-Cache" },
      purge: { token: { env: "PURGE_TOKEN" }, indexSize: "1m" },
    },
    { env: { PURGE_TOKEN: TOKEN } },
  );
}, 60_000);

afterAll(async () => {
  expect(luaErrors(await edge.errors())).toEqual([]);
  await edge?.stop();
  await origin?.close();
});

describe("purge index overflow", () => {
  it(`fills a 1m index with ${N} tagged objects, purges the shared tag: every object is retired, and the answer says the index was incomplete`, async () => {
    const paths = range(N, (i) => `/o/${i}`);
    await getAll(edge, paths);
    const [r] = await sendPurge([edge.baseUrl], "/__purge", { tags: ["bulk"] }, { token: TOKEN });
    const answer = r!.answer as { count: number; indexComplete: boolean };
    expect(answer.indexComplete).toBe(false);
    // and the operator is told, once
    const told = (await edge.errorLog()).split("\n").filter((l) => l.includes("purge: the index is incomplete"));
    expect(told.length).toBe(1);
    const after = await getAll(edge, paths);
    const old = after.filter((x, i) => x.body === `${paths[i]}#1`).length;
    console.log(`index overflow: ${N} objects, index found ${answer.count}, old bodies served after the tag purge: ${old}`);
    expect(old).toBe(0);
    expect((await http(edge, "/o/1")).headers["x-cache"]).toBe("HIT"); // stored again since
  }, 120_000);
});
