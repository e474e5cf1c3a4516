import { createHmac, createSign, generateKeyPairSync, type KeyObject } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootEdge, type Edge } from "../support/edge.js";
import { startMockOrigin, type MockOrigin } from "../support/mock-origin.js";
import { diagnostics, policy } from "../support/policy.js";
import { http, luaErrors } from "../support/http.js";
import { sleep } from "../support/wait.js";
import { compile } from "../../src/compile.js";
import type { Policy } from "../../src/policy/types.js";

const SECRET = "a-test-secret-of-reasonable-length-0123456789";
const b64u = (x: string | Buffer) => Buffer.from(x).toString("base64url");
const now = () => Math.floor(Date.now() / 1000);

function assemble(header: object | string, payload: object | string, sign: (input: string) => Buffer | string): string {
  const h = typeof header === "string" ? header : b64u(JSON.stringify(header));
  const p = typeof payload === "string" ? payload : b64u(JSON.stringify(payload));
  const input = `${h}.${p}`;
  const s = sign(input);
  return `${input}.${typeof s === "string" ? s : b64u(s)}`;
}

function hs(alg: "HS256" | "HS384" | "HS512", payload: object | string, secret: string | Buffer = SECRET, header: object = {}): string {
  const md = { HS256: "sha256", HS384: "sha384", HS512: "sha512" }[alg];
  return assemble({ alg, typ: "JWT", ...header }, payload, (i) => createHmac(md, secret).update(i).digest());
}

function rs(key: KeyObject, payload: object, header: object = {}): string {
  return assemble({ alg: "RS256", typ: "JWT", ...header }, payload, (i) => createSign("RSA-SHA256").update(i).sign(key));
}

const good = (extra: object = {}) => ({ sub: "user-42", role: "admin", iss: "https://auth.test/", aud: "shop", exp: now() + 600, ...extra });
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

let origin: MockOrigin;
let hsEdge: Edge;
let rsEdge: Edge;
let rsEnvEdge: Edge;
let rsFileEdge: Edge;
let keyDir: string;
const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
const rsaPem = rsa.publicKey.export({ type: "spki", format: "pem" }).toString();
const otherRsa = generateKeyPairSync("rsa", { modulusLength: 2048 });

const base = (name: string) => policy(origin, { name, cache: {}, purge: { allow: ["127.0.0.1"] }, health: {} });

describe("jwt gate", () => {
  beforeAll(async () => {
    origin = await startMockOrigin();
    origin.setDefault({ body: "ok", headers: { "cache-control": "max-age=60" } });
    hsEdge = await bootEdge(
      {
        ...base("jwt-hs"),
        jwt: {
          paths: ["/private/*"],
          algorithms: ["HS256", "HS384", "HS512"],
          secret: { env: "JWT_SECRET" },
          issuer: "https://auth.test/",
          audience: ["shop", "admin"],
          clockSkew: "30s",
          cookie: "session",
          forwardClaims: { sub: "X-User-Id", role: "X-User-Role", groups: "X-User-Groups", lvl: "X-User-Level", org: "X-User-Org" },
        },
      },
      { env: { JWT_SECRET: SECRET } },
    );
    const rsPolicy = (name: string, publicKey: Policy["jwt"] extends infer J ? (J extends { publicKey?: infer K } ? K : never) : never) => ({
      ...base(name),
      jwt: { algorithms: ["RS256" as const], publicKey, forwardClaims: { sub: "X-User-Id" } },
    });
    rsEdge = await bootEdge(rsPolicy("jwt-rs", { pem: rsaPem }));
    rsEnvEdge = await bootEdge(rsPolicy("jwt-rs-env", { env: "JWT_PUBLIC_KEY" }), { env: { JWT_PUBLIC_KEY: rsaPem } });
    keyDir = await mkdtemp(join(tmpdir(), "cdn-jwt-key-"));
    await writeFile(join(keyDir, "jwt.pem"), rsaPem);
    rsFileEdge = await bootEdge(rsPolicy("jwt-rs-file", { file: join(keyDir, "jwt.pem") }));
  });
  afterAll(async () => {
    for (const e of [hsEdge, rsEdge, rsEnvEdge, rsFileEdge]) {
      if (!e) continue;
      expect(luaErrors(await e.errors())).toEqual([]);
      await e.stop();
    }
    await origin?.close();
    if (keyDir) await rm(keyDir, { recursive: true, force: true });
  });

  function lastRequest(path: string) {
    return [...origin.requests].reverse().find((r) => r.path === path)!;
  }

  describe("HMAC (HS256/384/512)", () => {
    for (const alg of ["HS256", "HS384", "HS512"] as const) {
      it(`accepts a valid ${alg} token and forwards the chosen claims`, async () => {
        const path = `/private/${alg}`;
        const r = await http(hsEdge, path, { headers: bearer(hs(alg, good({ groups: ["a", "b"] }))) });
        expect(r.status).toBe(200);
        const req = lastRequest(path);
        expect(req.headers["x-user-id"]).toBe("user-42");
        expect(req.headers["x-user-role"]).toBe("admin");
        expect(req.headers["x-user-groups"]).toBe("a,b");
      });
    }

    it("forwards numbers and booleans as text, and never objects or values with control characters", async () => {
      const path = "/private/types";
      const r = await http(hsEdge, path, { headers: { ...bearer(hs("HS256", good({ lvl: 3, groups: [1, true, "x"], org: { id: 1 }, role: "admin\r\nX-Evil: 1" }))), "x-user-org": "forged" } });
      expect(r.status).toBe(200);
      const h = lastRequest(path).headers;
      expect(h["x-user-level"]).toBe("3");
      expect(h["x-user-groups"]).toBe("1,true,x");
      expect(h["x-user-org"]).toBeUndefined();
      expect(h["x-user-role"]).toBeUndefined();
      expect(h["x-evil"]).toBeUndefined();
    });

    it("accepts the token from the cookie when there is no Authorization header", async () => {
      const r = await http(hsEdge, "/private/cookie", { headers: { cookie: `other=1; session=${hs("HS256", good())}` } });
      expect(r.status).toBe(200);
      expect(lastRequest("/private/cookie").headers["x-user-id"]).toBe("user-42");
    });

    it("accepts an audience list containing an accepted audience", async () => {
      const r = await http(hsEdge, "/private/aud-list", { headers: bearer(hs("HS256", good({ aud: ["other", "admin"] }))) });
      expect(r.status).toBe(200);
    });

    it("strips client-sent claim headers, replacing them with the token's claims", async () => {
      const r = await http(hsEdge, "/private/spoof", { headers: { ...bearer(hs("HS256", good({ role: undefined }))), "x-user-id": "root", "X-User-Role": "superuser" } });
      expect(r.status).toBe(200);
      const req = lastRequest("/private/spoof");
      expect(req.headers["x-user-id"]).toBe("user-42");
      expect(req.headers["x-user-role"]).toBeUndefined();
    });

    it("strips client-sent claim headers on paths outside the gate's scope too", async () => {
      const r = await http(hsEdge, "/public/spoof", { headers: { "x-user-id": "root", "x-user-groups": "admins" } });
      expect(r.status).toBe(200);
      const req = lastRequest("/public/spoof");
      expect(req.headers["x-user-id"]).toBeUndefined();
      expect(req.headers["x-user-groups"]).toBeUndefined();
    });

    it("does not gate paths outside its scope", async () => {
      expect((await http(hsEdge, "/public/page")).status).toBe(200);
      expect((await http(hsEdge, "/privateer")).status).toBe(200);
    });

    it("refuses a missing token with 401 and a Bearer challenge without an error code", async () => {
      const r = await http(hsEdge, "/private/none");
      expect(r.status).toBe(401);
      expect(r.headers["www-authenticate"]).toBe('Bearer realm="edge"');
      expect(r.headers["cache-control"]).toBe("no-store");
      expect(origin.hits("/private/none")).toBe(0);
    });

    it("treats a non-Bearer Authorization header as no token", async () => {
      const r = await http(hsEdge, "/private/basic", { headers: { authorization: "Basic dXNlcjpwYXNz" } });
      expect(r.status).toBe(401);
      expect(r.headers["www-authenticate"]).toBe('Bearer realm="edge"');
    });

    const refused: [string, () => string, string][] = [
      ["an expired token", () => hs("HS256", good({ exp: now() - 60 })), "token expired"],
      ["a token expired beyond the skew edge", () => hs("HS256", good({ exp: now() - 40 })), "token expired"],
      ["a token not yet valid", () => hs("HS256", good({ nbf: now() + 60 })), "token not yet valid"],
      ["a token valid only beyond the skew edge", () => hs("HS256", good({ nbf: now() + 40 })), "token not yet valid"],
      ["a token without exp", () => hs("HS256", good({ exp: undefined })), "no expiry"],
      ["a token with a string exp", () => hs("HS256", good({ exp: String(now() + 600) })), "malformed expiry"],
      ["a wrong issuer", () => hs("HS256", good({ iss: "https://evil.test/" })), "wrong issuer"],
      ["a missing issuer", () => hs("HS256", good({ iss: undefined })), "wrong issuer"],
      ["a wrong audience", () => hs("HS256", good({ aud: "other" })), "wrong audience"],
      ["a wrong audience list", () => hs("HS256", good({ aud: ["x", "y"] })), "wrong audience"],
      ["a token signed with another secret", () => hs("HS256", good(), "another-secret"), "bad signature"],
      [
        "a tampered payload",
        () => {
          const [h, , s] = hs("HS256", good()).split(".");
          return `${h}.${b64u(JSON.stringify(good({ role: "owner" })))}.${s}`;
        },
        "bad signature",
      ],
      [
        "a tampered signature (one byte flipped)",
        () => {
          const [h, p, s] = hs("HS256", good()).split(".");
          const sig = Buffer.from(s!, "base64url");
          sig[0] = sig[0]! ^ 1;
          return `${h}.${p}.${b64u(sig)}`;
        },
        "bad signature",
      ],
      [
        "a signature in a non-canonical encoding (last character's spare bits set)",
        () => {
          const [h, p, s] = hs("HS256", good()).split(".");
          const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
          const last = alphabet.indexOf(s!.at(-1)!);
          return `${h}.${p}.${s!.slice(0, -1)}${alphabet[last ^ 1]}`;
        },
        "malformed signature",
      ],
      ["alg none with an empty signature", () => assemble({ alg: "none", typ: "JWT" }, good(), () => ""), "algorithm not accepted"],
      ["alg none with a signature", () => assemble({ alg: "none" }, good(), () => Buffer.from("x")), "algorithm not accepted"],
      ["alg None (case variant)", () => assemble({ alg: "None" }, good(), () => ""), "algorithm not accepted"],
      ["an RS256 token at an HMAC gate", () => rs(rsa.privateKey, good()), "algorithm not accepted"],
      ["a header without alg", () => assemble({ typ: "JWT" }, good(), (i) => createHmac("sha256", SECRET).update(i).digest()), "algorithm not accepted"],
      ["a critical header extension", () => hs("HS256", good(), SECRET, { crit: ["exp"] }), "unsupported critical header"],
      ["two segments", () => hs("HS256", good()).split(".").slice(0, 2).join("."), "malformed token"],
      ["four segments", () => hs("HS256", good()) + ".xyz", "malformed token"],
      ["bad base64 in the header", () => "e!!.e30.c2ln", "malformed token header"],
      ["padding in the header", () => b64u('{"alg":"HS256"}') + "==.e30.c2ln", "malformed token header"],
      ["bad JSON in the header", () => assemble("eyJhbGciOiJIUzI1NiI", good(), (i) => createHmac("sha256", SECRET).update(i).digest()), "malformed token header"],
      ["a header that is not an object", () => assemble(b64u('"HS256"'), good(), (i) => createHmac("sha256", SECRET).update(i).digest()), "malformed token header"],
      ["bad JSON in the (signed) payload", () => hs("HS256", b64u('{"sub":"x",}')), "malformed token payload"],
      ["a payload with a duplicate claim", () => hs("HS256", b64u(`{"exp":${now() + 600},"exp":1}`)), "malformed token payload"],
      ["a payload that is an array", () => hs("HS256", b64u("[1,2]")), "malformed token payload"],
    ];
    for (const [what, make, reason] of refused) {
      it(`refuses ${what} with 401 invalid_token (${reason})`, async () => {
        const r = await http(hsEdge, "/private/refused", { headers: bearer(make()) });
        expect(r.status).toBe(401);
        expect(r.headers["www-authenticate"]).toBe(`Bearer realm="edge", error="invalid_token", error_description="${reason}"`);
        expect(r.body).toBe(`invalid_token: ${reason}\n`);
      });
    }

    it("refuses a token too large for nginx's header buffers before it reaches the gate or the origin", async () => {
      const r = await http(hsEdge, "/private/huge", { headers: bearer(hs("HS256", good({ pad: "x".repeat(9000) }))) });
      expect(r.status).toBe(400);
      expect(origin.hits("/private/huge")).toBe(0);
    });

    it("accepts tokens inside the clock-skew allowance", async () => {
      expect((await http(hsEdge, "/private/skew-exp", { headers: bearer(hs("HS256", good({ exp: now() - 20 }))) })).status).toBe(200);
      expect((await http(hsEdge, "/private/skew-nbf", { headers: bearer(hs("HS256", good({ nbf: now() + 20 }))) })).status).toBe(200);
    });

    it("never lets a refused request reach the origin", async () => {
      expect(origin.hits("/private/refused")).toBe(0);
    });

    it("does not gate the health and purge endpoints", async () => {
      expect((await http(hsEdge, "/health")).status).toBe(200);
      const p = await http(hsEdge, "/__purge", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ url: "/x" }) });
      expect(p.status).not.toBe(401);
    });

    it("serves one cached copy to every valid token holder of a cookie-authenticated path (Authorization bypasses the cache)", async () => {
      const path = "/private/cached";
      const a = await http(hsEdge, path, { headers: { cookie: `session=${hs("HS256", good({ sub: "a" }))}` } });
      const b = await http(hsEdge, path, { headers: { cookie: `session=${hs("HS256", good({ sub: "b" }))}` } });
      expect([a.status, b.status]).toEqual([200, 200]);
      expect(origin.hits(path)).toBe(1);
      const c = await http(hsEdge, path, { headers: bearer(hs("HS256", good())) });
      expect(c.status).toBe(200);
      expect(origin.hits(path)).toBe(2);
      expect((await http(hsEdge, path)).status).toBe(401);
    });
  });

  describe("RS256", () => {
    for (const [what, edge] of [
      ["an inline PEM", () => rsEdge],
      ["a PEM from the environment", () => rsEnvEdge],
      ["a PEM file read at start", () => rsFileEdge],
    ] as const) {
      it(`accepts a valid RS256 token with ${what}`, async () => {
        const path = `/rs/${what.replace(/ /g, "-")}`;
        const r = await http(edge(), path, { headers: bearer(rs(rsa.privateKey, { sub: "rs-user", exp: now() + 60 })) });
        expect(r.status).toBe(200);
        expect(lastRequest(path).headers["x-user-id"]).toBe("rs-user");
      });
    }

    it("refuses a token signed by another RSA key", async () => {
      const r = await http(rsEdge, "/rs/other", { headers: bearer(rs(otherRsa.privateKey, { sub: "x", exp: now() + 60 })) });
      expect(r.status).toBe(401);
      expect(r.headers["www-authenticate"]).toContain('error_description="bad signature"');
    });

    it("refuses algorithm confusion: an HS256 token whose HMAC key is the RSA public key", async () => {
      for (const secret of [rsaPem, rsaPem.trim(), rsa.publicKey.export({ type: "spki", format: "der" })]) {
        const r = await http(rsEdge, "/rs/confused", { headers: bearer(hs("HS256", { sub: "x", exp: now() + 60 }, secret)) });
        expect(r.status).toBe(401);
        expect(r.headers["www-authenticate"]).toContain('error_description="algorithm not accepted"');
      }
    });

    it("refuses an RS256 header on a tampered payload and alg none", async () => {
      const t = rs(rsa.privateKey, { sub: "x", exp: now() + 60 });
      const [h, , s] = t.split(".");
      expect((await http(rsEdge, "/rs/t", { headers: bearer(`${h}.${b64u(JSON.stringify({ sub: "y", exp: now() + 60 }))}.${s}`) })).status).toBe(401);
      expect((await http(rsEdge, "/rs/t", { headers: bearer(assemble({ alg: "none" }, { sub: "x", exp: now() + 60 }, () => "")) })).status).toBe(401);
    });

    it("refuses a wrong key type: an ES256 token", async () => {
      const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
      const t = assemble({ alg: "ES256" }, { sub: "x", exp: now() + 60 }, (i) => createSign("SHA256").update(i).sign({ key: ec.privateKey, dsaEncoding: "ieee-p1363" }));
      expect((await http(rsEdge, "/rs/es", { headers: bearer(t) })).status).toBe(401);
    });

    it("stores the verified claims in ngx.ctx.cdn_jwt_claims (a contract other gates read)", async () => {
      // the Lua runtime sets the ctx entry; assert its name in the compiled runtime, since ctx is not observable over HTTP
      const { bundle } = compile({ ...base("ctx"), listen: { http: 8080 }, jwt: { algorithms: ["HS256"], secret: { env: "S" } } });
      expect(bundle!.files.get("lua/features/jwt.lua")).toContain("cdn_jwt_claims");
    });
  });
});

describe("jwt gate: misconfiguration at start", () => {
  it("answers 500 (not 401, never 200) when the secret variable is not set, and logs why", async () => {
    const o = await startMockOrigin();
    const e = await bootEdge({ name: "jwt-nosecret", origins: { app: { servers: [{ address: o.address }] } }, jwt: { algorithms: ["HS256"], secret: { env: "JWT_UNSET_SECRET" } } });
    try {
      const r = await http(e, "/x", { headers: bearer(hs("HS256", good())) });
      expect(r.status).toBe(500);
      expect(o.hits()).toBe(0);
      expect((await e.errors()).join("\n")).toContain("JWT_UNSET_SECRET");
    } finally {
      await e.stop();
      await o.close();
    }
  });
});

describe("jwt gate: unusable keys at start", () => {
  it("answers 500 when the PEM from the environment is not an RSA key or not a PEM", async () => {
    const o = await startMockOrigin();
    const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "pem" }).toString();
    for (const [pem, why] of [
      [ec, "not an RSA key"],
      ["garbage", "not a PEM public key"],
    ]) {
      const e = await bootEdge({ name: "jwt-badkey", origins: { app: { servers: [{ address: o.address }] } }, jwt: { algorithms: ["RS256"], publicKey: { env: "JWT_PUB" } } }, { env: { JWT_PUB: pem! } });
      try {
        expect((await http(e, "/x", { headers: bearer(rs(rsa.privateKey, { sub: "x", exp: now() + 60 })) })).status).toBe(500);
        expect((await e.errors()).join("\n")).toContain(why);
      } finally {
        await e.stop();
      }
    }
    expect(o.hits()).toBe(0);
    await o.close();
  });
});

describe("jwt gate: verified-token cache", () => {
  it("re-checks expiry on every request: a token accepted once is refused once it expires (skew 0)", async () => {
    const o = await startMockOrigin();
    const e = await bootEdge(
      { name: "jwt-expiry", origins: { app: { servers: [{ address: o.address }] } }, jwt: { algorithms: ["HS256"], secret: { env: "JWT_SECRET" }, clockSkew: "0s", forwardClaims: { sub: "X-User-Id" } } },
      { env: { JWT_SECRET: SECRET } },
    );
    try {
      const t = hs("HS256", { sub: "short", exp: now() + 2 });
      expect((await http(e, "/a", { headers: bearer(t) })).status).toBe(200);
      expect((await http(e, "/a", { headers: bearer(t) })).status).toBe(200);
      expect(o.requests.at(-1)!.headers["x-user-id"]).toBe("short");
      await sleep(3100); // the clock itself: past exp
      const r = await http(e, "/a", { headers: bearer(t) });
      expect(r.status).toBe(401);
      expect(r.headers["www-authenticate"]).toContain('error_description="token expired"');
      expect(luaErrors(await e.errors())).toEqual([]);
    } finally {
      await e.stop();
      await o.close();
    }
  });
});

describe("jwt gate: validation", () => {
  const pem = rsaPem;
  const jwtDiags = (jwt: unknown, extra: object = {}) => diagnostics({ ...policy("127.0.0.1:3000", { name: "v" }), jwt, ...extra });

  it("accepts valid HMAC and RSA gates", () => {
    expect(jwtDiags({ algorithms: ["HS256", "HS512"], secret: { env: "S" }, paths: ["/private/*"] })).toEqual([]);
    expect(jwtDiags({ algorithms: ["RS256"], publicKey: { pem } })).toEqual([]);
    expect(jwtDiags({ algorithms: ["RS256"], publicKey: { file: "/etc/edge/jwt.pem" } })).toEqual([]);
    expect(jwtDiags({ algorithms: ["RS256"], publicKey: { env: "PUB" } })).toEqual([]);
  });

  it("refuses unknown algorithms and alg none in the schema", () => {
    for (const alg of ["none", "ES256", "HS1"]) {
      expect(jwtDiags({ algorithms: [alg], secret: { env: "S" } }).some((c) => c.includes("/jwt/algorithms/0"))).toBe(true);
    }
    expect(jwtDiags({ algorithms: [], secret: { env: "S" } }).some((c) => c.includes("/jwt/algorithms"))).toBe(true);
  });

  it("CDN3060: HMAC and RSA algorithms mixed", () => {
    expect(jwtDiags({ algorithms: ["HS256", "RS256"], secret: { env: "S" }, publicKey: { pem } })).toContain("CDN3060 /jwt/algorithms");
  });

  it("CDN3061: HS without a secret; CDN3062: RS256 without a key", () => {
    expect(jwtDiags({ algorithms: ["HS384"] })).toEqual(["CDN3061 /jwt/secret"]);
    expect(jwtDiags({ algorithms: ["RS256"] })).toEqual(["CDN3062 /jwt/publicKey"]);
  });

  it("CDN3063: an inline PEM that is not a public key", () => {
    expect(jwtDiags({ algorithms: ["RS256"], publicKey: { pem: "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n" } })).toEqual(["CDN3063 /jwt/publicKey/pem"]);
    const priv = rsa.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    expect(jwtDiags({ algorithms: ["RS256"], publicKey: { pem: priv } })).toEqual(["CDN3063 /jwt/publicKey/pem"]);
  });

  it("CDN3064: a key of the wrong type or too small", () => {
    const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "pem" }).toString();
    expect(jwtDiags({ algorithms: ["RS256"], publicKey: { pem: ec } })).toEqual(["CDN3064 /jwt/publicKey/pem"]);
    const small = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({ type: "spki", format: "pem" }).toString();
    expect(jwtDiags({ algorithms: ["RS256"], publicKey: { pem: small } })).toEqual(["CDN3064 /jwt/publicKey/pem"]);
  });

  it("CDN3065: a key that the algorithms never use", () => {
    expect(jwtDiags({ algorithms: ["HS256"], secret: { env: "S" }, publicKey: { pem } })).toEqual(["CDN3065 /jwt/publicKey"]);
    expect(jwtDiags({ algorithms: ["RS256"], secret: { env: "S" }, publicKey: { pem } })).toEqual(["CDN3065 /jwt/secret"]);
  });

  it("CDN3066: a key file path with '..'", () => {
    expect(jwtDiags({ algorithms: ["RS256"], publicKey: { file: "../keys/jwt.pem" } })).toEqual(["CDN3066 /jwt/publicKey/file"]);
  });

  it("CDN3067: a clock skew over 10 minutes; CDN2006 for a non-duration", () => {
    expect(jwtDiags({ algorithms: ["HS256"], secret: { env: "S" }, clockSkew: "1h" })).toEqual(["CDN3067 /jwt/clockSkew"]);
    expect(jwtDiags({ algorithms: ["HS256"], secret: { env: "S" }, clockSkew: "1500ms" })[0]).toMatch(/^CDN2006 /);
  });

  it("CDN3068: empty issuer or audience", () => {
    expect(jwtDiags({ algorithms: ["HS256"], secret: { env: "S" }, issuer: [] })).toEqual(["CDN3068 /jwt/issuer"]);
    expect(jwtDiags({ algorithms: ["HS256"], secret: { env: "S" }, audience: ["a", ""] })).toEqual(["CDN3068 /jwt/audience/1"]);
  });

  it("CDN3069/CDN3070: unusable claim names and reserved header names; duplicate headers", () => {
    expect(jwtDiags({ algorithms: ["HS256"], secret: { env: "S" }, forwardClaims: { "a b": "X-A" } })).toEqual(["CDN3069 /jwt/forwardClaims/a b"]);
    expect(jwtDiags({ algorithms: ["HS256"], secret: { env: "S" }, forwardClaims: { sub: "Authorization" } })).toEqual(["CDN3070 /jwt/forwardClaims/sub"]);
    expect(jwtDiags({ algorithms: ["HS256"], secret: { env: "S" }, forwardClaims: { sub: "X-U", uid: "x-u" } })).toEqual(["CDN2010 /jwt/forwardClaims/uid"]);
  });

  it("CDN3071 (warning): per-user claims from a cookie token on a shared cache", () => {
    const gate = { algorithms: ["HS256"], secret: { env: "S" }, cookie: "session", forwardClaims: { sub: "X-User" } };
    expect(jwtDiags(gate, { cache: {} })).toEqual(["CDN3071 /jwt/cookie"]);
    expect(jwtDiags(gate, { cache: { bypass: { cookies: ["session"] } } })).toEqual([]);
    expect(jwtDiags(gate)).toEqual([]);
  });

  it("CDN3001: an empty scope", () => {
    expect(jwtDiags({ algorithms: ["HS256"], secret: { env: "S" }, paths: [] })).toEqual(["CDN3001 /jwt/paths"]);
  });

  it("never writes the secret into the bundle: only the variable name", () => {
    const { bundle } = compile({ name: "v", listen: { http: 8080 }, origins: { app: { servers: [{ address: "127.0.0.1:3000" }] } }, jwt: { algorithms: ["HS256"], secret: { env: "MY_JWT_SECRET" } } });
    expect(bundle!.files.get("nginx.conf")).toContain("env MY_JWT_SECRET;");
    expect(bundle!.files.get("lua/policy_data.lua")).toContain('"MY_JWT_SECRET"');
  });
});
