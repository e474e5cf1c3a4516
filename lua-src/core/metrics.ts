/**
 * The counters other features report to the metrics feature (lua-src/features/metrics.ts): refusals by a
 * gate, rate-limit decisions, WAF matches, purges, Redis failures. They are off-hot-path events (a refusal, a
 * purge), so their keys are built when they happen; each is one atomic `incr` on the `cdn_metrics` dict,
 * which the metrics feature opens at init (without `metrics` in the policy every call returns at once).
 *
 * A key is the series as the Prometheus text shows it (`name{label="value",...}`); label values come from
 * the policy or the runtime's own fixed words, never from a request.
 */

let dict: NgxSharedDict | undefined;

/** The metrics feature's setup: counting is on from here. */
export function enableCounters(this: void, d: NgxSharedDict): void {
  dict = d;
}

/** A label value as the text format writes it: `\`, `"` and newlines escaped. */
export function labelValue(this: void, v: string): string {
  return string.gsub(string.gsub(string.gsub(v, "\\", "\\\\")[0], '"', '\\"')[0], "\n", "\\n")[0];
}

/** Adds `n` to a counter (created at 0). */
export function count(this: void, key: string, n = 1): void {
  const d = dict;
  if (d === undefined) return;
  d.incr(key, n, 0);
}

/** An access gate refused the request (`gate` as in the plain-text body, `reason` a fixed word). */
export function countRefusal(this: void, gate: string, reason: string): void {
  if (dict === undefined) return;
  count('cdn_gate_refusals_total{gate="' + gate + '",reason="' + labelValue(reason) + '"}');
}

/** A rate-limit decision that did not simply admit: `limited`, `failed_open`, `failed_closed`. */
export function countRateLimit(this: void, limit: string, decision: string): void {
  if (dict === undefined) return;
  count('cdn_ratelimit_decisions_total{limit="' + labelValue(limit) + '",decision="' + decision + '"}');
}

/** A WAF rule matched (`block`: the request was refused; otherwise only logged). */
export function countWafMatch(this: void, rule: string, block: boolean): void {
  if (dict === undefined) return;
  count('cdn_waf_matches_total{rule="' + labelValue(rule) + '",action="' + (block ? "block" : "log") + '"}');
}

/** A purge applied on this node (`source`: `api`, the purge endpoint, or `fleet`, a fan-out message). */
export function countPurge(this: void, source: string, urls: number, prefixes: number, tags: number, all: boolean, objects: number): void {
  if (dict === undefined) return;
  if (urls > 0) count('cdn_purges_total{kind="url",source="' + source + '"}', urls);
  if (prefixes > 0) count('cdn_purges_total{kind="prefix",source="' + source + '"}', prefixes);
  if (tags > 0) count('cdn_purges_total{kind="tag",source="' + source + '"}', tags);
  if (all) count('cdn_purges_total{kind="all",source="' + source + '"}');
  if (objects > 0) count("cdn_purged_objects_total", objects);
}

/** A Redis failure: a connection that failed (`kind`: config, connect, auth, select) or a command (command). */
export function countRedisError(this: void, kind: string): void {
  if (dict === undefined) return;
  count('cdn_redis_errors_total{kind="' + kind + '"}');
}
