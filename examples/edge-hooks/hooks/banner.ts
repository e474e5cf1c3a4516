import { onBody } from "cdn-build/edge";

/** Adds a notice before `</body>` of HTML pages under /beta/ (other bodies go out unchanged). */
export default onBody((res, body) => {
  if (!res.path.startsWith("/beta/") || !(res.header("Content-Type") ?? "").startsWith("text/html")) return undefined;
  const end = body.indexOf("</body>");
  if (end < 0) return undefined;
  return body.slice(0, end) + '<p class="beta">You are seeing the beta.</p>' + body.slice(end);
});
