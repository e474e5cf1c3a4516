import { onHeaders } from "cdn-build/edge";
import { BACKEND_LABELS } from "./tables.js";

/** Replaces the origin's internal backend name with its public label, and drops the PHP banner. */
export default onHeaders((res) => {
  const backend = res.header("X-Backend");
  if (backend !== undefined) res.setHeader("X-Backend", BACKEND_LABELS[backend] ?? "other");
  res.removeHeader("X-Powered-By");
});
