import type { Feature } from "./shared/feature.js";
import type { Compression } from "../policy/types.js";
import { pointer, warning, type Diagnostic } from "../validate/diagnostic.js";
import { checkSize, checkUnique } from "../validate/checks.js";
import { sizeBytes } from "../util/units.js";
import { TARGETS, type Target } from "../ir/targets.js";

/**
 * The media types compressed by default: text and structured text. Never images (other than SVG and icons),
 * video, audio, archives or WOFF fonts, which are compressed already. nginx compresses `text/html` whatever
 * the list says (it is left out of the emitted list: naming it again is a warning at `nginx -t`).
 */
export const DEFAULT_COMPRESSIBLE_TYPES = [
  "text/html",
  "text/css",
  "text/plain",
  "text/xml",
  "text/javascript",
  "text/markdown",
  "text/csv",
  "text/vtt",
  "application/javascript",
  "application/json",
  "application/ld+json",
  "application/manifest+json",
  "application/xml",
  "application/rss+xml",
  "application/atom+xml",
  "application/xhtml+xml",
  "application/wasm",
  "image/svg+xml",
  "image/x-icon",
  "font/ttf",
  "font/otf",
  "application/vnd.ms-fontobject",
] as const;

/** Media types whose bodies are compressed already: compressing them again only costs CPU. */
const ALREADY_COMPRESSED = /^(image\/(?!svg\+xml$|x-icon$|vnd\.microsoft\.icon$|bmp$)|video\/|audio\/|font\/woff2?$|application\/(zip|gzip|x-gzip|x-bzip2|x-xz|zstd|x-7z-compressed|x-rar-compressed|pdf|octet-stream)$)/;

export const GZIP_DEFAULT_LEVEL = 5;
export const BROTLI_DEFAULT_LEVEL = 4;
export const DEFAULT_MIN_LENGTH = "1k";

/** True when the policy asks for brotli (explicitly or by default). */
function wantsBrotli(c: Compression): boolean {
  return c.brotli !== false;
}

/** What `templates/partials/compression.hbs` renders (inside `http {}`). */
export interface CompressionPart {
  gzip: { level: number } | null;
  brotli: { level: number } | null;
  /** Media types, text/html left out (nginx always includes it), sorted. */
  types: string[];
  minLength: number;
}

/** The partial's data for a policy and target. */
export function compressionPart(c: Compression, target: Target): CompressionPart {
  const types = [...new Set((c.types ?? DEFAULT_COMPRESSIBLE_TYPES).map((t) => t.toLowerCase()))].filter((t) => t !== "text/html").sort();
  return {
    gzip: c.gzip === false ? null : { level: c.gzip?.level ?? GZIP_DEFAULT_LEVEL },
    brotli: wantsBrotli(c) && TARGETS[target].brotliModules !== null ? { level: (c.brotli || {}).level ?? BROTLI_DEFAULT_LEVEL } : null,
    types,
    minLength: sizeBytes(c.minLength ?? DEFAULT_MIN_LENGTH)!,
  };
}

/** Edge-side gzip and brotli of responses going out (docs/edge.md#compression). */
export const compression: Feature = {
  name: "compression",
  check(policy) {
    const c = policy.compression;
    if (!c) return [];
    const out: Diagnostic[] = [];
    out.push(...checkSize(c.minLength, pointer("compression", "minLength"), { max: 1024 ** 3, maxText: '"1g"' }));
    const types = c.types ?? [];
    out.push(...checkUnique(types, (i) => pointer("compression", "types", i), "media type"));
    types.forEach((t, i) => {
      if (ALREADY_COMPRESSED.test(t.toLowerCase())) {
        out.push(warning("compressingCompressedType", pointer("compression", "types", i), `"${t}" bodies are compressed already: compressing them again costs CPU and saves nothing`, "remove it from `types`"));
      }
    });
    return out;
  },
  checkTarget(policy, target) {
    const c = policy.compression;
    if (!c || !wantsBrotli(c) || TARGETS[target].brotliModules !== null) return [];
    return [
      warning(
        "brotliUnavailable",
        pointer("compression", "brotli"),
        `the ${target} target has no brotli module: this bundle compresses with gzip only`,
        "build with `--target nginx-lua` (Debian's libnginx-mod-http-brotli-filter), or set `brotli: false` to silence this",
      ),
    ];
  },
  lower(policy, ir) {
    const c = policy.compression;
    if (!c) return;
    const part = compressionPart(c, ir.target);
    if (part.brotli) {
      // loaded before the Lua module: nginx runs the header filters of the modules loaded last first, so the
      // Lua header filter (the cache's RAM admission) sees the response before it is compressed
      ir.main.modules.unshift(...TARGETS[ir.target].brotliModules!);
    }
    ir.slots.http.push({ partial: "compression", data: part });
    ir.luaData.compression = { noTransform: true, types: Object.fromEntries(["text/html", ...part.types].map((t) => [t, true])), minLength: part.minLength };
  },
  // Cache-Control: no-transform (RFC 9110 7.7): lua-src/features/compression.ts
  runtime: { key: "compression", stages: { header: { compression: true } } },
};
