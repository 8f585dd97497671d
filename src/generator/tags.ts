/**
 * Which tags of a layout become units: the per-image settings' `IncludeTag=`
 * and `ExcludeTag=` globs (SPEC 4.4).
 *
 * A tag becomes a unit when it matches at least one include glob (or there
 * is none) and no exclude glob. The default exclude list holds
 * `DATED_TAG_GLOB` (config.ts), the dated tags `ocigen build` adds; an empty
 * `ExcludeTag=` clears it.
 *
 * Globs are shell patterns matched against the whole tag: `*` any run of
 * characters, `?` one character, `[abc]`, `[a-z]` and `[!a-z]` (or `[^a-z]`)
 * one character of (not of) a set; `\` quotes the next character. Tags use
 * only `[A-Za-z0-9_.-]`, so there is no path or case folding.
 *
 * @module
 */
import { OcigenError } from "../errors.ts";

/**
 * Compiles a glob to an anchored regular expression. Throws ECONFIG for an
 * unterminated `[` set. Each glob is compiled once per process (the
 * generator matches the same few globs against every layout's tags); the
 * expression has no `g` or `y` flag, so sharing it keeps no state.
 *
 * @example
 * ```ts
 * globToRegExp("v1.*").test("v1.2"); // true
 * globToRegExp("*-[0-9][0-9][0-9][0-9]-*").test("app-2024-01"); // true
 * ```
 */
export function globToRegExp(glob: string): RegExp {
  let re = compiled.get(glob);
  if (!re) {
    re = compileGlob(glob);
    if (compiled.size >= 256) compiled.clear();
    compiled.set(glob, re);
  }
  return re;
}

const compiled = new Map<string, RegExp>();

function compileGlob(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*") re += ".*";
    else if (c === "?") re += ".";
    else if (c === "\\" && i + 1 < glob.length) re += escapeRe(glob[++i]);
    else if (c === "[") {
      const end = glob.indexOf("]", i + 2);
      if (end < 0) throw new OcigenError("ECONFIG", `glob ${JSON.stringify(glob)}: unterminated [`);
      let set = glob.slice(i + 1, end);
      let neg = false;
      if (set.startsWith("!") || set.startsWith("^")) {
        neg = true;
        set = set.slice(1);
      }
      re += `[${neg ? "^" : ""}${set.replace(/[\\\]^]/g, (x) => "\\" + x)}]`;
      i = end;
    } else re += escapeRe(c);
  }
  return new RegExp(`^(?:${re})$`, "s");
}

function escapeRe(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/-]/g, (x) => "\\" + x);
}

/**
 * True if `tag` matches shell glob `glob`.
 *
 * @example
 * ```ts
 * matchGlob("stable", "st*"); // true
 * ```
 */
export function matchGlob(tag: string, glob: string): boolean {
  return globToRegExp(glob).test(tag);
}

/** The outcome of {@linkcode selectTags}. */
export interface TagSelection {
  /** Tags that become units, in input order. */
  selected: string[];
  /** Tags left out, each with the reason (`excluded by GLOB`, `not included`). */
  skipped: { tag: string; why: string }[];
}

/**
 * Splits `tags` into those that become units and those the include/exclude
 * globs leave out (see the module docs). Pure.
 *
 * @example
 * ```ts
 * selectTags(["latest", "latest-2024-05-01_1"], { includeTags: [], excludeTags: [DATED_TAG_GLOB] }).selected;
 * // ["latest"]
 * ```
 */
export function selectTags(
  tags: readonly string[],
  globs: { includeTags: readonly string[]; excludeTags: readonly string[] },
): TagSelection {
  const inc = globs.includeTags.map(globToRegExp);
  const exc = globs.excludeTags.map((g) => [g, globToRegExp(g)] as const);
  const out: TagSelection = { selected: [], skipped: [] };
  for (const tag of tags) {
    if (inc.length > 0 && !inc.some((r) => r.test(tag))) {
      out.skipped.push({ tag, why: `matches no IncludeTag= (${globs.includeTags.join(" ")})` });
      continue;
    }
    const hit = exc.find(([, r]) => r.test(tag));
    if (hit) {
      out.skipped.push({ tag, why: `excluded by ExcludeTag=${hit[0]}` });
      continue;
    }
    out.selected.push(tag);
  }
  return out;
}
