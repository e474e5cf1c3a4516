/**
 * vitest globalSetup: the tests need a real nginx with Lua, redis-server and LuaJIT (TEST_PACKAGES in
 * ./system-packages.ts). Missing packages are installed when running as root; otherwise the run fails and
 * says what to install. It is never a skip (CI=true or not).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { ensureNginx, loadModuleLines, testConfig } from "../../src/runtime/nginx.js";
import { ensureTestPackages } from "./system-packages.js";

export default async function setup(): Promise<void> {
  await ensureTestPackages((line) => process.stderr.write(`[cdn-build tests] ${line}\n`));
  let bin;
  try {
    bin = await ensureNginx({ install: true });
  } catch (err) {
    throw new Error(
      `cdn-build tests need nginx with the Lua module (or OpenResty); none is available.\n` +
        `${err instanceof Error ? err.message : String(err)}`,
    );
  }

  // Smoke test: the Lua module must actually load (e.g. resty.core must be installed).
  const dir = await mkdtemp(path.join(tmpdir(), "cdn-build-setup-"));
  try {
    await writeFile(
      path.join(dir, "nginx.conf"),
      [
        ...loadModuleLines(bin),
        "pid logs/nginx.pid;",
        "error_log logs/error.log;",
        "events { worker_connections 16; }",
        "http {",
        "  client_body_temp_path temp/body; proxy_temp_path temp/proxy;",
        "  fastcgi_temp_path temp/fastcgi; uwsgi_temp_path temp/uwsgi; scgi_temp_path temp/scgi;",
        "  init_by_lua_block { require('resty.core') }",
        "  server { listen 127.0.0.1:1; location / { content_by_lua_block { ngx.say('ok') } } }",
        "}",
        "",
      ].join("\n"),
    );
    const res = await testConfig(dir, bin);
    if (!res.ok) {
      throw new Error(`${bin.path} (${bin.version}, ${bin.kind}) cannot run a Lua config:\n${res.output}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  process.stderr.write(`[cdn-build tests] using ${bin.path} (${bin.version}, ${bin.kind})\n`);
}
