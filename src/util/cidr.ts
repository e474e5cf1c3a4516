import { isIP } from "node:net";

/** Parses "a.b.c.d/n" or "v6::/n" (or a bare address); returns undefined when invalid. */
export function parseCidr(value: string): { address: string; prefix: number; family: 4 | 6 } | undefined {
  const [address, prefixText, extra] = value.split("/");
  if (extra !== undefined || address === undefined) return undefined;
  const family = isIP(address);
  if (family !== 4 && family !== 6) return undefined;
  const max = family === 4 ? 32 : 128;
  if (prefixText === undefined) return { address, prefix: max, family };
  if (!/^[0-9]{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > max) return undefined;
  return { address, prefix, family };
}
