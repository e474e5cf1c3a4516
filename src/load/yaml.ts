import { LineCounter, isAlias, isMap, isPair, isScalar, isSeq, parseDocument, type Document } from "yaml";
import { error, parsePointer, pointer, warning, type Diagnostic } from "../validate/diagnostic.js";
import { describeValue, isPolicyObject } from "./value.js";
import type { LoadResult, PolicyFormat, SourcePosition } from "./types.js";

const HINTS: Partial<Record<string, string>> = {
  DUPLICATE_KEY: "Remove or rename one of the duplicate keys.",
  MULTIPLE_DOCS: "A policy file holds a single document: remove the extra `---` separator.",
  TAB_AS_INDENT: "Indent with spaces, not tabs.",
};

/** Parse a YAML or JSON policy (JSON goes through the YAML parser: it is a YAML 1.2 subset, so positions work). */
export function loadYamlLike(file: string, text: string, format: Extract<PolicyFormat, "yaml" | "json">): LoadResult {
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
