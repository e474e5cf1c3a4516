import type ts from "typescript";

type TS = typeof ts;

/** What a static read cannot decide: the module is then evaluated. */
class NotData extends Error {}

const NUMBER = /^(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;

/**
 * The policy of a module that is pure data, read from its syntax tree without running it: only imports from
 * "cdn-build" (or type-only imports), and `export default definePolicy(<literal>)` or `export default <literal>`,
 * where the literal holds only objects with plain keys, arrays, strings, numbers, booleans and null
 * (`as` / `satisfies` / parentheses allowed around any of them). That is what a generated policy of
 * thousands of rules looks like; evaluating it would cost seconds of transpiling for a value the tree already
 * holds. Anything else (another statement, a computed key, a spread, a call, an identifier...) returns
 * undefined, and the module is evaluated as usual.
 */
export function staticPolicy(ts: TS, sf: ts.SourceFile): { value: unknown } | undefined {
  try {
    let define: string | undefined;
    let exported: ts.Expression | undefined;
    for (const st of sf.statements) {
      if (ts.isImportDeclaration(st)) {
        const clause = st.importClause;
        if (!clause) return undefined; // imported for its side effects
        if (clause.isTypeOnly) continue;
        if (!ts.isStringLiteral(st.moduleSpecifier) || st.moduleSpecifier.text !== "cdn-build" || clause.name) return undefined;
        const named = clause.namedBindings;
        if (!named || !ts.isNamedImports(named)) return undefined;
        for (const el of named.elements) {
          if (el.isTypeOnly) continue;
          if ((el.propertyName ?? el.name).text !== "definePolicy") return undefined;
          define = el.name.text;
        }
      } else if (ts.isExportAssignment(st) && !st.isExportEquals && exported === undefined) {
        exported = st.expression;
      } else if (!ts.isInterfaceDeclaration(st) && !ts.isTypeAliasDeclaration(st)) {
        return undefined;
      }
    }
    if (!exported) return undefined;
    let e = unwrap(ts, exported);
    if (ts.isCallExpression(e)) {
      if (!define || !ts.isIdentifier(e.expression) || e.expression.text !== define || e.arguments.length !== 1 || e.typeArguments) return undefined;
      e = unwrap(ts, e.arguments[0]!);
    }
    if (!ts.isObjectLiteralExpression(e)) return undefined;
    return { value: literal(ts, e) };
  } catch (err) {
    if (err instanceof NotData) return undefined;
    throw err;
  }
}

function unwrap(ts: TS, e: ts.Expression): ts.Expression {
  while (ts.isParenthesizedExpression(e) || ts.isAsExpression(e) || ts.isSatisfiesExpression(e) || ts.isTypeAssertionExpression(e)) e = e.expression;
  return e;
}

function literal(ts: TS, node: ts.Expression): unknown {
  const e = unwrap(ts, node);
  if (ts.isStringLiteral(e) || ts.isNoSubstitutionTemplateLiteral(e)) return e.text;
  if (ts.isNumericLiteral(e)) return number(e.text);
  if (ts.isPrefixUnaryExpression(e) && e.operator === ts.SyntaxKind.MinusToken && ts.isNumericLiteral(e.operand)) return -number(e.operand.text);
  if (e.kind === ts.SyntaxKind.TrueKeyword) return true;
  if (e.kind === ts.SyntaxKind.FalseKeyword) return false;
  if (e.kind === ts.SyntaxKind.NullKeyword) return null;
  if (ts.isArrayLiteralExpression(e)) {
    return e.elements.map((x) => {
      if (ts.isSpreadElement(x) || ts.isOmittedExpression(x)) throw new NotData();
      return literal(ts, x);
    });
  }
  if (ts.isObjectLiteralExpression(e)) {
    const out: Record<string, unknown> = {};
    for (const p of e.properties) {
      if (!ts.isPropertyAssignment(p)) throw new NotData();
      const name = p.name;
      const key = ts.isIdentifier(name) || ts.isStringLiteral(name) || ts.isNoSubstitutionTemplateLiteral(name) ? name.text : undefined;
      // "__proto__: x" sets the prototype when evaluated
      if (key === undefined || key === "__proto__") throw new NotData();
      out[key] = literal(ts, p.initializer);
    }
    return out;
  }
  throw new NotData();
}

function number(text: string): number {
  if (!NUMBER.test(text)) throw new NotData();
  return Number(text);
}
