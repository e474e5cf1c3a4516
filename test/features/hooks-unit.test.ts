// The example's hooks unit-tested in Node with cdn-build/edge/testing, as docs/hooks.md shows a user doing it
// (no nginx: the same hooks are tested over HTTP in hooks.test.ts).
import { describe, expect, it } from "vitest";
import { runAccess, runBody, runHeaders, runLog } from "../../src/edge/testing.js";
import gate from "../../examples/edge-hooks/hooks/country-gate.js";
import label from "../../examples/edge-hooks/hooks/backend-label.js";
import banner from "../../examples/edge-hooks/hooks/banner.js";
import logCountry from "../../examples/edge-hooks/hooks/log-country.js";
import { base64Decode, base64Encode, hmacSha256Hex, jsonDecode, jsonEncode, sha256Hex } from "../../src/edge/node.js";

describe("the edge-hooks example in Node", () => {
  it("refuses XX with 451 and tells the origin the country", () => {
    const blocked = runAccess(gate, { path: "/", headers: { "X-Geoip-Country-Code": "XX" } });
    expect([blocked.action, blocked.status, blocked.body]).toEqual(["deny", 451, "This content is not available in your country."]);
    const ok = runAccess(gate, { path: "/shoes", headers: { "X-Geoip-Country-Code": "FR" } });
    expect(ok.action).toBe("continue");
    expect(ok.requestHeaders["x-edge-country"]).toBe("FR");
    expect(ok.state.country).toBe("FR");
  });

  it("sends beta paths without the cookie home", () => {
    const r = runAccess(gate, { path: "/beta/x" });
    expect([r.action, r.status, r.location]).toEqual(["redirect", 302, "/"]);
    expect(runAccess(gate, { path: "/beta/x", headers: { Cookie: "beta=1" } }).action).toBe("continue");
  });

  it("labels the backend, adds the beta notice and logs the country", () => {
    expect(runHeaders(label, { headers: { "X-Backend": "php-8.3", "X-Powered-By": "PHP" } }).headers).toEqual({ "x-backend": "current" });
    const page = runBody(banner, "<body>hi</body>", { path: "/beta/x", headers: { "Content-Type": "text/html" } });
    expect(page.body).toBe('<body>hi<p class="beta">You are seeing the beta.</p></body>');
    expect(runBody(banner, "<body>hi</body>", { path: "/x", headers: { "Content-Type": "text/html" } }).body).toBe("<body>hi</body>");
    expect(runLog(logCountry, { state: { country: "FR" } }).field).toBe("country=FR");
    expect(runLog(logCountry).field).toBe("");
  });
});

describe("cdn-build/edge helpers in Node", () => {
  it("match the known answers (the Lua side is compared over HTTP in hooks.test.ts)", () => {
    expect(sha256Hex("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect(hmacSha256Hex("key", "The quick brown fox jumps over the lazy dog")).toBe("f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
    expect(base64Encode("hi?")).toBe("aGk/");
    expect(base64Decode("aGk/")).toBe("hi?");
    expect(base64Decode("%%%")).toBeUndefined();
    expect(jsonEncode({ a: "x" })).toBe('{"a":"x"}');
    expect(jsonDecode("{")).toBeUndefined();
  });
});
