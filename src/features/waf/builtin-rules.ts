import type { WafRuleSet } from "../../policy/types.js";

/**
 * The WAF's built-in rules. Patterns are PCRE, matched against normalised input: URL-decoded until stable,
 * lower-cased, null bytes removed, `+`, whitespace runs and SQL comments (`/* ... *\/`) turned into one
 * space. They are written for few false positives on ordinary traffic: words like "select", "union",
 * "script" or "drop" only match in the shape of an attack (after a quote, next to SQL syntax, inside a tag).
 */
export interface BuiltinRule {
  id: string;
  set: WafRuleSet;
  /** The request parts it inspects ("body" only when body inspection is on). */
  targets: ("path" | "query" | "body" | "userAgent")[];
  /**
   * Literal strings of which every match contains at least one (in the normalised, lower-cased input). The
   * literals of all rules of a target form one prefilter expression; only when it matches are the rules
   * whose literals are present run. Bytes above 0x7f are written `\\xHH`. Omitted: the rule always runs.
   */
  literals?: string[];
  pattern: string;
}

const INPUT: BuiltinRule["targets"] = ["path", "query", "body"];

const SHELL_COMMANDS =
  "cat|ls|id|whoami|uname|wget|curl|nc|ncat|netcat|bash|sh|zsh|ksh|python[23]?|perl|php|ruby|rm|chmod|chown|echo|ping|nslookup|sleep|busybox|powershell|cmd|env|printenv|ifconfig|telnet|tftp|crontab|base64|passwd";

/** Scanner names looked for in the user agent (each one is also a literal of the rule). */
const SCANNERS = ["sqlmap", "nikto", "nmap", "masscan", "acunetix", "netsparker", "wpscan", "dirbuster", "gobuster", "nessus", "openvas", "w3af", "zgrab", "nuclei", "havij", "jaeles", "fimap", "arachni", "whatweb", "zmeu", "morfeus", "feroxbuster", "ffuf", "fuzz faster u fool", "skipfish", "wfuzz", "commix", "xsstrike", "jorgee", "appscan", "webinspect", "sqlninja", "bbqsql", "joomscan", "droopescan", "cmsmap", "struts-pwn", "interactsh", "dirb"];

export const BUILTIN_RULES: readonly BuiltinRule[] = [
  // ---- SQL injection --------------------------------------------------------------------------------
  {
    id: "sqli-union",
    set: "sqli",
    targets: INPUT,
    // "union select" followed by a select list (a value, a quote, a column list, FROM or a comment), so a
    // phrase like "european union select committee" passes
    literals: ["union"], pattern: String.raw`\bunion(?: all| distinct)? ?\(? ?select ?(?:[\d'"\x60(*@-]|null\b|[\w.$]{1,200} ?(?:,|\(|\bfrom\b|--|#|;|\/\*))`,
  },
  {
    id: "sqli-tautology",
    set: "sqli",
    targets: INPUT,
    literals: ["'", "\"", "`", ")", "or ", "and "], pattern: String.raw`['"\x60)] ?(?:or|and|xor|\|\||&&) ?\(? ?['"\x60]?[\w.@$]*['"\x60]? ?(?:=|<>|!=|<=?|>=?|\blike\b|\bis\b|\bin ?\(|\bregexp\b|\bbetween\b)|['"\x60] ?(?:or|and|xor|\|\||&&) ?(?:\b(?:true|false|not|null|sleep)\b|\d|\()|\b(?:or|and) \d+ ?(?:=|<>|!=|<|>) ?\d+\b|\b(?:or|and) ['"]\w*['"] ?= ?['"]`,
  },
  { id: "sqli-comment", set: "sqli", targets: INPUT, literals: ["--", "#", ";"], pattern: String.raw`['"\x60)] ?(?:--(?: |$)|;? ?--$)|['"\x60] ?(?:#|;$|; ?--)` },
  {
    id: "sqli-stacked",
    set: "sqli",
    targets: INPUT,
    literals: [";", "'", "\"", "`", ")"], pattern: String.raw`; ?(?:drop|delete|insert|update|create|alter|truncate|exec(?:ute)?|declare|shutdown|select|grant|rename|waitfor)\b|['"\x60)] ?(?:drop|delete|insert|update|alter|truncate) (?:table|from|into|database)\b|['"\x60)] ?(?:having|group by|order by|procedure analyse|limit \d)\b`,
  },
  {
    id: "sqli-functions",
    set: "sqli",
    targets: INPUT,
    literals: ["(", "waitfor", "into ", "information_schema", "@@", "xp_cmdshell", "sysobjects", "pg_catalog", "sqlite_master", "select", "order by"], pattern: String.raw`\b(?:sleep|benchmark|pg_sleep|load_file|extractvalue|updatexml|group_concat|concat_ws|char|chr|ascii|substring|hex|unhex|version|database|user|md5|dbms_pipe\.receive_message) ?\( ?(?:\d|['"\x60(@]|select\b|0x|user|version|database)|\bwaitfor delay\b|\binto (?:out|dump)file\b|\binformation_schema\b|@@(?:version|datadir|hostname)\b|\bxp_cmdshell\b|\bsysobjects\b|\bpg_catalog\b|\bsqlite_master\b|\( ?select\b|\bselect\b[^;]{0,60}\bfrom\b[^;]{0,60}\bwhere\b[^;]{0,40}(?:=|\blike\b)|\border by \d+ ?(?:--|#)`,
  },
  // ---- cross-site scripting -------------------------------------------------------------------------
  { id: "xss-script", set: "xss", targets: INPUT, literals: ["<"], pattern: String.raw`<\/? ?script\b|<\/ ?script ?>` },
  {
    id: "xss-event",
    set: "xss",
    targets: INPUT,
    literals: ["onabort", "onauxclick", "onbeforeunload", "onblur", "oncancel", "onchange", "onclick", "onclose", "oncontextmenu", "oncopy", "oncut", "ondblclick", "ondrag", "ondrop", "onerror", "onfocus", "onformdata", "onhashchange", "oninput", "oninvalid", "onkey", "onload", "onmessage", "onmouse", "onpageshow", "onpaste", "onpointer", "onpopstate", "onreset", "onresize", "onscroll", "onsearch", "onselect", "onshow", "onsubmit", "ontoggle", "ontouch", "ontransition", "onanimation", "onunload", "onwheel", "onbegin", "onend", "onfinish", "onstart", "onrepeat"], pattern: String.raw`(?:[\s"'\x60/;<]|^)on(?:abort|auxclick|beforeunload|blur|cancel|change|click|close|contextmenu|copy|cut|dblclick|drag\w*|drop|error|focus(?:in|out)?|formdata|hashchange|input|invalid|key(?:down|press|up)|load(?:start|end|eddata|edmetadata)?|message|mouse\w+|pageshow|paste|pointer\w+|popstate|reset|resize|scroll|search|select(?:start)?|show|submit|toggle|touch\w+|transition\w+|animation\w+|unload|wheel|begin|end|finish|start|repeat) ?=`,
  },
  { id: "xss-uri", set: "xss", targets: INPUT, literals: ["script:", "script :", "data:", "data :"], pattern: String.raw`\b(?:java|vb|live)script ?:(?! )|\b(?:java|vb|live)script ?: ?[\w$.]+ ?\(|\bdata ?: ?text\/html\b|\bdata ?: ?image\/svg\+xml` },
  {
    id: "xss-tag",
    set: "xss",
    targets: INPUT,
    literals: ["<"], pattern: String.raw`<(?:iframe|frame|frameset|svg|object|embed|applet|meta|base|math|marquee|isindex|xss|form|details|video|audio|body|style|link|img|image|input|textarea|select|button|a)\b[^<>]*(?:\bon\w+ ?=|\b(?:src|href|data|action|formaction|xlink:href) ?= ?['"]? ?(?:javascript|vbscript|data))|<(?:iframe|frameset|svg|object|embed|applet|meta|base|math|isindex)\b`,
  },
  {
    id: "xss-js",
    set: "xss",
    targets: INPUT,
    literals: ["(", "`", "document", "window", "innerhtml", "fromcharcode", "<"], pattern: String.raw`\b(?:alert|prompt|confirm|eval|settimeout|setinterval|execscript)\s?(?:\(|\x60)|\bdocument ?\. ?(?:cookie|domain|write|location)\b|\bwindow ?\. ?(?:location|name|open)\b|\.innerhtml\b|\bfromcharcode\b|\bexpression ?\(|\batob ?\(|\bconstructor ?\(|<!\[cdata\[`,
  },
  // ---- path traversal -------------------------------------------------------------------------------
  { id: "traversal-dotdot", set: "traversal", targets: INPUT, literals: ["..", "\\xc0", "\\xe0\\x80"], pattern: String.raw`(?:^|[\/\\=&;:])\.{2,}(?:[\/\\;]|$)|\xc0[\xae\xaf]|\xe0\x80[\xae\xaf]` },
  {
    id: "traversal-files",
    set: "traversal",
    targets: INPUT,
    literals: ["etc/", "etc\\", "proc/", "proc\\", ".ini", "system32", ".ht", ".git", ".svn", ".hg", ".env", "web.config", "wp-config", "://"], pattern: String.raw`\betc[\/\\](?:passwd|shadow|group|hosts|issue|sudoers|crontab)\b|\bproc[\/\\]self[\/\\]|\b(?:win|boot|system)\.ini\b|\bwindows[\/\\]system32\b|\.ht(?:access|passwd)\b|(?:^|[\/\\])\.(?:git|svn|hg)[\/\\]|(?:^|[\/\\=])\.env\b|\bweb\.config\b|\bwp-config\.php\b|\bfile:\/\/|\bphp:\/\/(?:filter|input)|\bexpect:\/\/|\bzip:\/\/`,
  },
  // ---- shell injection ------------------------------------------------------------------------------
  { id: "shell-chain", set: "shell", targets: INPUT, literals: [";", "|", "`", "&&", "$("], pattern: String.raw`(?:[;|\x60]|&&|\|\||\$\() ?(?:${SHELL_COMMANDS})\b(?! ?=)` },
  {
    id: "shell-subst",
    set: "shell",
    targets: INPUT,
    literals: ["$", "`", "/bin/", "/usr/bin/", "cmd/c", "cmd /c", "cmd.exe", "powershell", "nc -", "ncat -", "/dev/tcp/"], pattern: String.raw`\$\( ?[a-z\/]|\x60 ?(?:${SHELL_COMMANDS})\b[^\x60]*\x60|\$\{ ?(?:jndi|env|sys|lower|upper|::-)|\$\{ ?ifs\b|\$ifs\b|\/bin\/(?:ba|z|da|k)?sh\b|\/usr\/bin\/\w|\bcmd(?:\.exe)? ?\/c\b|\bpowershell(?:\.exe)? -|\bnc(?:at)? -[elvp]+ |\/dev\/tcp\/`,
  },
  // ---- scanners -------------------------------------------------------------------------------------
  {
    id: "scanner-ua",
    set: "scanners",
    targets: ["userAgent"],
    pattern: String.raw`\b(?:sqlmap|nikto|nmap|masscan|acunetix|netsparker|wpscan|dirbuster|gobuster|nessus|openvas|w3af|zgrab|nuclei|havij|jaeles|fimap|arachni|whatweb|zmeu|morfeus|feroxbuster|ffuf|fuzz faster u fool|skipfish|wfuzz|commix|xsstrike|jorgee|appscan|webinspect|sqlninja|bbqsql|joomscan|droopescan|cmsmap|struts-pwn|interactsh)|\bdirb\b`,
  },
];

export const RULE_SETS: readonly WafRuleSet[] = ["sqli", "xss", "traversal", "shell", "scanners"];
