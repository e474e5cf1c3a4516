import * as ffi from "ffi";

/**
 * The wall clock to the microsecond (gettimeofday through the FFI). ngx.now() is nginx's cached time, to the
 * millisecond and only updated between events: two things that happen one after the other (a purge, then
 * the request that fetches the object again) can read the same ngx.now(). Purge markers are timed with this
 * clock so that "stored before the marker" has an answer.
 */

ffi.cdef(`
struct clock_timeval_us { long tv_sec; long tv_usec; };
int gettimeofday(struct clock_timeval_us *tv, void *tz);
`);

const tv = ffi.new("struct clock_timeval_us");

export function preciseNow(this: void): number {
  ffi.C.gettimeofday(tv, undefined);
  return tonumber(tv.tv_sec)! + tonumber(tv.tv_usec)! / 1e6;
}

/** A time as markers write it: seconds with six decimals (tostring keeps only 14 digits). */
export function timeText(this: void, t: number): string {
  return string.format("%.6f", t);
}
