import { ensureNginx, freePort, startBundle } from "../src/runtime/nginx.js";
import { compile } from "../src/compile.js";
import { writeBundleTo } from "../src/emit/write.js";
import { readFile, writeFile, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
const bin = await ensureNginx();
const port = await freePort();
const { bundle } = compile({ name: "b", workers: { processes: 1 }, origins: { app: { servers: [{ address: "127.0.0.1:9" }] } }, accessLog: { format: "off" },
  waf: { paths: ["/nothing"] }, listen: { http: port, address: "127.0.0.1" } } as any, { target: bin.kind });
const dir = await mkdtemp(join(tmpdir(), "gs-"));
await writeBundleTo(bundle!, dir);
const conf = (await readFile(join(dir, "nginx.conf"), "utf8")).replace("location / {", `location = /__bench {
content_by_lua_block {
  local n = 20000
  local all = require("policy_data").features.waf
  local function best(fn)
    for _ = 1, 1000 do fn() end
    local b = math.huge
    for _ = 1, 5 do local t = os.clock(); for _ = 1, n do fn() end; b = math.min(b, os.clock() - t) end
    return string.format("%.0f", b / n * 1e9)
  end
  local wafmod = require("features.waf")
  for _, keep in ipairs({ "all", "path", "query", "ua", "none" }) do
    local d = { block = true, scope = nil, targets = {} }
    for _, t in ipairs(all.targets) do if keep == "all" or t.kind == keep then table.insert(d.targets, t) end end
    local h = wafmod.waf:setup(d)
    h.initWorker()
    ngx.say(keep, " ", best(h.access))
  end
  local norm = wafmod.normalise
  local q, ua, p = ngx.var.args, ngx.var.http_user_agent, ngx.var.request_uri
  ngx.say("norm q ", best(function() return norm(q) end))
  ngx.say("norm ua ", best(function() return norm(ua) end))
  ngx.say("var uri ", best(function() return ngx.var.request_uri end))
  ngx.say("var ua ", best(function() return ngx.var.http_user_agent end))
  local lits, seen = {}, {}
  for _, t in ipairs(all.targets) do if t.kind == "query" then for _, r in ipairs(t.rules) do for _, l in ipairs(r.lits or {}) do
    if not seen[l] then seen[l] = true; table.insert(lits, (ngx.re.gsub(l, "[^a-z0-9 ]", "\\\\$0", "jo"))) end end end end end
  local alt = table.concat(lits, "|")
  ngx.say("literal alternation of ", #lits, ": ", alt:sub(1, 200))
  local nq = norm(q)
  ngx.say("prefilter q ", best(function() return ngx.re.find(nq, alt, "jo") end))
  local nua = norm(ua)
  ngx.say("prefilter ua ", best(function() return ngx.re.find(nua, alt, "jo") end))
  ngx.say("re ua ", best(function() return ngx.re.find(ua, "\\\\b(?:sqlmap|nikto|nmap|masscan|acunetix|netsparker|wpscan|dirbuster|gobuster|nessus)", "jo") end))
}
}
location / {`);
await writeFile(join(dir, "nginx.conf"), conf);
const n = await startBundle(dir, { port, bin });
const r = await fetch(`${n.baseUrl}/__bench?${process.env.Q ?? "q=hello+world&page=2"}`, { headers: { "user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0" } });
console.log(await r.text());
console.log((await n.errorLog()).split("\n").filter((l) => /error/.test(l)).slice(0, 3).join("\n"));
await n.stop();
