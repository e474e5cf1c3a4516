import { readFile } from "node:fs/promises";
import { extname, resolve } from "node:path";
import { error, type Diagnostic, type ErrorName } from "../validate/diagnostic.js";
import type { LoadResult, PolicyFormat } from "./types.js";
import { loadTypeScript } from "./typescript.js";
import { loadYamlLike } from "./yaml.js";

export type { LoadedPolicy, LoadResult, PolicyFormat, SourcePosition } from "./types.js";

const FORMATS: Readonly<Record<string, PolicyFormat>> = {
  ".ts": "ts",
  ".mts": "ts",
  ".yaml": "yaml",
  ".yml": "yaml",
  ".json": "json",
};

/** The policy format of a file name, from its extension; undefined when not supported. */
export function policyFormat(file: string): PolicyFormat | undefined {
  const ext = extname(file).toLowerCase();
  return Object.hasOwn(FORMATS, ext) ? FORMATS[ext] : undefined;
}

function fileProblem(file: string, message: string, hint: string, name: ErrorName = "policyFileUnreadable"): Diagnostic {
  return Object.assign(error(name, "", message, hint), { file });
}

/**
 * Load a policy file (TypeScript, YAML or JSON) into a plain, not yet validated value, with source positions.
 * Never throws: every problem is a diagnostic (codes CDN0xxx, see src/validate/catalogue.ts).
 * A TypeScript policy is type-checked first and only evaluated when it has no type errors.
 */
export async function loadPolicy(file: string): Promise<LoadResult> {
  const abs = resolve(file);
  try {
    const format = policyFormat(abs);
    if (!format) {
      return {
        diagnostics: [
          fileProblem(abs, `Unsupported policy file extension "${extname(abs)}"`, "Use a .ts, .mts, .yaml, .yml or .json file."),
        ],
      };
    }
    let text: string;
    try {
      text = await readFile(abs, "utf8");
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const message =
        code === "ENOENT"
          ? `Policy file not found: ${abs}`
          : code === "EISDIR"
            ? `Policy path is a directory, not a file: ${abs}`
            : `Cannot read policy file ${abs}: ${e instanceof Error ? e.message : String(e)}`;
      return { diagnostics: [fileProblem(abs, message, "Check the path and the file permissions.")] };
    }
    return format === "ts" ? await loadTypeScript(abs) : loadYamlLike(abs, text, format);
  } catch (e) {
    // A bug or an environment problem (e.g. typescript missing): still a diagnostic, never a throw.
    const message = `Cannot load policy file ${abs}: ${e instanceof Error ? e.message : String(e)}`;
    return { diagnostics: [fileProblem(abs, message, "This looks like an internal error; please report it.", "loaderFailed")] };
  }
}
