/** Constant data shared by the hooks (each hook's bundle folder gets its own copy). */

/** Countries the shop may not serve (ISO 3166-1 alpha-2, as the outer CDN's GeoIP header sends them). */
export const BLOCKED_COUNTRIES: Record<string, true> = { XX: true, YY: true };

/** Internal backend names the origin sends in X-Backend -> the public label clients see. */
export const BACKEND_LABELS: Record<string, string> = {
  "php-7.4-legacy": "classic",
  "php-8.3": "current",
};

/** The header the outer CDN tier puts the client's country in. */
export const COUNTRY_HEADER = "X-Geoip-Country-Code";
