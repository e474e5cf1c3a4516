import { LineCounter, isAlias, isMap, isPair, isScalar, isSeq, parseDocument, type Document } from "yaml";
import { error, parsePointer, pointer, warning, type Diagnostic } from "../validate/diagnostic.js";
import { describeValue, isPolicyObject } from "./value.js";
import type { LoadResult, PolicyFormat, SourcePosition } from "./types.js";

const HINTS: Partial<Record<string, string>> = {
  DUPLICATE_KEY: "Remove or rename one of the duplicate keys.",
  MULTIPLE_DOCS: "A policy file holds a single document: remove the extra `---` separator.",
  TAB_AS_INDENT: "Indent with spaces, not tabs.",
};

/**
 * Parse a YAML or JSON policy (JSON goes through the YAML parser: it is a YAML 1.2 subset, so positions work).
 * A JSON policy that JSON.parse reads and that repeats no key is read by JSON.parse (tens of times faster on a
 * policy of thousands of rules), and the YAML parser only runs if a diagnostic needs a position.
 */
export function loadYamlLike(file: string, text: string, format: Extract<PolicyFormat, "yaml" | "json">): LoadResult {
  if (format === "json") {
    const fast = loadPlainJson(file, text);
    if (fast) return fast;
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, stringKeys: true, uniqueKeys: true });
  const kind = format === "json" ? "JSON" : "YAML";
  const at = (d: Diagnostic, offset: number | undefined): Diagnostic => {
    d.file = file;
    if (offset !== undefined) Object.assign(d, lineCounter.linePos(Math.min(Math.max(offset, 0), text.length)));
    return d;
  };

  const diagnostics: Diagnostic[] = [];
  for (const e of doc.errors) {
    let message = `${kind} syntax error: ${e.message}`;
    let path = "";
    if (e.code === "DUPLICATE_KEY") {
      const found = findKeyAt(doc.contents, e.pos[0], []);
      if (found) {
        path = pointer(...found);
        message = `${kind} syntax error: duplicate key ${JSON.stringify(found[found.length - 1])} (map keys must be unique)`;
      }
    }
    diagnostics.push(at(error("yamlSyntax", path, message, HINTS[e.code]), e.pos[0]));
  }
  for (const w of doc.warnings) {
    diagnostics.push(at(warning("yamlWarning", "", `${kind}: ${w.message}`, HINTS[w.code]), w.pos[0]));
  }
  if (doc.errors.length > 0) return { diagnostics };

  let value: unknown;
  try {
    value = doc.toJS();
  } catch (e) {
    diagnostics.push(at(error("yamlSyntax", "", `${kind} error: ${e instanceof Error ? e.message : String(e)}`), 0));
    return { diagnostics };
  }

  const locate = (ptr: string): SourcePosition | undefined => {
    const offset = locateOffset(doc, ptr);
    return offset === undefined ? undefined : lineCounter.linePos(offset);
  };

  if (!isPolicyObject(value)) {
    const d = error(
      "notAPolicyObject",
      "",
      `The ${kind} document must be an object (a mapping of policy settings), got ${describeValue(value)}`,
      format === "json" ? 'Write the policy as a JSON object: { "name": ..., "origins": { ... } }' : "Write the policy as a mapping: `name: ...` / `origins: ...`",
    );
    const pos = locate("");
    diagnostics.push(Object.assign(d, { file }, pos ?? {}));
    return { diagnostics };
  }

  return { loaded: { file, format, value, locate }, diagnostics };
}

function startOf(node: unknown): number | undefined {
  if (isPair(node)) return startOf(node.key) ?? startOf(node.value);
  const range = (node as { range?: readonly number[] } | null | undefined)?.range;
  return range?.[0];
}

/** Pointer segments of the map key starting at `offset` (for duplicate-key errors). */
function findKeyAt(node: unknown, offset: number, segs: string[]): string[] | undefined {
  if (isMap(node)) {
    for (const pair of node.items) {
      if (!isScalar(pair.key)) continue;
      const key = String(pair.key.value);
      if (pair.key.range?.[0] === offset) return [...segs, key];
      const found = findKeyAt(pair.value, offset, [...segs, key]);
      if (found) return found;
    }
  } else if (isSeq(node)) {
    for (let i = 0; i < node.items.length; i++) {
      const found = findKeyAt(node.items[i], offset, [...segs, String(i)]);
      if (found) return found;
    }
  }
  return undefined;
}

const INDEX = /^(0|[1-9][0-9]*)$/;

/** Offset of the node at `ptr` (of its key for map entries), or of the nearest existing ancestor. */
function locateOffset(doc: Document, ptr: string): number | undefined {
  if (ptr !== "" && !ptr.startsWith("/")) return undefined;
  let node: unknown = doc.contents;
  let offset = startOf(node);
  if (offset === undefined) return undefined;
  let aliases = 0;
  for (const seg of parsePointer(ptr)) {
    while (isAlias(node) && aliases++ < 100) node = node.resolve(doc);
    if (isMap(node)) {
      // Last one wins, as in toJS (duplicates are reported as errors anyway).
      let found: (typeof node.items)[number] | undefined;
      for (let i = node.items.length - 1; i >= 0 && !found; i--) {
        const pair = node.items[i]!;
        if (isScalar(pair.key) && String(pair.key.value) === seg) found = pair;
      }
      if (!found) break;
      offset = startOf(found.key) ?? offset;
      node = found.value;
    } else if (isSeq(node)) {
      const item = INDEX.test(seg) ? node.items[Number(seg)] : undefined;
      if (item === undefined) break;
      offset = startOf(item) ?? offset;
      node = item;
    } else {
      break;
    }
  }
  return offset;
}

/**
 * A JSON policy read by JSON.parse, when the text is JSON without a repeated key (the YAML parser reports
 * those, JSON.parse would keep the last one) and holds an object; else undefined (the YAML path decides).
 */
function loadPlainJson(file: string, text: string): LoadResult | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isPolicyObject(value) || repeatsKey(text)) return undefined;
  let slow: ((ptr: string) => SourcePosition | undefined) | undefined;
  const locate = (ptr: string): SourcePosition | undefined => {
    if (!slow) {
      const lineCounter = new LineCounter();
      const doc = parseDocument(text, { lineCounter, prettyErrors: false, stringKeys: true, uniqueKeys: true });
      slow = (p) => {
        const offset = locateOffset(doc, p);
        return offset === undefined ? undefined : lineCounter.linePos(offset);
      };
    }
    return slow(ptr);
  };
  return { loaded: { file, format: "json", value, locate }, diagnostics: [] };
}

/** Whether an object of a valid JSON text has the same key twice (keys compared after unescaping). */
function repeatsKey(text: string): boolean {
  // one entry per open container: the keys seen so far of an object, null for an array
  const open: (Set<string> | null)[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      let j = i + 1;
      let escaped = false;
      while (text.charCodeAt(j) !== 0x22) {
        if (text.charCodeAt(j) === 0x5c) {
          escaped = true;
          j++;
        }
        j++;
      }
      const keys = open[open.length - 1];
      if (expectKey && keys) {
        const raw = text.slice(i + 1, j);
        const key = escaped ? (JSON.parse(text.slice(i, j + 1)) as string) : raw;
        if (keys.has(key)) return true;
        keys.add(key);
      }
      expectKey = false;
      i = j;
    } else if (c === 0x7b) {
      open.push(new Set());
      expectKey = true;
    } else if (c === 0x5b) {
      open.push(null);
      expectKey = false;
    } else if (c === 0x7d || c === 0x5d) {
      open.pop();
      expectKey = false;
    } else if (c === 0x2c) {
      expectKey = open[open.length - 1] !== null;
    }
  }
  return false;
}
