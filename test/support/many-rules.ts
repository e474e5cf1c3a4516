import type { Rule } from "../../src/policy/types.js";

/** A policy of `n` rules shaped like a real one: exact paths, prefixes, extensions, hosts, some regexes. */
export function manyRules(n: number): Rule[] {
  const out: Rule[] = [];
  for (let i = 0; i < n; i++) {
    switch (i % 5) {
      case 0:
        out.push({ name: `exact-${i}`, when: { path: `/page/${i}` }, then: { responseHeaders: { set: { "X-Rule": `exact-${i}` } } } });
        break;
      case 1:
        out.push({ name: `prefix-${i}`, when: { path: { prefix: `/section-${i}/` } }, then: { responseHeaders: { set: { "X-Rule": `prefix-${i}` } } } });
        break;
      case 2:
        out.push({ name: `glob-${i}`, when: { path: `/files-${i}/*.bin` }, then: { responseHeaders: { set: { "X-Rule": `glob-${i}` } } } });
        break;
      case 3:
        out.push({ name: `ext-${i}`, when: { extension: [`e${i}`] }, then: { responseHeaders: { set: { "X-Rule": `ext-${i}` } } } });
        break;
      default:
        out.push({ name: `host-${i}`, when: { host: [`h${i}.example.test`], method: ["GET", "HEAD"] }, then: { responseHeaders: { set: { "X-Rule": `host-${i}` } } } });
    }
  }
  return out;
}
