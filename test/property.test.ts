import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compile } from "../src/compile.js";
import { nginxBinary, writeForTest } from "./support/edge.js";

const token = fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,20}$/);
const anyText = fc.string({ maxLength: 40, unit: "binary" });
const duration = fc.tuple(fc.integer({ min: 1, max: 5000 }), fc.constantFrom("s", "m", "h", "d")).map(([n, u]) => `${n}${u}`);
const timer = fc.tuple(fc.integer({ min: 1, max: 600 }), fc.constantFrom("ms", "s", "m")).map(([n, u]) => `${n}${u}`);
const size = fc.tuple(fc.integer({ min: 1, max: 999 }), fc.constantFrom("m", "g")).map(([n, u]) => `${n}${u}`);
const server = fc.record(
  {
    address: fc.tuple(fc.constantFrom("127.0.0.1", "localhost", "[::1]"), fc.integer({ min: 1, max: 65535 })).map(([h, p]) => `${h}:${p}`),
    weight: fc.integer({ min: 1, max: 1000 }),
    maxFails: fc.integer({ min: 0, max: 100 }),
    failTimeout: duration,
  },
  { requiredKeys: ["address"] },
);
const origin = fc.record(
  {
    servers: fc.uniqueArray(server, { minLength: 1, maxLength: 3, selector: (s) => s.address }),
    scheme: fc.constantFrom("http", "https"),
    hostHeader: fc.domain(),
    keepalive: fc.integer({ min: 0, max: 1000 }),
    connectTimeout: timer,
    readTimeout: timer,
    retries: fc.integer({ min: 0, max: 10 }),
    retryOn: fc.subarray(["error", "timeout", "invalidHeader", 500, 502, 503, 504, 429, 403, 404] as const),
    retryTimeout: fc.oneof(timer, fc.constant("0s")),
    maxFails: fc.integer({ min: 0, max: 100 }),
    failTimeout: duration,
    keepaliveTimeout: timer,
    keepaliveRequests: fc.integer({ min: 1, max: 1000000 }),
  },
  { requiredKeys: ["servers"] },
);
const headerRules = fc.record({ set: fc.dictionary(token, anyText, { maxKeys: 4 }), remove: fc.uniqueArray(token, { maxLength: 3 }) }, { requiredKeys: [] });
const policy = fc.record(
  {
    name: fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,20}$/),
    listen: fc.record({ http: fc.integer({ min: 1024, max: 65535 }), address: fc.constantFrom("127.0.0.1", "[::1]", "*") }, { requiredKeys: [] }),
    serverNames: fc.uniqueArray(fc.domain(), { maxLength: 3 }),
    origins: fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9_-]{0,10}$/), origin, { minKeys: 1, maxKeys: 1 }),
    cache: fc.record(
      {
        disk: fc.record({ size, keysZone: fc.constantFrom("1m", "10m", "64k"), inactive: duration }, { requiredKeys: [] }),
        key: fc.record({ query: fc.oneof(fc.constantFrom("all", "none"), fc.record({ allow: fc.uniqueArray(token, { minLength: 1, maxLength: 3 }) })), host: fc.boolean() }, { requiredKeys: [] }),
        ttl: fc.dictionary(fc.constantFrom("200", "301", "404", "500", "any"), duration),
        bypass: fc.record({ cookies: fc.uniqueArray(token, { minLength: 1, maxLength: 3 }), headers: fc.uniqueArray(token, { minLength: 1, maxLength: 3 }), authorization: fc.boolean() }, { requiredKeys: [] }),
        staleIfError: duration,
        staleWhileRevalidate: duration,
        lock: fc.oneof(fc.constant(false as const), fc.record({ timeout: timer, age: timer }, { requiredKeys: [] })),
        revalidate: fc.boolean(),
      },
      { requiredKeys: [] },
    ),
    headers: fc.record({ response: headerRules, request: headerRules, cacheStatus: fc.oneof(token, fc.constant(false as const)) }, { requiredKeys: [] }),
    health: fc.record({ path: fc.constantFrom("/health", "/_h", "/status/ok") }, { requiredKeys: [] }),
    accessLog: fc.record({ format: fc.constantFrom("json", "combined", "off") }, { requiredKeys: [] }),
    workers: fc.record({ processes: fc.oneof(fc.constant("auto" as const), fc.integer({ min: 1, max: 4 })), connections: fc.integer({ min: 16, max: 100000 }) }, { requiredKeys: [] }),
  },
  { requiredKeys: ["name", "origins"] },
);

describe("property: every valid policy gives a bundle nginx accepts", () => {
  it("passes nginx -t for random valid policies (hostile header values included)", async () => {
    const bin = await nginxBinary();
    let valid = 0;
    await fc.assert(
      fc.asyncProperty(policy, async (p) => {
        const { bundle, diagnostics } = compile(p, { target: bin.kind });
        if (!bundle) {
          // invalid ones must say why; they are not counted
          expect(diagnostics.some((d) => d.severity === "error")).toBe(true);
          return;
        }
        valid++;
        // written as the CLI writes it; nginx -t runs on the staged bundle (throws with nginx's output)
        await (await writeForTest(bundle)).remove();
      }),
      { numRuns: 60 },
    );
    expect(valid).toBeGreaterThan(20);
  }, 120_000);
});
