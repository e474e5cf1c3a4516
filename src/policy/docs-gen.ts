/**
 * Renders docs/policy-reference.md from the generated JSON Schema (so it comes from the same source of
 * truth: the JSDoc of src/policy/types.ts), and docs/diagnostics.md from the diagnostics catalogue.
 * Dev-time only.
 */
import { catalogueEntries, CODE_RANGES } from "../validate/catalogue.js";

interface Node {
  type?: string | string[];
  $ref?: string;
  description?: string;
  default?: unknown;
  examples?: unknown[];
  pattern?: string;
  enum?: unknown[];
  const?: unknown;
  items?: Node;
  anyOf?: Node[];
  properties?: Record<string, Node>;
  additionalProperties?: Node | boolean;
  required?: string[];
  minimum?: number;
  maximum?: number;
}

function refName(ref: string): string {
  return ref.replace("#/definitions/", "");
}

function typeOf(n: Node, defs: Record<string, Node>): string {
  if (n.$ref) {
    const name = refName(n.$ref);
    const d = defs[name]!;
    return d.properties ? `[${name}](#${name.toLowerCase()})` : `${typeOf(d, defs)}`;
  }
  if (n.enum) return n.enum.map((v) => `\`${JSON.stringify(v)}\``).join(" \\| ");
  if (n.const !== undefined) return `\`${JSON.stringify(n.const)}\``;
  if (n.anyOf) return n.anyOf.map((a) => typeOf(a, defs)).join(" \\| ");
  if (n.type === "array" && n.items) {
    const item = typeOf(n.items, defs);
    return item.includes(" \\| ") ? `(${item})[]` : `${item}[]`;
  }
  if (n.type === "object" && n.additionalProperties && typeof n.additionalProperties === "object") {
    return `map of ${typeOf(n.additionalProperties, defs)}`;
  }
  return Array.isArray(n.type) ? n.type.join(" \\| ") : n.type ?? "any";
}

function cell(s: string): string {
  return s.replace(/\|/g, "\\|").replace(/\n+/g, " ");
}

export function renderPolicyDocs(schemaText: string): string {
  const schema = JSON.parse(schemaText) as { definitions: Record<string, Node> };
  const defs = schema.definitions;
  const out: string[] = [
    "# Policy reference",
    "",
    "Generated from `src/policy/types.ts` by `npm run schema`: do not edit. The same text is in",
    "`schemas/policy.schema.json` (for YAML/JSON editors) and in the editor tooltips of `definePolicy`.",
    "",
  ];
  const order = ["Policy", ...Object.keys(defs).filter((k) => k !== "Policy" && defs[k]!.properties).sort()];
  for (const name of order) {
    const d = defs[name]!;
    out.push(`## ${name}`, "");
    if (d.description) out.push(d.description, "");
    out.push("| key | type | default | description |", "| --- | --- | --- | --- |");
    for (const [key, p] of Object.entries(d.properties ?? {})) {
      const target = p.$ref ? defs[refName(p.$ref)]! : p;
      const required = d.required?.includes(key) ? " (required)" : "";
      const desc = [p.description ?? target.description ?? ""];
      const pattern = p.pattern ?? target.pattern;
      if (pattern) desc.push(`Pattern: \`${pattern}\`.`);
      const examples = p.examples ?? target.examples;
      if (examples?.length) desc.push(`Example: \`${JSON.stringify(examples[0])}\`.`);
      const def = p.default ?? target.default;
      out.push(`| \`${key}\`${required} | ${typeOf(p, defs)} | ${def === undefined ? "" : `\`${JSON.stringify(def)}\``} | ${cell(desc.join(" "))} |`);
    }
    out.push("");
  }
  return out.join("\n");
}

function whereText(at: readonly string[]): string {
  return at
    .map((k) => (k === "(file)" ? "the policy file itself (with line and column when known)" : k === "(any key)" ? "any key (JSON Schema validation)" : `\`${k}\``))
    .join(", ");
}

/** Renders docs/diagnostics.md from the diagnostics catalogue (src/validate/catalogue.ts). */
export function renderDiagnosticsDocs(): string {
  const entries = catalogueEntries();
  const out: string[] = [
    "# Diagnostics",
    "",
    "Generated from `src/validate/catalogue.ts` by `npm run schema`: do not edit. Every problem `cdn-build validate`",
    "and `cdn-build build` report carries one of these codes, with the JSON path into the policy, a message, a hint",
    "and the source position when known. A code keeps its meaning: match on it in scripts and tests.",
    "",
    "| code | severity | title |",
    "| --- | --- | --- |",
    ...entries.map((e) => `| [${e.code}](#${e.code.toLowerCase()}) | ${e.severity} | ${cell(e.title)}${e.reserved ? " (reserved)" : ""} |`),
    "",
  ];
  for (const range of CODE_RANGES) {
    const inRange = entries.filter((e) => e.code.startsWith(range.prefix));
    if (inRange.length === 0) continue;
    out.push(`## ${range.prefix}xxx: ${range.title}`, "");
    for (const e of inRange) {
      out.push(`### ${e.code}`, "", `**${e.title}** · ${e.severity} · \`${e.name}\``, "");
      if (e.reserved) out.push("Reserved: no check raises it any more; the code is not reused.", "");
      out.push(e.why, "", `**Example fix:** ${e.fix}`, "", `**Raised at:** ${whereText(e.at)}`, "");
    }
  }
  return out.join("\n");
}
