/** Address lists as the runtime searches them (src/util/ip-ranges.ts builds them, lua-src/core/ip.ts reads). */

/**
 * Sorted, merged, non-overlapping address ranges. IPv4 as numbers; IPv6 as 32-digit lower-case hex strings
 * (fixed width, so they order like the addresses). IPv4-mapped IPv6 blocks are folded into IPv4.
 */
export interface IpRangeSetData {
  v4: { s: number[]; e: number[] };
  v6: { s: string[]; e: string[] };
}
