import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import * as net from "node:net";
import * as path from "node:path";
import { request } from "undici";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  ensureNginx,
  findNginx,
  freePort,
  loadModuleLines,
  startBundle,
  testConfig,
  type NginxBinary,
  type RunningNginx,
} from "../src/runtime/nginx.js";
import { startMockOrigin, type MockOrigin } from "./support/mock-origin.js";
import { projectDir } from "./support/edge.js";

function conf(bin: NginxBinary, port: number, originPort: number, extraServer = ""): string {
  return [
    ...loadModuleLines(bin),
    "pid logs/nginx.pid;",
    "error_log logs/error.log info;",
    "worker_processes 1;",
    "events { worker_connections 64; }",
    "http {",
    "  access_log off;",
    "  client_body_temp_path temp/body;",
    "  proxy_temp_path temp/proxy;",
    "  fastcgi_temp_path temp/fastcgi;",
    "  uwsgi_temp_path temp/uwsgi;",
    "  scgi_temp_path temp/scgi;",
    "  server {",
    `    listen 127.0.0.1:${port};`,
    '    location /lua { content_by_lua_block { ngx.say("lua ok") } }',
    `    location / { proxy_pass http://127.0.0.1:${originPort}; }`,
    extraServer,
    "  }",
    "}",
    "",
  ].join("\n");
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function get(url: string): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  const res = await request(url, { headersTimeout: 5000, bodyTimeout: 5000 });
  return { status: res.statusCode, body: await res.body.text(), headers: res.headers };
}

/** Error code of a fresh TCP connect to 127.0.0.1:port ("" when it connects). */
function tcpConnectError(port: number): Promise<string> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: "127.0.0.1", port });
    sock.once("connect", () => {
      sock.destroy();
      resolve("");
    });
    sock.once("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? String(e)));
  });
}

const dirs: string[] = [];
/** A hand-written bundle (nginx.conf and the folders nginx needs) in a project folder workers can traverse. */
async function bundleDir(contents: string, opts: { runtimeDirs?: boolean } = {}): Promise<string> {
  const dir = await projectDir("cdn-build-rt-");
  dirs.push(dir);
  await writeFile(path.join(dir, "nginx.conf"), contents);
  if (opts.runtimeDirs !== false) for (const d of ["logs", "cache", "temp"]) await mkdir(path.join(dir, d));
  return dir;
}

let bin: NginxBinary;
const running: RunningNginx[] = [];
const origins: MockOrigin[] = [];

beforeAll(async () => {
  bin = await ensureNginx();
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((n) => n.stop()));
  await Promise.all(origins.splice(0).map((o) => o.close()));
});

afterAll(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function origin(): Promise<MockOrigin> {
  const o = await startMockOrigin();
  origins.push(o);
  return o;
}

describe("findNginx / freePort", () => {
  it("detects a runtime with a version", async () => {
    const found = await findNginx();
    expect(found).toBeDefined();
    expect(found!.version).toMatch(/\//);
    expect(["openresty", "nginx-lua"]).toContain(found!.kind);
  });

  it("CDN_BUILD_NGINX overrides detection", async () => {
    const saved = process.env.CDN_BUILD_NGINX;
    try {
      process.env.CDN_BUILD_NGINX = bin.path;
      const b = await findNginx();
      expect(b?.path).toBe(path.resolve(bin.path));
      process.env.CDN_BUILD_NGINX = "/nonexistent/nginx";
      expect(await findNginx()).toBeUndefined();
      await expect(ensureNginx()).rejects.toThrow(/CDN_BUILD_NGINX/);
    } finally {
      if (saved === undefined) delete process.env.CDN_BUILD_NGINX;
      else process.env.CDN_BUILD_NGINX = saved;
    }
  });

  it("freePort returns a bindable port", async () => {
    const port = await freePort();
    expect(port).toBeGreaterThan(0);
    const srv = net.createServer();
    await new Promise<void>((r, j) => srv.once("error", j).listen(port, "127.0.0.1", r));
    await new Promise<void>((r) => srv.close(() => r()));
  });
});

describe("testConfig", () => {
  it("accepts a valid config and creates logs/cache/temp", async () => {
    const o = await origin();
    const dir = await bundleDir(conf(bin, await freePort(), o.port), { runtimeDirs: false });
    const res = await testConfig(dir, bin);
    expect(res).toEqual({ ok: true, output: expect.any(String) });
    for (const d of ["logs", "cache", "temp"]) {
      await expect(readFile(path.join(dir, d))).rejects.toMatchObject({ code: "EISDIR" });
    }
  });

  it("rejects a broken config with nginx's error text", async () => {
    const dir = await bundleDir(conf(bin, await freePort(), 9, "    bogus_directive on;"));
    const res = await testConfig(dir);
    expect(res.ok).toBe(false);
    expect(res.output).toMatch(/unknown directive "bogus_directive"/);
  });
});

describe("startBundle", () => {
  it("boots, proxies to the origin, runs Lua, stops without leftovers", async () => {
    const o = await origin();
    const port = await freePort();
    const dir = await bundleDir(conf(bin, port, o.port));
    const ngx = await startBundle(dir, { port, bin, readyPath: "/lua" });
    running.push(ngx);
    expect(ngx.baseUrl).toBe(`http://127.0.0.1:${port}`);
    expect(ngx.host).toBe("127.0.0.1");
    expect(ngx.dir).toBe(path.resolve(dir));

    const r = await get(`${ngx.baseUrl}/hello?x=1`);
    expect(r.status).toBe(200);
    expect(r.body).toBe(`origin:${o.port}:/hello`);
    expect(r.headers["x-origin-port"]).toBe(String(o.port));
    expect(o.hits("/hello")).toBe(1);
    expect(o.hits("/hello?x=1")).toBe(1);
    expect(o.hits("/hello?x=2")).toBe(0);
    expect(o.hits()).toBe(1);
    expect(o.requests[0]).toMatchObject({ method: "GET", url: "/hello?x=1", path: "/hello" });

    const lua = await get(`${ngx.baseUrl}/lua`);
    expect(lua).toMatchObject({ status: 200, body: "lua ok\n" });
    expect(o.hits()).toBe(1);

    expect(await ngx.errorLog()).not.toMatch(/\[(emerg|alert|crit)\]/);

    const pid = ngx.pid;
    expect(pidAlive(pid)).toBe(true);
    const workers = (await readFile(`/proc/${pid}/task/${pid}/children`, "utf8").catch(() => ""))
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
    await ngx.stop();
    expect(pidAlive(pid)).toBe(false);
    for (const w of workers) expect(pidAlive(w)).toBe(false);
    await ngx.stop(); // idempotent
    expect(await tcpConnectError(port)).toBe("ECONNREFUSED");
  });

  it("reload() swaps workers and keeps serving", async () => {
    const o = await origin();
    const port = await freePort();
    const dir = await bundleDir(conf(bin, port, o.port));
    const ngx = await startBundle(dir, { port, bin });
    running.push(ngx);
    expect((await get(`${ngx.baseUrl}/lua`)).body).toBe("lua ok\n");
    await writeFile(
      path.join(dir, "nginx.conf"),
      conf(bin, port, o.port, '    location = /v2 { content_by_lua_block { ngx.say("v2") } }'),
    );
    await ngx.reload();
    expect((await get(`${ngx.baseUrl}/v2`)).body).toBe("v2\n");
    expect(await ngx.errorLog()).toMatch(/reconfiguring/);

    // a broken config is refused; the old workers keep serving
    await writeFile(path.join(dir, "nginx.conf"), conf(bin, port, o.port, "    bogus_directive on;"));
    await expect(ngx.reload()).rejects.toThrow(/unknown directive "bogus_directive"/);
    expect((await get(`${ngx.baseUrl}/v2`)).body).toBe("v2\n");
  });

  it("rejects with error.log / stderr text when the config is broken", async () => {
    const port = await freePort();
    const dir = await bundleDir(conf(bin, port, 9, "    bogus_directive on;"));
    const err = await startBundle(dir, { port, bin, readyTimeoutMs: 5000 }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(Error);
    expect(err!.message).toMatch(/exited with exit code 1/);
    expect(err!.message).toMatch(/unknown directive "bogus_directive"/);
    expect(err!.message).toContain("error.log");
  });

  it("rejects on timeout when the ready path never succeeds, and kills nginx", async () => {
    const port = await freePort();
    const dir = await bundleDir(
      conf(bin, port, 9, "    location = /health { return 503; }"),
    );
    const started = Date.now();
    await expect(startBundle(dir, { port, bin, readyPath: "/health", readyTimeoutMs: 1500 })).rejects.toThrow(
      /did not become ready/,
    );
    expect(Date.now() - started).toBeLessThan(10_000);
    const pid = Number((await readFile(path.join(dir, "logs", "nginx.pid"), "utf8").catch(() => "0")).trim());
    if (pid) expect(pidAlive(pid)).toBe(false);
    // port is free again
    expect(await tcpConnectError(port)).toBe("ECONNREFUSED");
  });
});

describe("mock origin", () => {
  it("routes, counts, destroys and closes", async () => {
    const o = await origin();
    expect(o.address).toBe(`127.0.0.1:${o.port}`);
    expect(o.url).toBe(`http://127.0.0.1:${o.port}`);

    const d = await get(`${o.url}/plain`);
    expect(d).toMatchObject({ status: 200, body: `origin:${o.port}:/plain` });
    expect(d.headers["content-type"]).toBe("text/plain");
    expect(d.headers["cache-control"]).toBeUndefined();

    o.route("/fixed", { status: 201, headers: { "cache-control": "max-age=5", "set-cookie": ["a=1", "b=2"] }, body: "F" });
    const f = await get(`${o.url}/fixed`);
    expect(f).toMatchObject({ status: 201, body: "F" });
    expect(f.headers["cache-control"]).toBe("max-age=5");
    expect(f.headers["set-cookie"]).toEqual(["a=1", "b=2"]);
    expect(f.headers["x-origin-port"]).toBe(String(o.port));

    o.route("/nth", (req, n) => ({ body: `${req.method} #${n}` }));
    expect((await get(`${o.url}/nth`)).body).toBe("GET #1");
    expect((await get(`${o.url}/nth?q`)).body).toBe("GET #2");

    o.route("/drop", { destroy: true });
    await expect(get(`${o.url}/drop`)).rejects.toThrow();
    expect(o.hits("/drop")).toBe(1);

    const t0 = Date.now();
    o.route("/slow", { delayMs: 200, body: "slow" });
    expect((await get(`${o.url}/slow`)).body).toBe("slow");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);

    o.setDefault({ status: 404, body: "nope" });
    expect(await get(`${o.url}/whatever`)).toMatchObject({ status: 404, body: "nope" });

    const post = await request(`${o.url}/post`, { method: "POST", body: "payload" });
    await post.body.dump();
    expect(o.requests.at(-1)).toMatchObject({ method: "POST", body: "payload", path: "/post" });

    expect(o.hits()).toBe(8);
    o.reset();
    expect(o.hits()).toBe(0);
    expect((await get(`${o.url}/fixed`)).body).toBe(`origin:${o.port}:/fixed`);

    await o.close();
    await o.close();
    expect(await tcpConnectError(o.port)).toBe("ECONNREFUSED");
  });

  it("nginx sees a destroyed origin connection as a 502", async () => {
    const o = await origin();
    o.route("/drop", { destroy: true });
    const port = await freePort();
    const dir = await bundleDir(conf(bin, port, o.port).replace("proxy_pass", "proxy_next_upstream off; proxy_pass"));
    const ngx = await startBundle(dir, { port, bin });
    running.push(ngx);
    expect((await get(`${ngx.baseUrl}/drop`)).status).toBe(502);
    expect(o.hits("/drop")).toBe(1);
    expect(await ngx.errorLog()).toMatch(/upstream prematurely closed connection/);
  });
});
