import { boundSig } from "../../core/cache-key";
import { joined } from "./headers";

/** Variant signature: the values of the request headers named by Vary (as nginx variable names). */
export function variantSig(this: void, names: string): string {
  const vars = ngx.var;
  let sig = "";
  for (const [name] of string.gmatch(names, "[^,]+")) sig = sig + (vars.get(name as NgxVarName) ?? "") + "\u0001";
  // bounded, like the key, so the disk key fits nginx's cache file header (core/cache-key.ts)
  return boundSig(sig);
}

/** "accept-encoding, Accept" -> "http_accept,http_accept_encoding" (sorted); "*" when Vary has a star. */
export function varyNames(this: void, vary: string | string[] | undefined): string {
  const v = joined(vary);
  if (v === undefined) return "";
  const names: string[] = [];
  for (const [n] of string.gmatch(v, "[^,%s]+")) {
    if (n === "*") return "*";
    const [ln] = string.gsub(string.lower(n), "-", "_");
    names.push("http_" + ln);
  }
  table.sort(names);
  return table.concat(names, ",");
}
