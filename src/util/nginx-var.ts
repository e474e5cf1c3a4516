import type { HeaderVar } from "../contract/index.js";

/** The nginx variable that holds a request header: `X-Preview` -> `http_x_preview`. */
export function headerVar(name: string): HeaderVar {
  return `http_${name.toLowerCase().replace(/-/g, "_")}`;
}
