import type { Feature } from "./shared/feature.js";
import type { HeaderRules } from "../policy/types.js";
import { error, pointer, type Diagnostic } from "../validate/diagnostic.js";
import { checkUnique } from "../validate/checks.js";
import type { Policy } from "../policy/types.js";
import { isOverrideHeader, OVERRIDE_HEADERS } from "./shared/override-headers.js";
import { checkSetTotal } from "./shared/header-limits.js";
import { lowerSet } from "./shared/header-values.js";
import type { EdgeIR } from "../ir/types.js";
import type { HeaderRulesData } from "../contract/index.js";

/** Headers whose value nginx computes itself; changing them breaks framing or proxying. */
const PROTECTED = new Set(["content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer", "host"]);

function checkRules(rules: HeaderRules | undefined, side: "request" | "response"): Diagnostic[] {
  if (!rules) return [];
  const out: Diagnostic[] = [];
  const at = (...s: (string | number)[]) => pointer("headers", side, ...s);
  out.push(...checkSetTotal(rules.set, side, at("set")));
  const setNames = Object.keys(rules.set ?? {});
  for (const name of setNames) {
    const value = rules.set![name]!;
    // the name itself follows the one header-name rule, checked by the schema (src/util/header-name.ts)
    if (PROTECTED.has(name.toLowerCase())) out.push(error("protectedHeader", at("set", name), `the ${name} header cannot be set here`, "nginx manages it; remove this entry"));
    // eslint-disable-next-line no-control-regex
    if (typeof value === "string" && /[\u0000-\u0008\u000a-\u001f\u007f]/.test(value)) {
      out.push(error("headerValueControlChar", at("set", name), `the value of ${name} contains a control character (a newline would split the header)`, "remove line breaks and control characters"));
    }
  }
  out.push(...checkUnique(setNames, (i) => at("set", setNames[i]!), "header"));
  const remove = rules.remove ?? [];
  out.push(...checkUnique(remove, (i) => at("remove", i), "header"));
  remove.forEach((name, i) => {
    if (setNames.some((s) => s.toLowerCase() === name.toLowerCase())) {
      out.push(error("headerSetAndRemoved", at("remove", i), `${name} is both set and removed`, "keep it in one list only"));
    }
    if (PROTECTED.has(name.toLowerCase())) out.push(error("protectedHeader", at("remove", i), `the ${name} header cannot be removed here`, "nginx manages it; remove this entry"));
  });
  return out;
}

/** The forwarding and override headers the policy lets through (`allowOverrides`), and rules that set one. */
function checkOverrides(policy: Policy): Diagnostic[] {
  const out: Diagnostic[] = [];
  const allow = policy.headers?.allowOverrides ?? [];
  allow.forEach((a, i) => {
    if (!isOverrideHeader(a.header)) {
      out.push(error("overrideNotStripped", pointer("headers", "allowOverrides", i, "header"), `${a.header} is not one of the forwarding or override headers the edge removes, so there is nothing to allow`, `list one of: ${OVERRIDE_HEADERS.join(", ")}`));
    }
  });
  out.push(...checkUnique(allow.map((a) => a.header), (i) => pointer("headers", "allowOverrides", i, "header"), "header"));
  // a rule's value for an override header would be removed before the origin like the client's (the edge
  // strips them in nginx): the header must be let through, or set for every request
  const passes = (name: string) =>
    allow.some((a) => a.header.toLowerCase() === name.toLowerCase()) || Object.keys(policy.headers?.request?.set ?? {}).some((h) => h.toLowerCase() === name.toLowerCase());
  (policy.rules ?? []).forEach((rule, i) => {
    for (const name of Object.keys(rule.then.requestHeaders?.set ?? {})) {
      if (isOverrideHeader(name) && !passes(name)) {
        out.push(error("ruleSetsOverrideHeader", pointer("rules", i, "then", "requestHeaders", "set", name), `rule "${rule.name}" sets ${name}, a forwarding header the edge removes before the origin`, `let it through with headers.allowOverrides: [{ header: "${name}" }], or set it for every request in headers.request.set`));
      }
    }
  });
  return out;
}

function luaRules(policy: Policy, ir: EdgeIR, rules: HeaderRules | undefined): HeaderRulesData {
  return { set: lowerSet(policy, ir, rules?.set), remove: [...(rules?.remove ?? [])].sort() };
}

/**
 * Request and response header changes, and the cache status header. Applied by the Lua header filter, so
 * they reach every response (error pages and nginx's own 502/504 included) without add_header's
 * per-location inheritance trap.
 */
export const headers: Feature = {
  name: "headers",
  runtime: {
    key: "headers",
    stages: {
      access: { headers: (d) => d.request.set.length + d.request.remove.length > 0 },
      header: { headers: (d) => d.response.set.length + d.response.remove.length > 0 || d.cacheStatus !== undefined },
    },
  },
  check(policy) {
    return [...checkRules(policy.headers?.request, "request"), ...checkRules(policy.headers?.response, "response"), ...checkOverrides(policy)];
  },
  lower(policy, ir) {
    const h = policy.headers ?? {};
    const cacheStatus = h.cacheStatus === false ? undefined : h.cacheStatus ?? "X-Cache";
    ir.luaData.headers = {
      request: luaRules(policy, ir, h.request),
      response: luaRules(policy, ir, h.response),
      cacheStatus: policy.cache ? cacheStatus : undefined,
    };
  },
};
