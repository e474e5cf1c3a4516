import { onLog } from "cdn-build/edge";

/** Adds the country the access hook decided on to the JSON access log (`"hook": "country=FR"`). */
export default onLog((ctx) => {
  const country = ctx.state.country;
  if (country !== undefined) ctx.field("country", country);
});
