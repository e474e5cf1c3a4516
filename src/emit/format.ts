/**
 * Normalises generated nginx.conf text: one directive per line, 4-space indentation by block depth, no
 * trailing spaces, at most one blank line in a row. Braces inside quoted strings are not counted.
 */
export function formatNginx(text: string): string {
  const out: string[] = [];
  let depth = 0;
  let blank = false;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "") {
      if (!blank && out.length > 0) out.push("");
      blank = true;
      continue;
    }
    const { opens, closes, leadingCloses } = countBraces(line);
    const indent = Math.max(0, depth - leadingCloses);
    if (blank && leadingCloses > 0 && out[out.length - 1] === "") out.pop();
    out.push("    ".repeat(indent) + line);
    blank = false;
    depth = Math.max(0, depth + opens - closes);
  }
  while (out[out.length - 1] === "") out.pop();
  return out.join("\n") + "\n";
}

function countBraces(line: string): { opens: number; closes: number; leadingCloses: number } {
  let opens = 0;
  let closes = 0;
  let leadingCloses = 0;
  let quote: string | null = null;
  let leading = true;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === "\\") i++;
      else if (c === quote) quote = null;
      continue;
    }
    if (c === "#") break;
    if (c === '"' || c === "'") quote = c;
    else if (c === "{") opens++;
    else if (c === "}") {
      closes++;
      if (leading) leadingCloses++;
    }
    if (c !== "}" && c !== " ") leading = false;
  }
  return { opens, closes, leadingCloses };
}
