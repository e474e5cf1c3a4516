import { describe, expect, it } from "vitest";
import { ngxComment, ngxString, ngxTemplate, ngxWord, NginxEscapeError } from "../src/emit/nginx-escape.js";
import { luaString, toLua } from "../src/emit/lua-data.js";
import { formatNginx } from "../src/emit/format.js";
import { compile } from "../src/compile.js";
import { bootEdge } from "./support/edge.js";
import { startMockOrigin } from "./support/mock-origin.js";
import { http } from "./support/http.js";

const HOSTILE = [
  '"; } location / { return 200 "pwned"; } #',
  "a\nreturn 200;",
  "a\r\nX-Injected: 1",
  "$host",
  "${prefix}",
  "x' y",
  "back\\slash\\",
  "semi;colon",
  "brace}{",
  "nul\u0000byte",
];

describe("nginx escaping helpers", () => {
  it("quotes plain strings so nginx reads them back unchanged", () => {
    expect(ngxString('a "b" c\\d;{}')).toBe('"a \\"b\\" c\\\\d;{}"');
  });
  it("refuses variables, newlines and control characters in literal strings", () => {
    for (const bad of ["$host", "${x}", "a\nb", "a\rb", "a\u0000b", "a\u001bb"]) {
      expect(() => ngxString(bad)).toThrow(NginxEscapeError);
    }
  });
  it("refuses anything but a bare token as a word", () => {
    for (const bad of HOSTILE) expect(() => ngxWord(bad)).toThrow(NginxEscapeError);
    expect(ngxWord("127.0.0.1:8080")).toBe("127.0.0.1:8080");
    expect(ngxWord("[::1]")).toBe("[::1]");
  });
  it("keeps templates on one line", () => {
    expect(() => ngxTemplate("a\nb")).toThrow(NginxEscapeError);
    expect(ngxTemplate('{"a":"$b"}')).toBe('"{\\"a\\":\\"$b\\"}"');
  });
  it("makes comments inert", () => {
    expect(ngxComment("x\n} server {")).toBe("x__ server _");
  });
  it("serialises any string into Lua safely", () => {
    for (const s of HOSTILE) {
      const lua = luaString(s);
      expect(lua).toMatch(/^"[ -~]*"$/);
      expect(lua.slice(1, -1)).not.toMatch(/(?<!\\)"/);
    }
    expect(toLua({ b: 1, a: [true, "x"] })).toBe('{\n  ["a"] = {\n    true,\n    "x",\n  },\n  ["b"] = 1,\n}');
  });
  it("formats braces inside quotes without changing depth", () => {
    expect(formatNginx('http {\nlog_format x "{}}}";\nserver {\nlisten 80;\n}\n}\n')).toBe(
      'http {\n    log_format x "{}}}";\n    server {\n        listen 80;\n    }\n}\n',
    );
  });
});

describe("hostile policy strings", () => {
  it("are rejected with a diagnostic wherever they would reach nginx.conf", () => {
    for (const h of HOSTILE) {
      const fields: [string, any][] = [
        ["/name", { name: h }],
        ["/origins/app/hostHeader", { origins: { app: { servers: [{ address: "127.0.0.1:1" }], hostHeader: h } } }],
        ["/origins/app/servers/0/address", { origins: { app: { servers: [{ address: h }] } } }],
        ["/health/path", { health: { path: h } }],
        ["/purge/path", { purge: { path: h } }],
        ["/serverNames/0", { serverNames: [h] }],
        ["/accessLog/path", { accessLog: { path: h } }],
        ["/cache/disk/path", { cache: { disk: { path: h } } }],
        ["/workers/user", { workers: { user: h } }],
        ["/cache/ttl/200", { cache: { ttl: { "200": h } } }],
      ];
      for (const [path, patch] of fields) {
        const r = compile({ name: "h", origins: { app: { servers: [{ address: "127.0.0.1:1" }] } }, ...patch });
        expect(r.bundle, `${path} = ${JSON.stringify(h)}`).toBeUndefined();
        expect(r.diagnostics.map((d) => d.path)).toContain(path);
      }
    }
  });

  it("reach the client verbatim, not nginx.conf, when they are header values", async () => {
    const origin = await startMockOrigin();
    const values = HOSTILE.filter((h) => !/[\u0000-\u001f]/.test(h));
    const set = Object.fromEntries(values.map((v, i) => [`X-H${i}`, v]));
    const edge = await bootEdge({ name: "hostile", origins: { app: { servers: [{ address: origin.address }] } }, headers: { response: { set } } });
    try {
      expect(edge.conf).not.toContain("pwned");
      const r = await http(edge, "/");
      expect(r.status).toBe(200);
      expect(r.body).toBe(`origin:${origin.port}:/`);
      values.forEach((v, i) => expect(r.headers[`x-h${i}`]).toBe(v));
    } finally {
      await edge.stop();
      await origin.close();
    }
  });
});
