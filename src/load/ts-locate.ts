import type ts from "typescript";
import { parsePointer } from "../validate/diagnostic.js";
import type { SourcePosition } from "./types.js";

type TS = typeof ts;

const INDEX = /^(0|[1-9][0-9]*)$/;
const MAX_HOPS = 32;

/**
 * Best-effort `locate()` for a TypeScript policy: finds the default export's object literal (`export default {…}`,
 * `export default definePolicy({…})`, `satisfies Policy` / `as const` variants, or a top-level `const` exported as
 * default) and walks property assignments and array elements by pointer. Map entries are located at their
 * property name. Returns the nearest ancestor found when the walk leaves the literals; undefined when there is
 * no default export expression.
 */
export function makeTsLocator(ts: TS, sf: ts.SourceFile): (pointer: string) => SourcePosition | undefined {
  const posOf = (node: ts.Node): SourcePosition => {
    const { line, character } = sf.getLineAndCharacterOfPosition(node.getStart(sf));
    return { line: line + 1, col: character + 1 };
  };

  /** Initializer of a top-level `const`/`let`/`var` with this name. */
  const topLevelInitializer = (name: string): ts.Expression | undefined => {
    for (const stmt of sf.statements) {
      if (!ts.isVariableStatement(stmt)) continue;
      for (const decl of stmt.declarationList.declarations) {
        if (ts.isIdentifier(decl.name) && decl.name.text === name) return decl.initializer;
      }
    }
    return undefined;
  };

  /** Strip wrappers (parentheses, `as`, `satisfies`, `!`, a call like `definePolicy(…)`) and follow identifiers. */
  const unwrap = (expr: ts.Expression | undefined): ts.Expression | undefined => {
    for (let hops = 0; expr && hops < MAX_HOPS; hops++) {
      if (
        ts.isParenthesizedExpression(expr) ||
        ts.isAsExpression(expr) ||
        ts.isSatisfiesExpression(expr) ||
        ts.isTypeAssertionExpression(expr) ||
        ts.isNonNullExpression(expr)
      ) {
        expr = expr.expression;
      } else if (ts.isCallExpression(expr)) {
        expr = expr.arguments[0];
      } else if (ts.isIdentifier(expr)) {
        expr = topLevelInitializer(expr.text);
      } else {
        return expr;
      }
    }
    return undefined;
  };

  const nameText = (name: ts.PropertyName): string | undefined => {
    if (ts.isIdentifier(name) || ts.isStringLiteral(name) || ts.isNoSubstitutionTemplateLiteral(name)) return name.text;
    if (ts.isNumericLiteral(name)) return String(Number(name.text));
    if (ts.isComputedPropertyName(name)) {
      const e = name.expression;
      if (ts.isStringLiteral(e) || ts.isNoSubstitutionTemplateLiteral(e)) return e.text;
      if (ts.isNumericLiteral(e)) return String(Number(e.text));
    }
    return undefined;
  };

  interface Step {
    at: ts.Node;
    next: ts.Expression | undefined;
  }

  /** The property `key` of an object literal; the last definition wins, spreads of literals are searched. */
  const findProperty = (obj: ts.ObjectLiteralExpression, key: string, depth: number): Step | undefined => {
    for (let i = obj.properties.length - 1; i >= 0; i--) {
      const prop = obj.properties[i]!;
      if (ts.isSpreadAssignment(prop)) {
        const spread = unwrap(prop.expression);
        if (spread && ts.isObjectLiteralExpression(spread) && depth < MAX_HOPS) {
          const found = findProperty(spread, key, depth + 1);
          if (found) return found;
        }
        continue;
      }
      if (!prop.name || nameText(prop.name) !== key) continue;
      if (ts.isPropertyAssignment(prop)) return { at: prop.name, next: prop.initializer };
      if (ts.isShorthandPropertyAssignment(prop)) return { at: prop.name, next: prop.name };
      return { at: prop.name, next: undefined };
    }
    return undefined;
  };

  const findDefaultExport = (): ts.Node | undefined => {
    for (const stmt of sf.statements) {
      if (ts.isExportAssignment(stmt) && !stmt.isExportEquals) return stmt.expression;
      if (ts.isExportDeclaration(stmt) && !stmt.moduleSpecifier && stmt.exportClause && ts.isNamedExports(stmt.exportClause)) {
        for (const el of stmt.exportClause.elements) {
          if (el.name.text === "default") return el.propertyName && ts.isIdentifier(el.propertyName) ? el.propertyName : el.name;
        }
      }
      if (
        (ts.isFunctionDeclaration(stmt) || ts.isClassDeclaration(stmt)) &&
        stmt.modifiers?.some((m) => m.kind === ts.SyntaxKind.DefaultKeyword)
      ) {
        return stmt;
      }
    }
    return undefined;
  };

  return (pointer: string) => {
    if (pointer !== "" && !pointer.startsWith("/")) return undefined;
    const root = findDefaultExport();
    if (!root) return undefined;
    let node = ts.isExpression(root) ? unwrap(root) : undefined;
    let at: ts.Node = node && (ts.isObjectLiteralExpression(node) || ts.isArrayLiteralExpression(node)) ? node : root;
    for (const seg of parsePointer(pointer)) {
      let step: Step | undefined;
      if (node && ts.isObjectLiteralExpression(node)) {
        step = findProperty(node, seg, 0);
      } else if (node && ts.isArrayLiteralExpression(node) && INDEX.test(seg)) {
        const index = Number(seg);
        const elements = node.elements;
        // Elements after a spread have unknown indices.
        const spreadBefore = elements.findIndex((e) => ts.isSpreadElement(e));
        const el = elements[index];
        if (el && !ts.isOmittedExpression(el) && (spreadBefore === -1 || spreadBefore > index)) step = { at: el, next: el };
      }
      if (!step) break;
      at = step.at;
      node = unwrap(step.next);
    }
    return posOf(at);
  };
}
