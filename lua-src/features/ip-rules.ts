import type { LuaFeature } from "../core/feature";
import { compileScope } from "../core/gate-scope";
import { refuse } from "../core/gate-deny";

/**
 * IP rules gate.
 *
 * The client address is the peer address ($remote_addr), unless the peer is a trusted proxy: then it is
 * taken from the real-IP header (X-Forwarded-For: the rightmost hop that is not itself a trusted proxy; a
 * single-address header like X-Real-IP: its value). From an untrusted peer the header is ignored. The
 * address is published as `ngx.ctx.cdn_client_ip` for the gates and features that run after this one.
 *
 * Lists arrive as sorted, merged ranges (IPv4 as numbers, IPv6 as 32-digit hex strings, IPv4-mapped IPv6
 * folded into IPv4), so a lookup is a binary search: about log2(n) comparisons, whatever the list size.
 * Deny wins over allow; with an allow list, an address outside it (or one that cannot be parsed) is refused.
 */

const find = string.find;
const sub = string.sub;
const match = string.match;
const gmatch = string.gmatch;
const format = string.format;
const floor = math.floor;

// ---- address parsing into module-level results (no table per request) ---------------------------------

let pFamily = 0; // 4, 6, or 0 when the text is not an address
let pV4 = 0;
let pV6 = "";
const words: LuaTable<number, number> = new LuaTable();

function parseV4(text: string): number | undefined {
  const [a, b, c, d] = match(text, "^(%d+)%.(%d+)%.(%d+)%.(%d+)$");
  if (a === undefined) return undefined;
  const na = tonumber(a)!;
  const nb = tonumber(b)!;
  const nc = tonumber(c)!;
  const nd = tonumber(d)!;
  if (na > 255 || nb > 255 || nc > 255 || nd > 255) return undefined;
  return ((na * 256 + nb) * 256 + nc) * 256 + nd;
}

/** Reads hextets from `part` into words[n+1...]; returns the new count, or -1 on a malformed part. */
function readHextets(part: string, n: number, last: boolean): number {
  if (part === "") return n;
  for (const [h] of gmatch(part, "[^:]+")) {
    if (last && find(h, ".", 1, true)[0] !== undefined) {
      // trailing dotted quad (::ffff:1.2.3.4)
      const v = parseV4(h);
      if (v === undefined) return -1;
      words.set(n + 1, floor(v / 65536));
      words.set(n + 2, v % 65536);
      n += 2;
    } else {
      if (h.length > 4) return -1;
      const w = tonumber(h, 16);
      if (w === undefined) return -1;
      n++;
      words.set(n, w);
    }
  }
  return n;
}

/** Parses an address into pFamily / pV4 / pV6. */
function parseAddr(text: string): void {
  pFamily = 0;
  const v4 = parseV4(text);
  if (v4 !== undefined) {
    pFamily = 4;
    pV4 = v4;
    return;
  }
  if (find(text, ":", 1, true)[0] === undefined) return;
  const [dbl] = find(text, "::", 1, true);
  let n: number;
  if (dbl === undefined) {
    n = readHextets(text, 0, true);
    if (n !== 8) return;
  } else {
    const head = sub(text, 1, dbl - 1);
    const tail = sub(text, dbl + 2);
    n = readHextets(head, 0, false);
    if (n < 0) return;
    const headN = n;
    // read the tail after the head, then shift it to the end
    const tn = readHextets(tail, headN, true);
    if (tn < 0 || tn > 7) return;
    const tailCount = tn - headN;
    for (let i = tailCount; i >= 1; i--) words.set(8 - tailCount + i, words.get(headN + i));
    for (let i = headN + 1; i <= 8 - tailCount; i++) words.set(i, 0);
    n = 8;
  }
  if (words.get(1) === 0 && words.get(2) === 0 && words.get(3) === 0 && words.get(4) === 0 && words.get(5) === 0 && words.get(6) === 0xffff) {
    pFamily = 4;
    pV4 = words.get(7) * 65536 + words.get(8);
    return;
  }
  pFamily = 6;
  pV6 = format("%04x%04x%04x%04x%04x%04x%04x%04x", words.get(1), words.get(2), words.get(3), words.get(4), words.get(5), words.get(6), words.get(7), words.get(8));
}

// ---- range sets -----------------------------------------------------------------------------------------

/** Membership test of the last parsed address in a compiled range set. */
type SetTest = () => boolean;

function compileSet(set: IpRangeSetData | undefined): SetTest | undefined {
  if (set === undefined) return undefined;
  const s4 = set.v4.s;
  const e4 = set.v4.e;
  const n4 = s4.length;
  const s6 = set.v6.s;
  const e6 = set.v6.e;
  const n6 = s6.length;
  return () => {
    if (pFamily === 4) {
      const v = pV4;
      let lo = 0;
      let hi = n4 - 1;
      let at = -1;
      while (lo <= hi) {
        const mid = floor((lo + hi) / 2);
        if (s4[mid] <= v) {
          at = mid;
          lo = mid + 1;
        } else hi = mid - 1;
      }
      return at >= 0 && v <= e4[at];
    }
    if (pFamily === 6) {
      const v = pV6;
      let lo = 0;
      let hi = n6 - 1;
      let at = -1;
      while (lo <= hi) {
        const mid = floor((lo + hi) / 2);
        if (s6[mid] <= v) {
          at = mid;
          lo = mid + 1;
        } else hi = mid - 1;
      }
      return at >= 0 && v <= e6[at];
    }
    return false;
  };
}

function trim(s: string): string {
  const [t] = match(s, "^%s*(.-)%s*$");
  return t ?? s;
}

export const ipRules: LuaFeature<IpRulesData> = {
  name: "ipRules",
  setup(data) {
    const allow = compileSet(data.allow);
    const deny = compileSet(data.deny);
    const trusted = compileSet(data.trusted);
    const headerVar = data.headerVar;
    const xff = data.xff;
    const inScope = compileScope(data.scope);
    const hops: string[] = [];

    /** The client address: the peer, or what a trusted peer reports. Leaves it parsed in p*. */
    const clientAddress = (peer: string): string => {
      parseAddr(peer);
      if (trusted === undefined || !trusted()) return peer;
      const value = ngx.var.get(headerVar);
      if (value === undefined || value === "") {
        parseAddr(peer);
        return peer;
      }
      if (!xff) {
        const v = trim(value);
        parseAddr(v);
        if (pFamily !== 0) return v;
        parseAddr(peer);
        return peer;
      }
      // X-Forwarded-For: walk from the right, skipping trusted proxies
      let n = 0;
      for (const [h] of gmatch(value, "[^,]+")) {
        n++;
        hops[n - 1] = h;
      }
      let client = peer;
      for (let i = n - 1; i >= 0; i--) {
        const hop = trim(hops[i]);
        parseAddr(hop);
        if (pFamily === 0) break; // garbage: keep the last address we could trust
        client = hop;
        if (!trusted()) break;
      }
      parseAddr(client);
      return client;
    };

    return {
      access: () => {
        const peer = ngx.var.get("remote_addr") ?? "";
        const client = clientAddress(peer);
        ngx.ctx.set("cdn_client_ip", client);
        if (!inScope()) return;
        // clientAddress left `client` parsed in pFamily / pV4 / pV6 (the scope matcher does not touch them)
        if (deny !== undefined && deny()) return refuse(403, "ip-rules");
        if (allow !== undefined && !allow()) return refuse(403, "ip-rules");
      },
    };
  },
};
