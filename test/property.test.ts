/**
 * Property: every policy the validator accepts gives a bundle that passes `nginx -t` and boots. Random valid
 * policies, with the boundary values of every numeric field (minimum and maximum) and of every string field
 * (its longest form, hostile characters included) drawn often, are compiled; each bundle is written as the
 * CLI writes it (`nginx -t` on the staged bundle); a few dozen are also started on a free port, answer a
 * request and stop, with nothing at [emerg] and no Lua error in error.log. Deterministic: a fixed seed.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compile } from "../src/compile.js";
import { freePort, startBundle } from "../src/runtime/nginx.js";
import { nginxBinary, writeForTest } from "./support/edge.js";
import { http, luaErrors } from "./support/http.js";

/** A value between the bounds, or one of the bounds (drawn a third of the time). */
const int = (min: number, max: number) => fc.oneof({ weight: 1, arbitrary: fc.constantFrom(min, max) }, { weight: 2, arbitrary: fc.integer({ min, max }) });
/** A string of `chars` from 1 to `max` long, or exactly `max` long (a third of the time). */
const str = (chars: string, max: number, min = 1) => {
  const unit = fc.constantFrom(...chars.split(""));
  return fc.oneof({ weight: 2, arbitrary: fc.string({ unit, minLength: min, maxLength: Math.min(max, 20) }) }, { weight: 1, arbitrary: fc.string({ unit, minLength: max, maxLength: max }) });
};
const ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const token = fc.tuple(fc.constantFrom(..."ABCXYZabc".split("")), str(ALNUM + "-", 63)).map(([a, b]) => a + b);
/** Any text (control characters included: the validator refuses those, and must say so), up to the 4096 bound. */
const anyText = fc.oneof({ weight: 3, arbitrary: fc.string({ maxLength: 40, unit: "binary" }) }, { weight: 1, arbitrary: fc.string({ minLength: 4096, maxLength: 4096, unit: "grapheme-ascii" }) });
const PATH_CHARS = ALNUM + "/._~!&'()*+,=:@-";
const urlPath = fc.tuple(str(PATH_CHARS, 255, 0)).map(([s]) => "/" + s);
const label = str(ALNUM + "-", 63).filter((l) => !l.startsWith("-") && !l.endsWith("-"));
const domain = fc.oneof(fc.domain(), fc.array(label, { minLength: 1, maxLength: 4 }).map((ls) => ls.join(".")));
const duration = fc.oneof(
  fc.tuple(fc.integer({ min: 1, max: 5000 }), fc.constantFrom("s", "m", "h", "d")).map(([n, u]) => `${n}${u}`),
  fc.constantFrom("1s", "3550w", "999999999s"),
);
const timer = fc.oneof(fc.tuple(fc.integer({ min: 1, max: 600 }), fc.constantFrom("ms", "s", "m")).map(([n, u]) => `${n}${u}`), fc.constantFrom("1ms", "24d", "999999999ms"));
const port = int(1, 65535);
const server = fc.record(
  {
    address: fc.tuple(fc.constantFrom("127.0.0.1", "localhost", "[::1]", "[::ffff:127.0.0.1]"), port).map(([h, p]) => `${h}:${p}`),
    weight: int(1, 1000),
    maxFails: int(0, 100),
    failTimeout: duration,
  },
  { requiredKeys: ["address"] },
);
const origin = fc.record(
  {
    servers: fc.uniqueArray(server, { minLength: 1, maxLength: 3, selector: (s) => s.address }),
    scheme: fc.constantFrom("http", "https"),
    hostHeader: fc.oneof(fc.domain(), fc.constant("h".repeat(253)), fc.tuple(fc.domain(), port).map(([d, p]) => `${d}:${p}`)),
    keepalive: int(0, 100000),
    connectTimeout: timer,
    readTimeout: timer,
    sendTimeout: timer,
    retries: int(0, 10),
    retryOn: fc.subarray(["error", "timeout", "invalidHeader", 500, 502, 503, 504, 429, 403, 404] as const),
    retryTimeout: fc.oneof(timer, fc.constant("0s")),
    maxFails: int(0, 100),
    failTimeout: duration,
    keepaliveTimeout: timer,
    keepaliveRequests: int(1, 1000000),
  },
  { requiredKeys: ["servers"] },
);
const headerName = str(ALNUM + "-", 64);
const headerRules = fc.record({ set: fc.dictionary(headerName, anyText, { maxKeys: 4 }), remove: fc.uniqueArray(headerName, { maxLength: 3, selector: (s) => s.toLowerCase() }) }, { requiredKeys: [] });
const shm = (min: string, max: string) => fc.oneof(fc.constantFrom(min, max), fc.tuple(fc.integer({ min: 1, max: 999 }), fc.constantFrom("m")).map(([n, u]) => `${n}${u}`));
const cidr = fc.oneof(fc.ipV4().map((a) => `${a}/32`), fc.constantFrom("10.0.0.0/8", "::1/128", "2001:db8::/32", "127.0.0.1"));
const env = (name: string) => fc.constant({ env: name });
const scope = fc.record({ paths: fc.uniqueArray(fc.oneof(urlPath, fc.constantFrom("/a/*", "/*.zip", "/x")), { minLength: 1, maxLength: 2 }), exceptPaths: fc.uniqueArray(fc.oneof(urlPath, fc.constant("/a/public*")), { minLength: 1, maxLength: 2 }) }, { requiredKeys: [] });
const claimText = fc.oneof(str(ALNUM + ":/._-", 1024), fc.constant("https://auth.example.com/"));
const gates = {
  originSecret: fc.record({ header: headerName.filter((h) => !/^(host|cookie|authorization|x-forwarded-for|x-real-ip|content-length|content-type|transfer-encoding|connection|upgrade|te|expect)$/i.test(h)), secret: env("PROP_EDGE_SECRET"), allowLoopback: fc.constant(true) }, { requiredKeys: ["secret", "allowLoopback"] }).chain((g) => scope.map((sc) => ({ ...g, ...sc }))),
  clientAddress: fc.record({ trustedProxies: fc.uniqueArray(cidr, { minLength: 1, maxLength: 3 }), header: fc.constantFrom("X-Forwarded-For", "X-Real-IP") }, { requiredKeys: ["trustedProxies"] }),
  ipRules: fc.record({ deny: fc.uniqueArray(cidr.filter((c) => !c.startsWith("127.")), { minLength: 1, maxLength: 3 }) }),
  rateLimit: fc.uniqueArray(
    fc.record({ name: str(ALNUM + "_-", 64), rate: fc.constantFrom("1r/s", "0.5r/s", "1000000r/s", "1r/h", "600r/m"), burst: int(0, 10_000_000), key: fc.constantFrom("ip" as const, { header: "X-Api-Key" }), headers: fc.boolean() }, { requiredKeys: ["name", "rate"] }),
    { minLength: 1, maxLength: 2, selector: (l) => l.name },
  ),
  jwt: fc.record(
    { algorithms: fc.constant(["HS256" as const]), secret: env("PROP_JWT_SECRET"), issuer: fc.oneof(claimText, fc.array(claimText, { minLength: 1, maxLength: 2 })), audience: claimText, clockSkew: fc.constantFrom("0s", "30s", "10m"), requireExp: fc.boolean(), cookie: str(ALNUM + "_-", 128), forwardClaims: fc.dictionary(str(ALNUM + "_.:", 128), fc.constantFrom("X-User-Id", "X-User-Role", "X-" + "c".repeat(62)), { maxKeys: 2 }), realm: str(ALNUM + " ._:/-", 64) },
    { requiredKeys: ["algorithms", "secret"] },
  ).chain((g) => scope.map((sc) => ({ ...g, ...sc, paths: ["/private/*"] }))),
  signedUrls: fc.record({ secret: env("PROP_SIGN_KEY"), encoding: fc.constantFrom("hex" as const, "base64url" as const), expiresParam: str(ALNUM + "._~-", 64), signatureParam: fc.constantFrom("sig", "s".repeat(64)), requireIp: fc.boolean() }, { requiredKeys: ["secret"] }).map((g) => ({ ...g, paths: ["/dl/*"] })),
  waf: fc.record({ mode: fc.constantFrom("block" as const, "log" as const), ruleSets: fc.subarray(["sqli", "xss", "traversal", "shell", "scanners"] as const, { minLength: 1 }), body: fc.record({ maxSize: fc.constantFrom("1", "64k", "1m") }) }, { requiredKeys: [] }),
  redis: fc.record({ host: fc.constantFrom("127.0.0.1", "localhost", "r".repeat(253)), port: int(1, 65535), db: int(0, 1023), timeout: fc.constantFrom("1ms", "50ms", "24d"), poolSize: int(1, 10000), idleTimeout: fc.constantFrom("1s", "60s", "24d") }, { requiredKeys: [] }),
};
const condition = fc.record(
  {
    path: fc.oneof(urlPath, fc.record({ prefix: urlPath }), fc.record({ glob: fc.constant("/img/*.png") })),
    extension: fc.uniqueArray(str(ALNUM + "_-", 16), { minLength: 1, maxLength: 2, selector: (e) => e.toLowerCase() }),
    method: fc.constantFrom(["GET" as const], ["POST" as const, "PUT" as const]),
    header: fc.record({ name: headerName, equals: str(ALNUM + " ./-", 1024) }, { requiredKeys: ["name"] }),
    cookie: fc.record({ name: token, equals: str(ALNUM, 1024) }, { requiredKeys: ["name"] }),
    query: fc.record({ name: token, exists: fc.boolean() }, { requiredKeys: ["name"] }),
    clientIp: fc.uniqueArray(cidr, { minLength: 1, maxLength: 2 }),
  },
  { requiredKeys: [] },
);
const action = fc.oneof(
  fc.record({ cache: fc.record({ ttl: duration, key: fc.record({ headers: fc.constant(["X-Device"]), tag: str(ALNUM + "._-", 64) }, { requiredKeys: [] }) }, { requiredKeys: [] }), responseHeaders: headerRules }, { requiredKeys: [] }),
  fc.record({ redirect: fc.record({ to: fc.oneof(urlPath, fc.constant("https://www.example.com/new")), status: fc.constantFrom(301 as const, 308 as const) }, { requiredKeys: ["to"] }) }),
  fc.record({ respond: fc.record({ status: int(200, 599).filter((s) => s < 300 || s >= 400), body: fc.oneof(fc.constant(""), fc.string({ minLength: 65536, maxLength: 65536, unit: "grapheme-ascii" }), fc.string({ maxLength: 30 })), contentType: fc.constantFrom("text/plain", "application/json; charset=utf-8") }, { requiredKeys: ["status"] }) }),
  fc.record({ deny: fc.constantFrom(true as const, 451 as const) }),
  fc.record({ rewrite: fc.record({ stripPrefix: fc.constant("/old"), addPrefix: urlPath }, { requiredKeys: ["addPrefix"] }), requestHeaders: headerRules }, { requiredKeys: ["rewrite"] }),
);
const rules = fc.uniqueArray(fc.record({ name: str(ALNUM + "_.:-", 64), when: condition, then: action }, { requiredKeys: ["name", "then"] }), { minLength: 1, maxLength: 3, selector: (r) => r.name });

const policy = fc.record(
  {
    name: fc.oneof(fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,20}$/), fc.constant("p".repeat(63))),
    listen: fc.record({ http: port, address: fc.constantFrom("127.0.0.1", "[::1]", "*", "0.0.0.0") }, { requiredKeys: [] }),
    serverNames: fc.uniqueArray(fc.oneof(domain, domain.map((d) => `*.${d}`)), { maxLength: 3, selector: (s) => s.toLowerCase() }),
    origins: fc.dictionary(fc.oneof(fc.stringMatching(/^[a-z][a-z0-9_-]{0,10}$/), fc.constant("o".repeat(63))), origin, { minKeys: 1, maxKeys: 1 }),
    cache: fc.record(
      {
        disk: fc.record({ size: fc.oneof(fc.constantFrom("1m", "999999999g"), fc.tuple(fc.integer({ min: 1, max: 999 }), fc.constantFrom("m", "g")).map(([n, u]) => `${n}${u}`)), keysZone: shm("64k", "4g"), markersSize: shm("1m", "4g"), inactive: duration }, { requiredKeys: [] }),
        key: fc.record({ query: fc.oneof(fc.constantFrom("all", "none"), fc.record({ allow: fc.uniqueArray(str(ALNUM + "._~-", 128), { minLength: 1, maxLength: 3, selector: (s) => s.toLowerCase() }) })) }, { requiredKeys: [] }),
        ttl: fc.dictionary(fc.constantFrom("200", "301", "404", "500", "any"), duration),
        bypass: fc.record({ cookies: fc.uniqueArray(token, { minLength: 1, maxLength: 3, selector: (s) => s.toLowerCase() }), headers: fc.uniqueArray(headerName, { minLength: 1, maxLength: 3, selector: (s) => s.toLowerCase() }), authorization: fc.boolean() }, { requiredKeys: [] }),
        staleIfError: duration,
        staleWhileRevalidate: duration,
        lock: fc.oneof(fc.constant(false as const), fc.record({ timeout: timer, age: timer }, { requiredKeys: [] })),
        revalidate: fc.boolean(),
        ram: fc.record({ size: shm("1m", "16g"), maxObjectSize: fc.constantFrom("1", "64k", "256k"), minHits: int(1, 1000) }, { requiredKeys: [] }),
      },
      { requiredKeys: [] },
    ),
    headers: fc.record(
      {
        response: headerRules,
        request: headerRules,
        cacheStatus: fc.oneof(headerName, fc.constant(false as const)),
        allowOverrides: fc.uniqueArray(fc.record({ header: fc.constantFrom("X-Forwarded-Host", "X-Forwarded-Prefix", "Forwarded"), cache: fc.constantFrom("key" as const, "bypass" as const) }, { requiredKeys: ["header"] }), { maxLength: 2, selector: (a) => a.header }),
      },
      { requiredKeys: [] },
    ),
    health: fc.record({ path: fc.oneof(fc.constantFrom("/health", "/_h", "/status/ok"), urlPath) }, { requiredKeys: [] }),
    purge: fc.record(
      {
        path: fc.oneof(fc.constant("/__purge"), urlPath),
        allow: fc.uniqueArray(cidr, { minLength: 1, maxLength: 3 }),
        token: fc.constant({ env: "PROP_PURGE_TOKEN" }),
        indexSize: shm("1m", "4g"),
        indexTtl: duration,
        maxKeysPerTag: int(1, 1000000),
        channel: str(ALNUM + ":._-", 128),
      },
      { requiredKeys: [] },
    ),
    accessLog: fc.oneof(
      fc.record({ format: fc.constantFrom("json", "combined", "off"), path: fc.oneof(fc.constant("logs/access.log"), str(ALNUM + "._-", 40).map((s) => `logs/${s}`)) }, { requiredKeys: [] }),
      fc.record(
        {
          format: fc.constantFrom("json", "combined"),
          syslog: fc.record(
            { server: fc.constantFrom("127.0.0.1", "127.0.0.1:65535", "[::1]:514", "localhost:5140", "unix:/tmp/cdn-prop-syslog.sock"), facility: fc.constantFrom("local0", "local7", "daemon"), tag: str(ALNUM + "_", 32) },
            { requiredKeys: ["server"] },
          ),
        },
        { requiredKeys: ["syslog"] },
      ),
    ),
    metrics: fc.record({ allow: fc.uniqueArray(cidr, { minLength: 1, maxLength: 3 }), size: shm("256k", "1g") }, { requiredKeys: [] }),
    workers: fc.record({ processes: fc.oneof(fc.constant("auto" as const), int(1, 4), fc.constant(256)), connections: int(16, 262144) }, { requiredKeys: [] }),
    rules,
    ...gates,
  },
  { requiredKeys: ["name", "origins"] },
);

/** Writes `p` as the CLI does (nginx -t), then boots a copy listening on a free port and sends `GET /`. */
async function checkBoots(p: Record<string, unknown>, host = "localhost"): Promise<void> {
  const bin = await nginxBinary();
  const { bundle, diagnostics } = compile(p, { target: bin.kind });
  expect(diagnostics.filter((d) => d.severity === "error")).toEqual([]);
  const written = await writeForTest(bundle!);
  await written.remove();
  const port = await freePort();
  const conf = bundle!.files.get("nginx.conf")!.replace(/^(\s*)listen [^;]*?\d+( default_server)?;$/gm, (_m, sp: string, d: string | undefined) => `${sp}listen 127.0.0.1:${port}${d ?? ""};`);
  bundle!.files.set("nginx.conf", conf);
  const copy = await writeForTest(bundle!);
  try {
    const e = await startBundle(copy.dir, { port, bin, readyTimeoutMs: 60_000, env: { PROP_PURGE_TOKEN: "t0k3n", PROP_EDGE_SECRET: "s3cret", PROP_JWT_SECRET: "jwt-secret-0123456789", PROP_SIGN_KEY: "sign-key" } });
    try {
      const r = await http(e, "/", { headers: { host } });
      expect(r.status).toBeGreaterThan(0);
      const log = (await e.errorLog()).split("\n");
      expect(log.filter((l) => /\[emerg\]/.test(l))).toEqual([]);
      expect(luaErrors(log.filter((l) => /\[(error|crit|alert)\]/.test(l)))).toEqual([]);
    } finally {
      await e.stop();
    }
  } finally {
    await copy.remove();
  }
}

const longName = (n: number, seed: string) => Array.from({ length: Math.ceil(n / 64) }, (_, i) => (seed + i).padEnd(63, "x").slice(0, 63)).join(".").slice(0, n);
/** Every numeric field at its maximum, every string at its longest (the documented bounds). */
const MAXIMA = {
  name: "m".repeat(63),
  serverNames: Array.from({ length: 256 }, (_, i) => (i % 2 ? "*." : "") + longName(i % 2 ? 251 : 253, `n${i}-`)),
  origins: { ["o".repeat(63)]: { servers: [{ address: "127.0.0.1:65535", weight: 1000, maxFails: 100, failTimeout: "3550w" }, { address: "[0000:0000:0000:0000:0000:ffff:127.0.0.1]:1", backup: true }], scheme: "https", hostHeader: longName(247, "host") + ":65535", keepalive: 100000, keepaliveTimeout: "24d", keepaliveRequests: 1000000, connectTimeout: "24d", readTimeout: "24d", sendTimeout: "24d", retries: 10, retryTimeout: "24d", maxFails: 100, failTimeout: "3550w" } },
  cache: {
    disk: { size: "999999999g", keysZone: "4g", inactive: "3550w", markersSize: "4g", path: "cache/" + "d".repeat(249), statePath: "cache/" + "s".repeat(249) },
    key: { query: { allow: ["q".repeat(128)] } },
    ttl: { "200": "3550w", "599": "3550w", any: "3550w" },
    bypass: { cookies: ["c".repeat(64)], headers: ["B".repeat(64)] },
    staleIfError: "3550w",
    staleWhileRevalidate: "3550w",
    lock: { timeout: "24d", age: "24d" },
    ram: { size: "16g", maxObjectSize: "4g", minHits: 1000 },
  },
  headers: { request: { set: { ["R".repeat(64)]: "v".repeat(4096), "X-Two": "w".repeat(3960) } }, response: { set: { ["P".repeat(64)]: "~".repeat(4096), "X-Two": "y".repeat(3960) } }, cacheStatus: "S".repeat(64) },
  health: { path: "/" + "h".repeat(255) },
  accessLog: { path: "logs/" + "a".repeat(250) },
  purge: { path: "/" + "p".repeat(255), allow: ["127.0.0.1/32"], token: { env: "PROP_PURGE_TOKEN" }, indexSize: "4g", indexTtl: "3550w", maxKeysPerTag: 1000000, channel: "c".repeat(128) },
  workers: { processes: 16, connections: 262144 },
  rateLimit: [{ name: "l".repeat(64), rate: "1000000r/s", burst: 10000000 }],
  redis: { host: "r".repeat(253), port: 65535, db: 1023, timeout: "24d", poolSize: 10000, idleTimeout: "24d" },
  rules: [{ name: "r".repeat(64), when: { path: "/" + "x".repeat(255) }, then: { respond: { status: 599, body: "b".repeat(65536) } } }],
};
/** Every numeric field at its minimum, every string at its shortest. */
const MINIMA = {
  name: "m",
  serverNames: ["a"],
  origins: { o: { servers: [{ address: "127.0.0.1:1", weight: 1, maxFails: 0, failTimeout: "1s" }], keepalive: 0, keepaliveTimeout: "1ms", keepaliveRequests: 1, connectTimeout: "1ms", readTimeout: "1ms", sendTimeout: "1ms", retries: 0, retryOn: [], retryTimeout: "0s", maxFails: 0, failTimeout: "1s" } },
  cache: { disk: { size: "1m", keysZone: "64k", inactive: "1s", markersSize: "1m", path: "c", statePath: "s" }, key: { query: { allow: ["q"] } }, ttl: { "200": "0s" }, staleIfError: "1s", staleWhileRevalidate: "1s", lock: { timeout: "1ms", age: "1ms" }, ram: { size: "1m", maxObjectSize: "1", minHits: 1 } },
  headers: { request: { set: { R: "" } }, cacheStatus: "S" },
  health: { path: "/h" },
  purge: { path: "/p", allow: ["127.0.0.1"], token: { env: "PROP_PURGE_TOKEN" }, indexSize: "1m", indexTtl: "1s", maxKeysPerTag: 1, channel: "c" },
  workers: { processes: 1, connections: 16 },
  rateLimit: [{ name: "l", rate: "1r/h", burst: 0 }],
  redis: { host: "r", port: 1, db: 0, timeout: "1ms", poolSize: 1, idleTimeout: "1s" },
};

describe("property: every valid policy gives a bundle nginx accepts and boots", () => {
  it("the documented maxima, all at once, pass nginx -t and boot", async () => {
    await checkBoots(MAXIMA, MAXIMA.serverNames[0]);
  }, 180_000);

  it("the documented minima, all at once, pass nginx -t and boot", async () => {
    await checkBoots(MINIMA, "a");
  }, 60_000);

  it("passes nginx -t for random valid policies with boundary values, and a few dozen of them boot and answer", async () => {
    const bin = await nginxBinary();
    let valid = 0;
    let booted = 0;
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
        const written = await writeForTest(bundle);
        try {
          if (valid % 3 !== 1) return;
          // boot every third valid policy on a free port of 127.0.0.1 (its own listen may be any address)
          const port = await freePort();
          // the written bundle stays as the CLI wrote it; the booted copy differs only in where it listens
          const conf = bundle.files.get("nginx.conf")!.replace(/^(\s*)listen [^;]*?\d+( default_server)?;$/gm, (_m, sp: string, d: string | undefined) => `${sp}listen 127.0.0.1:${port}${d ?? ""};`);
          expect(conf).toContain(`listen 127.0.0.1:${port}`);
          bundle.files.set("nginx.conf", conf);
          const copy = await writeForTest(bundle);
          try {
            const e = await startBundle(copy.dir, { port, bin, env: { PROP_PURGE_TOKEN: "t0k3n", PROP_EDGE_SECRET: "s3cret", PROP_JWT_SECRET: "jwt-secret-0123456789", PROP_SIGN_KEY: "sign-key" } });
            try {
              const host = p.serverNames?.[0]?.replace(/^\*\./, "www.") ?? "localhost";
              const r = await http(e, "/", { headers: { host } });
              expect(r.status, `GET / on ${host}`).toBeGreaterThan(0);
              const log = await e.errorLog();
              expect(log.split("\n").filter((l) => /\[emerg\]/.test(l))).toEqual([]);
              expect(luaErrors(log.split("\n").filter((l) => /\[(error|crit|alert)\]/.test(l)))).toEqual([]);
              booted++;
            } finally {
              await e.stop();
            }
          } finally {
            await copy.remove();
          }
        } finally {
          await written.remove();
        }
      }),
      { numRuns: 120, seed: 20261201, endOnFailure: true },
    );
    console.log(`[property] ${valid} valid policies passed nginx -t, ${booted} booted and answered`);
    expect(valid).toBeGreaterThan(30);
    expect(booted).toBeGreaterThan(10);
  }, 300_000);
});
