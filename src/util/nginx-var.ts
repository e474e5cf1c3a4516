/** The nginx variable that holds a request header: `X-Preview` -> `http_x_preview`. */
export function headerVar(name: string): string {
  return "http_" + name.toLowerCase().replace(/-/g, "_");
}
