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
export const compression: LuaFeature<"compression"> = {
  key: "compression",
  setup() {
    return {
      header: {
        compression: () => {
          const h = ngx.header;
          const cc = h.get("Cache-Control");
          if (cc === undefined) return;
          const all = typeof cc === "string" ? cc : table.concat(cc, ",");
          if (string.find(string.lower(all), "no-transform", 1, true)[0] === undefined) return;
          if (h.get("Content-Encoding") !== undefined) return;
          ngx.req.clear_header("Accept-Encoding");
        },
      },
    };
  },
};
