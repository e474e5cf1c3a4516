import { ensureWorkerDir, listDir, readAll } from "./fs";
import { preciseNow, timeText } from "./clock";

/**
 * Purge and invalidation markers: the one source of truth for "what a purge or an invalidation retired".
 *
 * A marker says "every object stored before time t is gone (hard) or stale (soft)". Kinds, by dict key in
 * `cdn_markers` (a dict of its own, so no index churn can evict a marker; writes use safe_set, and a
 * marker that cannot be stored makes the caller fall back to a broader one):
 *   "m:" .. K        one cache key (every Vary variant of it): a purge by URL, an invalidation (RFC 9111 4.4)
 *   "m:*"            every object (purge all)
 *   "g:" .. TAG      every object tagged TAG (Cache-Tag / Surrogate-Key)
 *   "p:" .. PREFIX   every object whose URL starts with PREFIX (`scheme://host/path...`)
 * Value: "<hard>|<soft>", the times of the last hard and the last soft purge (0: none). Both are kept: a
 * soft purge never weakens an earlier hard one.
 *
 * Markers survive restarts, reloads and redeploys: every change is appended to a journal in the state
 * folder (`cache/state/` by default, created by the master and given to the workers' user), which the
 * master replays into a new dict at start, or when a reload changed the dict's size. Worker 0 compacts the
 * journal now and then (a snapshot of the dict, then a fresh journal): writers set the dict first, then
 * append to the journal of the generation they read afterwards, so the snapshot or the new journal always
 * holds a marker. The fleet fan-out's stream position ("s:" .. stream) lives here too.
 *
 * Per hit: one get of "m:" .. K and one of "v" (the version of the global markers: purge-all, tags,
 * prefixes), whose values each worker caches per version.
 */

const dict = ngx.shared.get("cdn_markers");

export const MARK_NONE = 0;
export const MARK_HARD = 1;
export const MARK_SOFT = 2;

let dir = "";
let ttl = 365 * 86400;
const JOURNAL_ROTATE_BYTES = 256 * 1024;

export interface MarkersConfig {
  /** State folder, absolute. */
  dir: string;
  /** Seconds a marker lives (the longest an object stored before it can stay in the cache). */
  ttl: number;
  /** The workers' user (owner of the state folder when the master is root). */
  user: string;
}

function escapeName(s: string): string {
  const [e] = string.gsub(s, "[\\\n\t]", (c: string) => (c === "\\" ? "\\\\" : c === "\n" ? "\\n" : "\\t"));
  return e;
}

function unescapeName(s: string): string {
  const [u] = string.gsub(s, "\\(.)", (c: string) => (c === "n" ? "\n" : c === "t" ? "\t" : c));
  return u;
}

// ---- journal ---------------------------------------------------------------------------------------------

let fh: LuaFile | undefined;
let fhGen = -1;
let warnedAt = 0;

function journalPath(gen: number, kind: "journal" | "snapshot"): string {
  return dir + "/markers-" + gen + "." + kind;
}

function append(line: string): void {
  if (dict === undefined || dir === "") return;
  const [g] = dict.get("gen");
  const gen = (g as number | undefined) ?? 1;
  if (fh === undefined || gen !== fhGen) {
    if (fh !== undefined) fh.close();
    const [f, err] = io.open(journalPath(gen, "journal"), "a");
    fh = f;
    fhGen = gen;
    if (f === undefined) {
      if (ngx.now() - warnedAt > 10) {
        warnedAt = ngx.now();
        ngx.log(ngx.ERR, "markers: cannot open the journal in ", dir, ": ", tostring(err), "; purges will not survive a restart");
      }
      return;
    }
    f.setvbuf("no");
  }
  const [ok, err] = fh!.write(line);
  if (ok === undefined && ngx.now() - warnedAt > 10) {
    warnedAt = ngx.now();
    ngx.log(ngx.ERR, "markers: cannot write the journal: ", tostring(err));
  }
}

/** A marker's hard and soft times (0, 0 when there is none). */
function times(name: string): LuaMultiReturn<[number, number]> {
  const [v] = dict!.get(name);
  if (v === undefined) return $multi(0, 0);
  const [h, s] = string.match(v as string, "^([^|]*)|(.*)$");
  return $multi(tonumber(h) ?? 0, tonumber(s) ?? 0);
}

/** Merges a marker into the dict (hard and soft times only move forward); false when it could not be stored. */
function merge(name: string, hard: number, soft: number, expiresAt: number): boolean {
  const [h0, s0] = times(name);
  const left = expiresAt - ngx.now();
  if (left <= 0) return true;
  const [ok] = dict!.safe_set(name, timeText(math.max(h0, hard)) + "|" + timeText(math.max(s0, soft)), left);
  return ok;
}

const FORGET_AFTER = 3;

/** A global marker changed (at `at`): workers refresh their view; "vt" is when the latest one was set. */
function bumpVersion(at: number): void {
  dict!.incr("v", 1, 0);
  dict!.set("vt", at);
}

function isGlobal(name: string): boolean {
  const c = string.sub(name, 1, 2);
  return c === "m:" ? name === "m:*" : c === "g:" || c === "p:";
}

/** Records a marker (and journals it). False when the dict is full: the caller must fall back to a broader marker. */
export function setMarker(this: void, name: string, soft: boolean): boolean {
  if (dict === undefined) return false;
  const now = preciseNow();
  const hard = soft ? 0 : now;
  const st = soft ? now : 0;
  const expiresAt = now + ttl;
  if (!merge(name, hard, st, expiresAt)) return false;
  if (string.sub(name, 1, 2) === "p:") addPrefix(string.sub(name, 3));
  if (string.sub(name, 1, 2) === "g:") dict.incr("ng", 1, 0);
  if (isGlobal(name)) bumpVersion(now);
  append("M\t" + timeText(hard) + "\t" + timeText(st) + "\t" + expiresAt + "\t" + escapeName(name) + "\n");
  return true;
}

/**
 * Forgets a per-key marker once the key was stored again after it (every variant: no Vary). It lives on for
 * FORGET_AFTER seconds: a worker reuses a RAM object it read within the last second without reading the
 * dict again (features/cache/ram.ts), and this marker is what retires such a copy.
 */
export function clearMarker(this: void, name: string): void {
  if (dict === undefined) return;
  dict.expire(name, FORGET_AFTER);
  append("D\t" + escapeName(name) + "\n");
}

/** The fleet fan-out's last applied stream entry. */
export function streamPosition(this: void, stream: string): string | undefined {
  if (dict === undefined) return undefined;
  return dict.get("s:" + stream)[0] as string | undefined;
}

export function setStreamPosition(this: void, stream: string, id: string): void {
  if (dict === undefined) return;
  dict.set("s:" + stream, id);
  append("S\t" + escapeName(stream) + "\t" + id + "\n");
}

// ---- prefixes: one list of the active prefix markers (they are few), rewritten under a lock ---------------

function addPrefix(prefix: string): void {
  const d = dict!;
  for (let i = 0; i < 100; i++) {
    if (d.add("P:lock", true, 1)[0]) break;
    ngx.sleep(0.001);
  }
  const [cur] = d.get("P");
  const list = (cur as string | undefined) ?? "";
  // prune prefixes whose marker expired, then add this one once
  const kept: string[] = [];
  for (const [p] of string.gmatch(list, "([^\n]+)")) {
    if (p !== prefix && d.get("p:" + p)[0] !== undefined) kept.push(p);
  }
  kept.push(prefix);
  d.set("P", table.concat(kept, "\n"));
  d.delete("P:lock");
}

// ---- per-worker view of the global markers, refreshed when "v" changes ---------------------------------------

let seenVersion = -1;
let allHard = 0;
let allSoft = 0;
let tagMarkers = false;
let prefixes: string[] = [];

function refreshGlobals(): void {
  const d = dict!;
  const [v] = d.get("v");
  const version = (v as number | undefined) ?? 0;
  if (version === seenVersion) return;
  seenVersion = version;
  [allHard, allSoft] = times("m:*");
  tagMarkers = ((d.get("ng")[0] as number | undefined) ?? 0) > 0;
  prefixes = [];
  const [list] = d.get("P");
  if (list !== undefined) for (const [p] of string.gmatch(list as string, "([^\n]+)")) prefixes.push(p);
}

/**
 * What the markers say about an object of key `key` stored at `storedAt`, tagged `tags` (comma-separated,
 * "" for none), at `url` (its index URL, or undefined when prefix markers need not be checked): MARK_NONE,
 * MARK_HARD or MARK_SOFT, and for soft the time it became stale. Hard wins over soft.
 */
export function markerDecision(this: void, key: string, storedAt: number, tags: string, url: string | undefined): LuaMultiReturn<[number, number]> {
  if (dict === undefined) return $multi(MARK_NONE, 0);
  refreshGlobals();
  let soft = 0;
  if (dict.get("m:" + key)[0] !== undefined) {
    const [kh, ks] = times("m:" + key);
    if (kh >= storedAt) return $multi(MARK_HARD, 0);
    if (ks >= storedAt) soft = ks;
  }
  if (allHard >= storedAt) return $multi(MARK_HARD, 0);
  if (allSoft >= storedAt && (soft === 0 || allSoft < soft)) soft = allSoft;
  if (tagMarkers && tags !== "") {
    for (const [tag] of string.gmatch(tags, "[^,]+")) {
      const [th, ts] = times("g:" + tag);
      if (th >= storedAt) return $multi(MARK_HARD, 0);
      if (ts >= storedAt && (soft === 0 || ts < soft)) soft = ts;
    }
  }
  const n = prefixes.length;
  if (n > 0 && url !== undefined) {
    for (let i = 0; i < n; i++) {
      const p = prefixes[i];
      if (string.sub(url, 1, p.length) === p) {
        const [ph, ps] = times("p:" + p);
        if (ph >= storedAt) return $multi(MARK_HARD, 0);
        if (ps >= storedAt && (soft === 0 || ps < soft)) soft = ps;
      }
    }
  }
  if (soft > 0) return $multi(MARK_SOFT, soft);
  return $multi(MARK_NONE, 0);
}

/** True when some prefix marker is active (the caller then passes the object's URL). */
export function prefixMarkersActive(this: void): boolean {
  if (dict === undefined) return false;
  refreshGlobals();
  return prefixes.length > 0;
}

// ---- init (master): the state folder and the replay ----------------------------------------------------------

function replayFile(path: string): void {
  const text = readAll(path);
  if (text === undefined) return;
  const d = dict!;
  for (const [line] of string.gmatch(text, "([^\n]*)\n")) {
    const kind = string.sub(line, 1, 1);
    if (kind === "M") {
      const [h, s, e, name] = string.match(line, "^M\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$");
      if (name !== undefined) {
        const n = unescapeName(name);
        merge(n, tonumber(h) ?? 0, tonumber(s) ?? 0, tonumber(e) ?? 0);
        if (string.sub(n, 1, 2) === "p:") addPrefix(string.sub(n, 3));
        if (string.sub(n, 1, 2) === "g:") d.incr("ng", 1, 0);
      }
    } else if (kind === "D") {
      const [name] = string.match(line, "^D\t(.*)$");
      if (name !== undefined) d.delete(unescapeName(name));
    } else if (kind === "S") {
      const [stream, id] = string.match(line, "^S\t([^\t]*)\t(.*)$");
      if (id !== undefined) d.set("s:" + unescapeName(stream!), id);
    }
  }
}

/** Generations present in the state folder, ascending. */
function generations(): number[] {
  const seen = new LuaTable<number, boolean>();
  const gens: number[] = [];
  for (const name of listDir(dir, "^markers%-%d+%.")) {
    const [g] = string.match(name, "^markers%-(%d+)%.");
    const n = tonumber(g)!;
    if (seen.get(n) !== true) {
      seen.set(n, true);
      gens.push(n);
    }
  }
  table.sort(gens);
  return gens;
}

/**
 * At init (master): the state folder exists and belongs to the workers; when the dict is new (a start, or a
 * reload that changed its size), every marker still alive is replayed from the snapshots and journals.
 */
export function initMarkers(this: void, cfg: MarkersConfig): void {
  dir = cfg.dir;
  ttl = cfg.ttl;
  if (dict === undefined) return;
  const err = ensureWorkerDir(dir, cfg.user);
  if (err !== undefined) ngx.log(ngx.ERR, "markers: state folder ", dir, ": ", err, "; purges will not survive a restart");
  if (dict.get("loaded")[0] !== undefined) return; // the dict survived a reload with its markers
  let last = 1;
  for (const g of generations()) {
    replayFile(journalPath(g, "snapshot"));
    replayFile(journalPath(g, "journal"));
    last = g;
  }
  dict.set("gen", last);
  dict.set("loaded", true);
  bumpVersion(preciseNow());
}

// ---- compaction (worker 0, in a timer) ------------------------------------------------------------------------

function fileSize(path: string): number {
  const [f] = io.open(path, "rb");
  if (f === undefined) return 0;
  const [size] = f.seek("end");
  f.close();
  return (size as number | undefined) ?? 0;
}

/** Starts a new journal generation and writes the snapshot it starts from, when the journal has grown. */
export function compactMarkers(this: void): void {
  if (dict === undefined || dir === "") return;
  const [g] = dict.get("gen");
  const gen = (g as number | undefined) ?? 1;
  const size = fileSize(journalPath(gen, "journal"));
  if (size < JOURNAL_ROTATE_BYTES || size < 2 * fileSize(journalPath(gen, "snapshot"))) return;
  const next = gen + 1;
  dict.set("gen", next); // writers append to the new journal from now on
  const lines: string[] = [];
  const now = ngx.now();
  for (const k of dict.get_keys(0)) {
    const c = string.sub(k, 1, 2);
    if (c === "m:" || c === "g:" || c === "p:") {
      const [h, s] = times(k);
      const [left] = dict.ttl(k);
      if ((h > 0 || s > 0) && left !== undefined) lines.push("M\t" + timeText(h) + "\t" + timeText(s) + "\t" + tostring(now + (left > 0 ? left : ttl)) + "\t" + escapeName(k) + "\n");
    } else if (c === "s:") {
      const [id] = dict.get(k);
      if (id !== undefined) lines.push("S\t" + escapeName(string.sub(k, 3)) + "\t" + tostring(id) + "\n");
    }
  }
  const tmp = journalPath(next, "snapshot") + ".tmp";
  const [f, err] = io.open(tmp, "w");
  if (f === undefined) {
    ngx.log(ngx.ERR, "markers: cannot write a snapshot: ", tostring(err));
    return;
  }
  f.write(table.concat(lines));
  f.close();
  os.rename(tmp, journalPath(next, "snapshot"));
  for (const old of generations()) {
    if (old < next) {
      os.remove(journalPath(old, "journal"));
      os.remove(journalPath(old, "snapshot"));
    }
  }
}

// ---- a fetch that started after every marker it could have met -------------------------------------------

/**
 * The markers that could retire an object of `key`, as one string: its per-key marker and the version of the
 * global ones. Taken when a request goes to the origin; unchanged when its answer is stored means no marker
 * was set in between.
 */
export function markersSnapshot(this: void, key: string): string {
  if (dict === undefined) return "";
  const [m] = dict.get("m:" + key);
  const [v] = dict.get("v");
  return tostring(m ?? "") + "#" + tostring(v ?? 0);
}

/** The latest time of the markers that exist now and could retire an object of `key`. */
export function latestMarkerTime(this: void, key: string): number {
  if (dict === undefined) return 0;
  const [h, s] = times("m:" + key);
  const [vt] = dict.get("vt");
  return math.max(h, s, (vt as number | undefined) ?? 0);
}
