/**
 * Writing values into systemd unit files so that they mean exactly what they
 * say (systemd.syntax(7), systemd.service(5) "Command lines",
 * systemd.unit(5) "Specifiers").
 *
 * The dangers, and how each is met:
 * - a newline (or CR) would end the directive and start a new one: never
 *   written raw; inside quoted words it is C-escaped (`\n`), elsewhere the
 *   value is refused ({@linkcode checkLineValue});
 * - a trailing backslash would join the next line (line continuation):
 *   refused outside quotes, escaped (`\\`) inside;
 * - `%` starts a specifier in almost every setting: always written `%%`;
 * - `$` starts environment substitution in `Exec*=` lines (a lone `$VAR`
 *   word even splits into several arguments): written `$$` there;
 * - whitespace and quotes split or merge arguments: such words are written in
 *   double quotes with `\`, `"` and control characters C-escaped, which
 *   systemd undoes (EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE) before running;
 * - a lone `;` separates commands: always quoted;
 * - NUL and unpaired UTF-16 surrogates cannot be represented: refused;
 * - systemd refuses a unit line longer than `LONG_LINE_MAX` (1 MiB, its
 *   src/basic/fileio.h): {@linkcode checkUnitLines} fails such a unit;
 * - user and group ids: integers 0..4294967294 only ({@linkcode checkId}),
 *   never a float such as `1e+21` (4294967295 is `(uid_t) -1`, "no id").
 *
 * @module
 */
import { OcigenError } from "../errors.ts";
import { MAX_ID } from "../rootfs/users.ts";

/** Characters that never need quoting in an `Exec*=` word (after `%`/`$` doubling). */
const SAFE_WORD = /^[A-Za-z0-9_+=:,./@%$^-]+$/;

/**
 * Doubles `%` so that systemd's specifier expansion gives the text back.
 *
 * @example
 * ```ts
 * escapeSpecifiers("100%n"); // "100%%n"
 * ```
 */
export function escapeSpecifiers(s: string): string {
  return s.replaceAll("%", "%%");
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Throws EGENERATE if `s` holds NUL or an unpaired surrogate (not representable in a unit). */
const ANY_SURROGATE = /[\uD800-\uDFFF]/;

function checkRepresentable(s: string, what: string): void {
  if (s.includes("\0")) throw new OcigenError("EGENERATE", `${what} contains a NUL character`);
  // the look-around pattern only where a surrogate is (rarely) present
  if (ANY_SURROGATE.test(s) && LONE_SURROGATE.test(s)) throw new OcigenError("EGENERATE", `${what} contains an unpaired UTF-16 surrogate`);
}

/**
 * C-escapes `s` for the inside of a double-quoted systemd word: `\`, `"`,
 * and every control character become escapes; other characters (including
 * non-ASCII) stay as they are.
 *
 * @example
 * ```ts
 * cEscape('a"b\n'); // 'a\\"b\\n'
 * ```
 */
export function cEscape(s: string): string {
  let out = "";
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === "\\") out += "\\\\";
    else if (ch === '"') out += '\\"';
    else if (ch === "\n") out += "\\n";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\r") out += "\\r";
    else if (c < 0x20 || c === 0x7f) out += "\\x" + c.toString(16).padStart(2, "0");
    else out += ch;
  }
  return out;
}

/**
 * One word for an `Exec*=` command line: the argument `arg` exactly, as
 * systemd will pass it to the program (after specifier expansion,
 * unquoting, unescaping and environment substitution).
 *
 * @example
 * ```ts
 * execWord("hello");        // "hello"
 * execWord("a b");          // '"a b"'
 * execWord("$HOME 100%");   // '"$$HOME 100%%"'
 * execWord("x\nExecStartPre=/bin/evil"); // '"x\\nExecStartPre=/bin/evil"'
 * ```
 */
export function execWord(arg: string, what = "argument"): string {
  checkRepresentable(arg, what);
  const doubled = arg.replaceAll("%", "%%").replaceAll("$", "$$$$");
  if (SAFE_WORD.test(arg)) return doubled;
  return '"' + cEscape(doubled) + '"';
}

/**
 * A whole `Exec*=` value: optional prefix characters (`+`, `-`, ...), then
 * the executable and its arguments, each one word.
 *
 * The executable must be an absolute, normalized path or a plain file name
 * (systemd searches it); a name starting with a prefix character or holding
 * `$` is refused.
 *
 * @example
 * ```ts
 * execLine(["/bin/sh", "-c", "echo $HOME"]);      // '/bin/sh -c "echo $$HOME"'
 * execLine(["/usr/bin/ocigen", "extract"], "+"); // "+/usr/bin/ocigen extract"
 * ```
 */
export function execLine(argv: readonly string[], prefix = ""): string {
  if (argv.length === 0) throw new OcigenError("EGENERATE", "empty command line");
  const exe = argv[0];
  checkExecutable(exe);
  return prefix + argv.map((a, i) => execWord(a, i === 0 ? "executable" : `argument ${i}`)).join(" ");
}

/**
 * Throws EGENERATE unless `exe` is acceptable as the executable of an
 * `Exec*=` line (see {@linkcode execLine}).
 *
 * @example
 * ```ts
 * checkExecutable("/bin/sh"); // ok
 * checkExecutable("-x");      // throws
 * ```
 */
export function checkExecutable(exe: string): void {
  checkRepresentable(exe, "executable");
  if (exe === "") throw new OcigenError("EGENERATE", "the executable is empty");
  if (exe.includes("$")) throw new OcigenError("EGENERATE", `executable ${JSON.stringify(exe)} contains '$'`);
  if (/[\x00-\x1f\x7f]/.test(exe)) throw new OcigenError("EGENERATE", `executable ${JSON.stringify(exe)} contains a control character`);
  // systemd refuses an executable path that is not string_is_safe(): no quote or backslash either
  if (/["'\\]/.test(exe)) throw new OcigenError("EGENERATE", `executable ${JSON.stringify(exe)} contains a quote or a backslash`);
  if (exe.startsWith("/")) {
    if (exe.endsWith("/") || /(^|\/)\.\.?(\/|$)/.test(exe) || exe.includes("//")) {
      throw new OcigenError("EGENERATE", `executable ${JSON.stringify(exe)} is not a normalized absolute path`);
    }
    checkPathLength(exe, "executable");
    return;
  }
  checkPathLength(exe, "executable");
  // a lone ";" is systemd's command separator, even quoted
  if (exe.includes("/") || /^[-@:+!]/.test(exe) || exe === "." || exe === ".." || exe === ";") {
    throw new OcigenError("EGENERATE", `executable ${JSON.stringify(exe)} is neither an absolute path nor a plain file name`);
  }
}

/** Longest path systemd accepts (`PATH_MAX` - 1 bytes) and longest component (`NAME_MAX`). */
const PATH_MAX = 4096;
const NAME_MAX = 255;

/**
 * Throws EGENERATE when path (or file name) `p` is longer than systemd
 * accepts (path_is_valid(): under `PATH_MAX` bytes, components of at most
 * `NAME_MAX` bytes); systemd would refuse the whole unit.
 *
 * @example
 * ```ts
 * checkPathLength("/usr/bin/env", "executable"); // ok
 * checkPathLength("x".repeat(256), "executable"); // throws
 * ```
 */
export function checkPathLength(p: string, what: string): void {
  // UTF-8 takes at most 3 bytes per UTF-16 code unit: short enough strings
  // need no encoding (the usual case, every path of every unit).
  if (p.length * 3 <= NAME_MAX) return;
  const enc = new TextEncoder();
  const short = () => JSON.stringify(p.length > 80 ? p.slice(0, 60) + "..." : p);
  if (enc.encode(p).length >= PATH_MAX) {
    throw new OcigenError("EGENERATE", `${what} ${short()} is longer than systemd accepts (${PATH_MAX - 1} bytes)`);
  }
  for (const c of p.split("/")) {
    if (c.length * 3 > NAME_MAX && enc.encode(c).length > NAME_MAX) {
      throw new OcigenError("EGENERATE", `${what} ${short()} has a name longer than systemd accepts (${NAME_MAX} bytes)`);
    }
  }
}

/**
 * A word for list settings that unquote but do not substitute the
 * environment (`Environment=`, `RequiresMountsFor=`): `%` doubled, quoted
 * when needed.
 *
 * @example
 * ```ts
 * listWord("PATH=/usr/bin");   // "PATH=/usr/bin"
 * listWord("MSG=hello world"); // '"MSG=hello world"'
 * ```
 */
export function listWord(s: string, what = "value"): string {
  checkRepresentable(s, what);
  const d = escapeSpecifiers(s);
  if (/^[A-Za-z0-9_+=:,./@%$^-]+$/.test(s)) return d;
  return '"' + cEscape(d) + '"';
}

/**
 * Checks a value written raw after `Key=` in a setting that neither
 * unquotes nor unescapes (paths, names, descriptions) and returns it with
 * `%` doubled. Refuses control characters (a newline would start a new
 * directive) and a trailing backslash (it would join the next line).
 *
 * @example
 * ```ts
 * checkLineValue("/var/lib/oci/layouts/busybox", "SourcePath="); // "/var/lib/oci/layouts/busybox"
 * checkLineValue("50%", "Description="); // "50%%"
 * ```
 */
export function checkLineValue(s: string, what: string): string {
  checkRepresentable(s, what);
  if (/[\x00-\x1f\x7f]/.test(s)) {
    throw new OcigenError("EGENERATE", `${what} ${JSON.stringify(s)} contains a control character`);
  }
  if (s.endsWith("\\")) throw new OcigenError("EGENERATE", `${what} ${JSON.stringify(s)} ends with a backslash`);
  return escapeSpecifiers(s);
}

/**
 * True if `name` is a valid environment variable name for systemd
 * (`[A-Za-z_][A-Za-z0-9_]*`).
 *
 * @example
 * ```ts
 * isEnvName("PATH"); // true
 * isEnvName("1X");   // false
 * ```
 */
export function isEnvName(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) && name.length < 4096;
}


/**
 * Checks a user or group id (number, or decimal string) and returns it as a
 * number: an integer in 0..MAX_ID (4294967294, from src/rootfs/users.ts; 4294967295 is
 * `(uid_t) -1`), else EGENERATE naming `what`.
 *
 * @example
 * ```ts
 * checkId("1000", "User");   // 1000
 * checkId(1e20, "User");     // throws: not an id
 * unitIdText(checkId(0, "Group")); // "0"
 * ```
 */
export function checkId(id: number | string, what: string): number {
  const n = typeof id === "number" ? id : /^[0-9]{1,10}$/.test(id) ? Number(id) : NaN;
  if (!Number.isSafeInteger(n) || n < 0 || n > MAX_ID) {
    throw new OcigenError("EGENERATE", `${what} ${JSON.stringify(String(id))} is not an id in 0..${MAX_ID}`);
  }
  return n;
}

/**
 * The decimal text of a checked id, for `User=`/`Group=` (never exponent
 * notation).
 *
 * @example
 * ```ts
 * unitIdText(4294967294); // "4294967294"
 * ```
 */
export function unitIdText(id: number, what = "id"): string {
  return checkId(id, what).toFixed(0);
}

/**
 * systemd's line limit in unit files, in bytes (`LONG_LINE_MAX` in its
 * src/basic/fileio.h); a line must be shorter.
 *
 * @example
 * ```ts
 * new TextEncoder().encode(line).length < LONG_LINE_MAX; // what checkUnitLines requires
 * ```
 */
export const LONG_LINE_MAX = 1024 * 1024;

/**
 * Throws EGENERATE when a line of unit `text` is too long for systemd
 * (`LONG_LINE_MAX` bytes, newline excluded, minus one for its terminator),
 * naming the unit, the line number and its key.
 *
 * @example
 * ```ts
 * checkUnitLines("[Service]\nExecStart=/bin/true\n", "x.service"); // ok
 * ```
 */
export function checkUnitLines(text: string, what: string): void {
  if (text.length * 3 < LONG_LINE_MAX) return; // no line can be that long (UTF-8: at most 3 bytes per UTF-16 unit)
  const enc = new TextEncoder();
  let start = 0;
  let n = 0;
  while (start <= text.length) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    n++;
    // a quick bound first: UTF-8 takes at most 3 bytes per UTF-16 unit
    if ((end - start) * 3 >= LONG_LINE_MAX && enc.encode(text.slice(start, end)).length >= LONG_LINE_MAX) {
      const key = /^[A-Za-z0-9]*/.exec(text.slice(start, Math.min(end, start + 64)))![0];
      throw new OcigenError(
        "EGENERATE",
        `${what}: line ${n} (${key}=) would be ${enc.encode(text.slice(start, end)).length} bytes; systemd reads at most ${LONG_LINE_MAX - 1}`,
      );
    }
    start = end + 1;
  }
}
