/**
 * POSIX-shell-like word splitting (no expansion of any kind): whitespace
 * separates words; single quotes keep everything literally; double quotes keep
 * everything but `\"`, `\\`, `\$`, `` \` `` escapes; a backslash outside
 * quotes escapes the next character.
 *
 * @module
 */
import { OcigenError } from "../errors.ts";

/**
 * Splits `s` into words like `sh` would, without expansions.
 *
 * @example
 * ```ts
 * shellSplit(`/bin/echo "hello world" 'a b' c\\ d`); // ["/bin/echo", "hello world", "a b", "c d"]
 * ```
 */
export function shellSplit(s: string): string[] {
  const out: string[] = [];
  let cur = "";
  let inWord = false;
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (c === "'") {
      const j = s.indexOf("'", i + 1);
      if (j < 0) throw new OcigenError("EBUILD", `Cannot split ${JSON.stringify(s)}: unterminated single quote`);
      cur += s.slice(i + 1, j);
      inWord = true;
      i = j + 1;
    } else if (c === '"') {
      i++;
      let closed = false;
      while (i < s.length) {
        const d = s[i];
        if (d === '"') {
          closed = true;
          i++;
          break;
        }
        if (d === "\\" && i + 1 < s.length && '"\\$`\n'.includes(s[i + 1])) {
          if (s[i + 1] !== "\n") cur += s[i + 1];
          i += 2;
          continue;
        }
        cur += d;
        i++;
      }
      if (!closed) throw new OcigenError("EBUILD", `Cannot split ${JSON.stringify(s)}: unterminated double quote`);
      inWord = true;
    } else if (c === "\\") {
      if (i + 1 < s.length) {
        if (s[i + 1] !== "\n") cur += s[i + 1];
        inWord = true;
      }
      i += 2;
    } else if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      if (inWord) out.push(cur);
      cur = "";
      inWord = false;
      i++;
    } else {
      cur += c;
      inWord = true;
      i++;
    }
  }
  if (inWord) out.push(cur);
  return out;
}
