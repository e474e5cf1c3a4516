/** The parts of the ngx API the metrics feature uses (lua-src/features/metrics.ts). */

interface NgxSharedDict {
  /** Size of the dict's shared memory zone, in bytes (resty.core.shdict). */
  capacity(this: NgxSharedDict): number;
  /** Free pages of the zone, in bytes (resty.core.shdict; nginx 1.11.7+). */
  free_space(this: NgxSharedDict): number;
}
