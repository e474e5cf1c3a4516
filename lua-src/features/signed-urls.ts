import type { LuaFeature } from "../core/feature";
import { compileScope } from "../core/gate-scope";
import { readEnv } from "../core/env";
import { encodeBase64url } from "../core/base64url";
import { constantTimeEquals, hmac, toHex } from "../core/crypto";
import { refuse } from "../core/gate-deny";
import { clientAddress } from "../core/client-address";
import { isEdgeRefresh } from "./cache/refresh";

/**
 * The signed-URL gate. The signed string is `<path>\n<expires>\n<query>[\n<ip>]` (src/sign.ts documents it):
 * the raw path of the request line, the expiry, the other query parameters in their order and raw
 * encoding, and the client address for IP-bound URLs. Missing or bad signature -> 403, a valid signature
 * past its expiry -> 410. Accepted requests continue without the two parameters ($args is rewritten, so the
 * cache key and the origin never see them). Refusals name the gate like the other gates' (core/gate-deny).
 * The client address of IP-bound URLs is the one every feature uses (core/client-address.ts). The cache's own refreshes (which come from the edge's address) are not refused
 * for a bad signature: they replay a URL this gate admitted (the expiry still applies, the parameters are
 * still removed, so the refresh lands on the same cache key).
 */


export const signedUrls: LuaFeature<"signedUrls"> = {
  key: "signedUrls",
  setup(data) {
    const inScope = compileScope(data.scope);
    const secret = readEnv(data.secretEnv);
    if (secret === undefined) ngx.log(ngx.WARN, "signed URLs: the environment variable ", data.secretEnv, " is not set; requests it guards will get 500");
    const hex = data.hex;
    const requireIp = data.requireIp;
    const expParam = data.expParam;
    const sigParam = data.sigParam;
    const expPrefix = expParam + "=";
    const sigPrefix = sigParam + "=";
    const expLen = expPrefix.length;
    const sigLen = sigPrefix.length;
    const setArgs = ngx.req.set_uri_args;

    const sign = (msg: string): string => {
      const mac = hmac("sha256", secret!, msg);
      return hex ? toHex(mac) : encodeBase64url(mac);
    };

    return {
      access: {
        "gate:signed": () => {
        const vars = ngx.var;
        if (!inScope()) return;
        if (secret === undefined) {
          ngx.log(ngx.ERR, "signed URLs: the environment variable ", data.secretEnv, " is not set");
          return ngx.exit(ngx.HTTP_INTERNAL_SERVER_ERROR);
        }
        const args = vars.get("args");
        if (args === undefined || args === "") return refuse(403, "signed-urls");
        let exp: string | undefined;
        let sig: string | undefined;
        let rest = "";
        let start = 1;
        const n = args.length;
        while (start <= n) {
          let [amp] = string.find(args, "&", start, true);
          amp ??= n + 1;
          if (amp > start) {
            const seg = string.sub(args, start, amp - 1);
            if (seg === expParam || string.sub(seg, 1, expLen) === expPrefix) {
              if (exp !== undefined) return refuse(403, "signed-urls");
              exp = string.sub(seg, expLen + 1);
            } else if (seg === sigParam || string.sub(seg, 1, sigLen) === sigPrefix) {
              if (sig !== undefined) return refuse(403, "signed-urls");
              sig = string.sub(seg, sigLen + 1);
            } else rest = rest === "" ? seg : rest + "&" + seg;
          }
          start = amp + 1;
        }
        if (exp === undefined || sig === undefined) return refuse(403, "signed-urls");
        if (string.find(exp, "^%d%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?$")[0] === undefined) return refuse(403, "signed-urls");
        if (hex) sig = string.lower(sig);
        const uri = vars.get("request_uri")!;
        const [q] = string.find(uri, "?", 1, true);
        const path = q === undefined ? uri : string.sub(uri, 1, q - 1);
        const base = path + "\n" + exp + "\n" + rest;
        let ok = !requireIp && constantTimeEquals(sign(base), sig);
        if (!ok) ok = constantTimeEquals(sign(base + "\n" + clientAddress()), sig);
        // the cache's own refresh replays an admitted URL from the edge's address: an IP-bound URL cannot match
        if (!ok && !isEdgeRefresh()) return refuse(403, "signed-urls");
        if (ngx.time() > (tonumber(exp) as number)) return refuse(410, "signed-urls");
        setArgs(rest);
        },
      },
    };
  },
};
