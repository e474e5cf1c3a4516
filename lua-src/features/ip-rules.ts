import type { LuaFeature } from "../core/feature";
import { compileScope } from "../core/gate-scope";
import { refuse } from "../core/gate-deny";
import { isEdgeRefresh } from "./cache";

/**
 * IP rules gate.
 *
 * The client address is the peer address ($remote_addr), unless the peer is a trusted proxy: then it is
 * taken from the real-IP header (X-Forwarded-For: the rightmost hop that is not itself a trusted proxy; a
 * single-address header like X-Real-IP: its value). From an untrusted peer the header is ignored. The
 * address is published as `ngx.ctx.cdn_client_ip` for the gates and features that run after this one.
 * The cache's own refreshes (stale-while-revalidate) come from the edge's address, not the client's: they
 * replay a request this gate admitted, so they are never refused (checked only on the refusal path).
 *
 * Lists arrive as sorted, merged ranges (IPv4 as numbers, IPv6 as 32-digit hex strings, IPv4-mapped IPv6
 * folded into IPv4), so a lookup is a binary search: about log2(n) comparisons, whatever the list size.
 * Deny wins over allow; with an allow list, an address outside it (or one that cannot be parsed) is refused.
 */

const find = string.find;
const sub = string.sub;
const byte = string.byte;
const format = string.format;
const floor = math.floor;

// Parsing is done with byte loops and plain finds only: LuaJIT compiles those, while Lua pattern functions
// (match, gmatch, gsub) would abort the trace and run the whole handler in the interpreter.

const DOT = 46;
const COLON = 58;

// ---- address parsing into module-level results (no table per request) ---------------------------------

let pFamily = 0; // 4, 6, or 0 when the text is not an address
let pV4 = 0;
let pV6 = "";
const words: LuaTable<number, number> = new LuaTable();

/** A dotted quad in text[from..to], as a number; undefined when malformed. */
function parseV4(text: string, from: number, to: number): number | undefined {
  let v = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = from; i <= to; i++) {
    const c = byte(text, i);
    if (c >= 48 && c <= 57) {
      octet = octet * 10 + (c - 48);
      digits++;
      if (digits > 3 || octet > 255) return undefined;
    } else if (c === DOT) {
      if (digits === 0 || dots === 3) return undefined;
      v = v * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else return undefined;
  }
  if (dots !== 3 || digits === 0) return undefined;
  return v * 256 + octet;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** Parses an address into pFamily / pV4 / pV6 (IPv4-mapped IPv6 counts as IPv4). */
function parseAddr(text: string): void {
  pFamily = 0;
  const len = text.length;
  if (len === 0 || len > 45) return;
  if (find(text, ":", 1, true)[0] === undefined) {
    const v = parseV4(text, 1, len);
    if (v !== undefined) {
      pFamily = 4;
      pV4 = v;
    }
    return;
  }
  let n = 0;
  let gap = -1;
  let i = 1;
  if (byte(text, 1) === COLON) {
    if (byte(text, 2) !== COLON) return;
    gap = 0;
    i = 3;
  }
  while (i <= len) {
    let j = i;
    let w = 0;
    let digits = 0;
    while (j <= len) {
      const h = hexValue(byte(text, j));
      if (h < 0) break;
      w = w * 16 + h;
      digits++;
      j++;
    }
    if (j <= len && byte(text, j) === DOT) {
      // trailing dotted quad (::ffff:1.2.3.4)
      const v = parseV4(text, i, len);
      if (v === undefined || n > 6) return;
      words.set(n + 1, floor(v / 65536));
      words.set(n + 2, v % 65536);
      n += 2;
      break;
    }
    if (digits === 0 || digits > 4) return;
    n++;
    if (n > 8) return;
    words.set(n, w);
    if (j > len) break;
    if (byte(text, j) !== COLON) return;
    if (j < len && byte(text, j + 1) === COLON) {
      if (gap >= 0) return;
      gap = n;
      i = j + 2;
    } else {
      i = j + 1;
      if (i > len) return;
    }
  }
  if (gap >= 0) {
    if (n > 7) return;
    const tail = n - gap;
    for (let k = tail; k >= 1; k--) words.set(8 - tail + k, words.get(gap + k));
    for (let k = gap + 1; k <= 8 - tail; k++) words.set(k, 0);
  } else if (n !== 8) return;
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

/** text[from..to] without surrounding spaces and tabs. */
function trimmed(text: string, from: number, to: number): string {
  while (from <= to && (byte(text, from) === 32 || byte(text, from) === 9)) from++;
  while (to >= from && (byte(text, to) === 32 || byte(text, to) === 9)) to--;
  return sub(text, from, to);
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
        const v = trimmed(value, 1, value.length);
        parseAddr(v);
        if (pFamily !== 0) return v;
        parseAddr(peer);
        return peer;
      }
      // X-Forwarded-For: split on commas (into a reused list), then walk from the right, skipping trusted proxies
      let n = 0;
      let from = 1;
      while (true) {
        const [comma] = find(value, ",", from, true);
        n++;
        if (comma === undefined) {
          hops[n - 1] = trimmed(value, from, value.length);
          break;
        }
        hops[n - 1] = trimmed(value, from, comma - 1);
        from = comma + 1;
      }
      let client = peer;
      for (let i = n - 1; i >= 0; i--) {
        const hop = hops[i];
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
        if ((deny !== undefined && deny()) || (allow !== undefined && !allow())) {
          if (isEdgeRefresh()) return;
          return refuse(403, "ip-rules");
        }
      },
    };
  },
};
