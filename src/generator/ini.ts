/**
 * The line reader shared by the generator's config (`/etc/oci-generator.conf`)
 * and the per-image settings files (`/etc/ocigen/*.image`): systemd-style INI.
 *
 * Rules:
 * - a line whose first non-blank character is `#` or `;` is a comment;
 * - `[name]` or `[name argument]` (the argument may be double-quoted) starts a
 *   section;
 * - `key = value`: blanks around the key and the value are dropped;
 * - inline comments: a `#` or `;` that follows a blank (space or tab) and is
 *   not inside quotes ends the value, so `enable = no   # why` reads `no`.
 *   A value that must hold ` #` quotes it: `"a # b"`, or `'a # b'` where the
 *   single quote starts a word; a `#` not preceded by a blank (`a#b`) or
 *   after a backslash (`\#`, the backslash stays in the value) is kept.
 *   Quotes are only recognised here for finding the comment; each key decides
 *   what its quotes mean (see {@linkcode unquote});
 * - no line continuation (a trailing backslash is an error), no NUL or other
 *   control character but tab.
 *
 * Each entry keeps its 1-based line number so every error can name
 * `FILE:LINE`.
 *
 * @module
 */

/** The boolean words every INI key accepts (keys are lower-case; callers lower-case the value). */
export const BOOL: Record<string, boolean> = { yes: true, true: true, on: true, "1": true, no: false, false: false, off: false, "0": false };

/** One meaningful line of an INI file. */
export type IniLine =
  | { kind: "section"; line: number; name: string; arg: string | null; raw: string }
  | { kind: "entry"; line: number; key: string; value: string; raw: string };

/**
 * A problem at one line; the caller turns it into its own error with the file name.
 *
 * @example
 * ```ts
 * try { parseIni("oops\n"); } catch (e) { if (e instanceof IniSyntaxError) console.log(`f:${e.line}: ${e.message}`); }
 * ```
 */
export class IniSyntaxError extends Error {
  constructor(readonly line: number, message: string) {
    super(message);
  }
}

/**
 * Cuts an inline comment (a `#` or `;` after a blank, outside quotes) off
 * `value` and trims it.
 *
 * @example
 * ```ts
 * stripInlineComment("no   # why");     // "no"
 * stripInlineComment('"a # b"  ; c');   // '"a # b"'
 * stripInlineComment("a#b");            // "a#b"
 * ```
 */
export function stripInlineComment(value: string): string {
  const blank = (i: number) => i < 0 || value[i] === " " || value[i] === "\t";
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === "\\") i++;
    else if (c === '"') {
      for (i++; i < value.length && value[i] !== '"'; i++) if (value[i] === "\\") i++;
    } else if (c === "'" && blank(i - 1)) {
      const j = value.indexOf("'", i + 1);
      if (j > 0) i = j;
    } else if ((c === "#" || c === ";") && i > 0 && blank(i - 1)) {
      return value.slice(0, i).trim();
    }
  }
  return value.trim();
}

/**
 * Removes one pair of surrounding double quotes (with `\"` and `\\` inside
 * unescaped), or returns the value as it is when it is not quoted.
 *
 * @example
 * ```ts
 * unquote('"a # b"'); // "a # b"
 * unquote("plain");   // "plain"
 * ```
 */
export function unquote(value: string): string {
  if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
    return value.slice(1, -1).replace(/\\(["\\])/g, "$1");
  }
  return value;
}

/**
 * Splits INI text into sections and entries (see the module docs). Throws
 * {@linkcode IniSyntaxError} for a malformed line.
 *
 * @example
 * ```ts
 * parseIni("[Image]\nVolume = /data  # kept\n");
 * // [{ kind: "section", name: "Image", ... }, { kind: "entry", key: "Volume", value: "/data", ... }]
 * ```
 */
export function parseIni(text: string): IniLine[] {
  const out: IniLine[] = [];
  const lines = text.split("\n");
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    const raw = lines[i].endsWith("\r") ? lines[i].slice(0, -1) : lines[i];
    if (/[\x00-\x08\x0a-\x1f\x7f]/.test(raw)) throw new IniSyntaxError(n, "control character in line");
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    if (line.startsWith("[")) {
      const m = /^\[\s*([A-Za-z][A-Za-z0-9_-]*)(?:\s+(?:"([^"]*)"|([^\]"]*?)))?\s*\]$/.exec(stripInlineComment(line));
      if (!m) throw new IniSyntaxError(n, `malformed section header ${JSON.stringify(line)}`);
      out.push({ kind: "section", line: n, name: m[1], arg: m[2] ?? (m[3] ? m[3] : null), raw });
      continue;
    }
    const eq = line.indexOf("=");
    if (eq <= 0) throw new IniSyntaxError(n, `expected key = value, got ${JSON.stringify(line)}`);
    const key = line.slice(0, eq).trim();
    if (!/^[A-Za-z][A-Za-z0-9_.-]*$/.test(key)) throw new IniSyntaxError(n, `bad key ${JSON.stringify(key)}`);
    const value = stripInlineComment(line.slice(eq + 1));
    if (value.endsWith("\\")) throw new IniSyntaxError(n, "a trailing backslash (line continuation) is not supported");
    out.push({ kind: "entry", line: n, key, value, raw });
  }
  return out;
}
