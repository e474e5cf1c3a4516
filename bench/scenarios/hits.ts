import type { NginxBinary, RunningNginx } from "../../src/runtime/nginx.js";
import { cpu, cpuSpeed, targetLine, CONNECTIONS, diskDir, noiseNote, type BenchContext, expectHit, KIB, nginxTarget, perRoundSummary, rpsRatio, runRounds, Scenario, SECONDS, startOrigin, verdict, type Origin, type Target } from "../lib.js";
import { findPeers, startAts, startVarnish, type Peer } from "../peers.js";
import { cachePolicy, edgePolicy, ENV, EDGE_GATES, gatesHeaders, TARGET_URL } from "../policies.js";
import { cell, isAtsHit, isVarnishHit, type Section } from "../stats.js";

const STOCK = "stock nginx proxy_cache HIT";
const RETURN = "`return 200` from config (the ceiling)";
const LUA_FLOOR = "Lua floor: body printed from access_by_lua";
const HAND = "hand-written shared-dict RAM tier (20 lines of Lua)";
const RAM = "cdn-build RAM tier (`HIT-RAM`)";
const GATES = "+ origin secret, IP rules (5,000 blocks), node rate limit, WAF";
const RULES = "+ 1,000 rules";
const LOG = "+ JSON access log (the full edge)";
const DISK = "cdn-build disk tier (`HIT`)";

/** `return 200` of the 1 KiB body from the config, or (`lua`) printed by access_by_lua: the Lua floor. */
function bootReturn(s: Scenario, name: string, lua: boolean): Promise<RunningNginx> {
  return s.bootHandWritten(
    name,
    (port) => `  ${luaPath(s.bin)}
  ${lua ? `init_by_lua_block { BODY = string.rep("x", ${KIB}) }` : ""}
  server {
    listen 127.0.0.1:${port};
    location / {
      default_type text/plain;
      ${lua ? `access_by_lua_block { ngx.header["Content-Length"] = ${KIB} ngx.print(BODY) return ngx.exit(200) }` : `return 200 "${"x".repeat(KIB)}";`}
    }
  }`,
  );
}

/** Debian's nginx-lua loads lua-resty-core from /usr/share/lua: a hand-written config must say where. */
function luaPath(bin: NginxBinary): string {
  return bin.kind === "nginx-lua" ? 'lua_package_path "/usr/share/lua/5.1/?.lua;;";' : "";
}

/** Stock nginx proxy_cache: the baseline of every ratio (`sendfile on`, `tcp_nopush` left off). */
export function bootStock(s: Scenario, origin: Origin, disk: { keysZone: string; size: string } = { keysZone: "10m", size: "1g" }): Promise<RunningNginx> {
  return s.bootHandWritten(
    "stock proxy_cache",
    (port) => `  proxy_cache_path cache/disk levels=1:2 keys_zone=plain:${disk.keysZone} max_size=${disk.size} inactive=7d use_temp_path=off;
  upstream origin { server ${origin.address}; keepalive 32; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_cache plain; proxy_cache_valid 200 1h; proxy_cache_lock on;
    }
  }`,
  );
}

/**
 * A RAM tier written by hand, as a user of plain OpenResty would: the access phase answers from a shared
 * dict keyed by the request URI; on a miss nginx proxies, and the body filter stores a 200's body (fixed
 * TTL and content type: none of cdn-build's freshness rules, Vary, purge, Age or admission).
 */
function bootHandRam(s: Scenario, origin: Origin): Promise<RunningNginx> {
  return s.bootHandWritten(
    HAND,
    (port) => `  ${luaPath(s.bin)}
  lua_shared_dict hot 64m;
  upstream origin { server ${origin.address}; keepalive 32; }
  server {
    listen 127.0.0.1:${port};
    location / {
      access_by_lua_block {
        local body = ngx.shared.hot:get(ngx.var.request_uri)
        if body then
          ngx.header["Content-Type"] = "text/plain"
          ngx.header["Content-Length"] = #body
          ngx.header["X-Cache"] = "HIT-RAM"
          ngx.print(body)
          return ngx.exit(200)
        end
      }
      proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection "";
      body_filter_by_lua_block {
        if ngx.status ~= 200 then return end
        local ctx = ngx.ctx
        ctx[#ctx + 1] = ngx.arg[1]
        if ngx.arg[2] then ngx.shared.hot:set(ngx.var.request_uri, table.concat(ctx), 3600) end
      }
    }
  }`,
  );
}

/** A check on a response header before measuring. */
const header = (name: string, want: string) => (p: { headers: Headers }) => (p.headers.get(name) === want ? undefined : `${name}: ${p.headers.get(name)}, expected ${want}`);

/**
 * The main table: a hot 1 KiB object from every configuration, in interleaved rounds, against stock
 * proxy_cache of the same round. Every request carries the same bytes (the gates' headers included).
 */
export async function hits(ctx: BenchContext): Promise<Section[]> {
  const s = new Scenario(ctx.bin, ctx.clientBin);
  return s.run(async () => {
    const origin = await startOrigin(s);
    const headers = gatesHeaders(EDGE_GATES);
    const path = TARGET_URL;

    const stock = await bootStock(s, origin);
    const ret = await bootReturn(s, "return 200", false);
    const floor = await bootReturn(s, "Lua floor", true);
    const hand = await bootHandRam(s, origin);
    const ram = await s.bootPolicy("RAM tier", edgePolicy(origin.address, {}), ENV);
    const gates = await s.bootPolicy("RAM + gates", edgePolicy(origin.address, { gates: true }), ENV);
    const rules = await s.bootPolicy("RAM + gates + 1,000 rules", edgePolicy(origin.address, { gates: true, rules: 1000 }), ENV);
    const full = await s.bootPolicy("full edge", edgePolicy(origin.address, { gates: true, rules: 1000, log: await diskDir(s) }), ENV);
    const disk = await s.bootPolicy("disk tier", cachePolicy("bench-disk", origin.address), ENV);
    const peers: Peer[] = [];
    const peerBins = await findPeers((l) => console.log(`  ${l}`));
    for (const line of peerBins.skipped) console.log(`  ${line}`);
    if (peerBins.varnish) peers.push(await startVarnish(peerBins.varnish, origin.address, s.cleanup));
    if (peerBins.ats) peers.push(await startAts(peerBins.ats, origin.address, s.cleanup));

    // warm every cache: a MISS, then hits until the RAM tiers hold the object
    const caches = [stock.baseUrl, hand.baseUrl, ram.baseUrl, gates.baseUrl, rules.baseUrl, full.baseUrl, disk.baseUrl, ...peers.map((p) => p.baseUrl)];
    for (const base of caches) for (let i = 0; i < 3; i++) await expectHit(base, `${base}${path}`, headers, KIB);
    // the checks: each answers from where it should, and the origin sees none of it
    const before = await origin.hits();
    await expectHit(STOCK, `${stock.baseUrl}${path}`, headers, KIB);
    await expectHit(RETURN, `${ret.baseUrl}${path}`, headers, KIB);
    await expectHit(LUA_FLOOR, `${floor.baseUrl}${path}`, headers, KIB);
    await expectHit(HAND, `${hand.baseUrl}${path}`, headers, KIB, header("x-cache", "HIT-RAM"));
    for (const n of [ram, gates]) await expectHit(RAM, `${n.baseUrl}${path}`, headers, KIB, header("x-cache", "HIT-RAM"));
    for (const n of [rules, full]) {
      await expectHit(RULES, `${n.baseUrl}${path}`, headers, KIB, (p) => header("x-cache", "HIT-RAM")(p) ?? header("x-rule", "target")(p));
    }
    await expectHit(DISK, `${disk.baseUrl}${path}`, headers, KIB, header("x-cache", "HIT"));
    for (const p of peers) {
      const varnish = p.name.startsWith("Varnish");
      await expectHit(p.name, `${p.baseUrl}${path}`, headers, KIB, (r) =>
        varnish ? (isVarnishHit(r.headers) && r.headers.get("age") ? undefined : `not a hit (X-Varnish: ${r.headers.get("x-varnish")}, Age: ${r.headers.get("age")})`) : isAtsHit(r.headers) ? undefined : `not a hit (Via: ${r.headers.get("via")})`,
      );
    }
    const leaked = (await origin.hits()) - before;
    if (leaked) throw new Error(`the checks reached the origin ${leaked} times: some configuration does not serve hits`);

    const targets: Target[] = [
      nginxTarget(RETURN, ret, path, { headers }),
      nginxTarget(LUA_FLOOR, floor, path, { headers }),
      nginxTarget(STOCK, stock, path, { headers }),
      nginxTarget(HAND, hand, path, { headers }),
      nginxTarget(RAM, ram, path, { headers }),
      nginxTarget(GATES, gates, path, { headers }),
      nginxTarget(RULES, rules, path, { headers }),
      nginxTarget(LOG, full, path, { headers }),
      nginxTarget(DISK, disk, path, { headers }),
      ...peers.map((p): Target => ({ name: `${p.name} (one core)`, url: `${p.baseUrl}${path}`, headers, pids: p.pids })),
    ];
    const r = await runRounds("hits", targets, origin);

    const rows = targets.map((t) => ({ config: t.name, ratio: rpsRatio(r, t.name, STOCK), cpuUs: cpu(r, t.name), note: `x${cell(cpuSpeed(r, t.name, STOCK))} by CPU per request` }));
    const notes: string[] = [noiseNote(r)];
    const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
    notes.push(targetLine(r, "RAM-tier HIT / Lua floor", RAM, LUA_FLOOR, (x) => x >= 0.9, ">= 0.9"));
    notes.push(targetLine(r, "RAM-tier HIT / stock proxy_cache", RAM, STOCK, (x) => x >= 1.25, ">= 1.25"));
    notes.push(targetLine(r, "disk-tier HIT / stock proxy_cache", DISK, STOCK, (x) => x >= 0.9, ">= 0.9"));
    notes.push(targetLine(r, "full edge / stock proxy_cache", LOG, STOCK, (x) => x >= 1, ">= 1.0"));
    for (const p of peers) notes.push(targetLine(r, `full edge / ${p.name}`, LOG, `${p.name} (one core)`, (x) => x >= 1.5, ">= 1.5"));
    for (const line of peerBins.skipped) notes.push(line);

    // the JSON access log: the full edge with and without it, in the same rounds
    const logCpu = perRoundSummary(r, LOG, RULES, (a, b) => a.cpuUs / b.cpuUs - 1);
    const logRows = [
      {
        config: "JSON access log cost: full edge with vs without the log",
        ratio: rpsRatio(r, LOG, RULES),
        cpuUs: perRoundSummary(r, LOG, RULES, (a, b) => a.cpuUs - b.cpuUs),
        note: `ratio: req/s with / without; CPU: µs added per request, +${pct(logCpu.median)} [${pct(logCpu.min)}–${pct(logCpu.max)}] (target <= 5%: ${verdict(logCpu.median <= 0.05)})`,
      },
    ];
    return [
      { title: `Hot 1 KiB object, ${ctx.bin.version} (${ctx.bin.kind}), 1 worker on core 0, wrk -t1 -c${CONNECTIONS} -d${SECONDS}s on core 1`, rows, notes },
      { title: "JSON access log", baseline: "the same full edge without the log", rows: logRows },
    ];
  });
}
