/**
 * lua-resty-core's base module: `get_request()` is the current request (an opaque pointer, compared by
 * identity), undefined outside a request.
 * @noResolution
 */
declare module "resty.core.base" {
  const base: {
    get_request(this: void): unknown;
  };
  export = base;
}
