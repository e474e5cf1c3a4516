import Handlebars from "handlebars";
import { readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import type { EdgeIR } from "../ir/types.js";
import { packageRoot } from "../util/package.js";
import { formatNginx } from "./format.js";
import { ngxComment, ngxFlag, ngxNumber, ngxString, ngxTemplate, ngxWord } from "./nginx-escape.js";

let render: ((ir: EdgeIR) => string) | undefined;

/** A Handlebars environment whose only value helpers are the nginx escaping helpers. */
function compileTemplates(): (ir: EdgeIR) => string {
  const hb = Handlebars.create();
  const helpers: Record<string, (v: unknown) => string> = {
    str: ngxString,
    template: ngxTemplate,
    word: ngxWord,
    num: ngxNumber,
    flag: ngxFlag,
    comment: ngxComment,
  };
  for (const [name, fn] of Object.entries(helpers)) hb.registerHelper(name, (v: unknown) => fn(v));
  const dir = join(packageRoot(), "templates");
  for (const file of readdirSync(join(dir, "partials")).sort()) {
    if (!file.endsWith(".hbs")) continue;
    hb.registerPartial(basename(file, ".hbs"), hb.compile(readFileSync(join(dir, "partials", file), "utf8"), { noEscape: true, strict: true }));
  }
  const main = hb.compile(readFileSync(join(dir, "nginx.conf.hbs"), "utf8"), { noEscape: true, strict: true });
  return (ir) => formatNginx(main(ir));
}

export function renderNginxConf(ir: EdgeIR): string {
  render ??= compileTemplates();
  return render(ir);
}
