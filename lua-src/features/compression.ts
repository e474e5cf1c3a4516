import type { LuaFeature } from "../core/feature";

/**
 * Compression's runtime part: a response that says `Cache-Control: no-transform` must not be changed by the
 * edge (RFC 9110 7.7), and nginx's gzip and brotli filters do not look at it. They decide from the request's
 * Accept-Encoding, after this header filter ran (the Lua module is loaded after them, so its header filter
 * runs first): clearing that request header for such a response leaves it as the origin sent it. A response
 * that already has a Content-Encoding is left alone (the filters skip it; the gunzip filter must still see
 * that the client accepts gzip). Runs last in the header phase: the cache has already read Accept-Encoding
 * for the response's Vary variant.
 */
/** One header's lines as one value. */
function joined(this: void, v: string | string[]): string {
  return typeof v === "string" ? v : table.concat(v, ", ");
}

/** Adds Accept-Encoding to the response's Vary, once (nothing when Vary already names it, or is `*`). */
function varyOnEncoding(this: void, h: LuaTable<string, NgxHeaderValue>): void {
  const v = h.get("Vary");
  if (v === undefined) {
    h.set("Vary", "Accept-Encoding");
    return;
  }
  const all = joined(v);
  const l = string.lower(all);
  if (string.find(l, "accept-encoding", 1, true)[0] !== undefined || string.find(l, "*", 1, true)[0] !== undefined) return;
  h.set("Vary", all + ", Accept-Encoding");
}

export const compression: LuaFeature<"compression"> = {
  key: "compression",
  setup(data) {
    const types = new LuaTable<string, boolean>();
    for (const [t] of pairs(data.types)) types.set(t as string, true);
    const minLength = data.minLength;
    return {
      header: {
        compression: () => {
          const h = ngx.header;
          const ce = h.get("Content-Encoding");
          if (ce !== undefined) {
            // a gzip body is decoded for a client that does not accept gzip (the cache's gunzip)
            if (string.lower(joined(ce)) === "gzip") varyOnEncoding(h);
            return;
          }
          const cc = h.get("Cache-Control");
          if (cc !== undefined && string.find(string.lower(joined(cc)), "no-transform", 1, true)[0] !== undefined) {
            ngx.req.clear_header("Accept-Encoding");
            return;
          }
          // what nginx's gzip and brotli filters would compress: 200, 403, 404 of a listed type, long enough
          const status = ngx.status;
          if (status !== 200 && status !== 403 && status !== 404) return;
          const ct = h.get("Content-Type");
          if (ct === undefined) return;
          const [mt] = string.match(string.lower(joined(ct)), "^%s*([^;%s]+)");
          if (mt === undefined || types.get(mt) !== true) return;
          const cl = h.get("Content-Length");
          const n = cl === undefined ? undefined : tonumber(joined(cl));
          if (n === undefined || n >= minLength) varyOnEncoding(h);
        },
      },
    };
  },
};
