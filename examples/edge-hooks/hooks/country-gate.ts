import { onAccess } from "cdn-build/edge";
import { BLOCKED_COUNTRIES, COUNTRY_HEADER } from "./tables.js";

/**
 * Refuses blocked countries with 451, keeps /beta/ for clients with the beta cookie, and tells the origin the
 * country it decided on.
 */
export default onAccess((req) => {
  const country = req.header(COUNTRY_HEADER) ?? "";
  if (BLOCKED_COUNTRIES[country]) return req.deny(451, "This content is not available in your country.");
  if (req.path.startsWith("/beta/") && req.cookie("beta") === undefined) return req.redirect(302, "/");
  req.state.country = country === "" ? "unknown" : country;
  req.setHeader("X-Edge-Country", country === "" ? "unknown" : country);
});
