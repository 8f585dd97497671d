/**
 * Unit names for (layout name, tag) pairs (SPEC 4.2).
 *
 * The layout name (its path relative to `imagelayoutdir`) is written in
 * reverse-domain notation, as the old oci-systemd-generator did: the
 * dot-separated labels of the first path component are reversed (a
 * `:port` stays attached to the host), the other components follow, then
 * `.ref.` and the tag:
 *
 * | layout | tag | unit |
 * |---|---|---|
 * | `myorg.com/myapp` | `stable` | `com.myorg.myapp.ref.stable.service` |
 * | `example.com/test/myapp` | `v1.0.0` | `com.example.test.myapp.ref.v1.0.0.service` |
 * | `busybox` | `latest` | `busybox.ref.latest.service` |
 * | `registry.example.com:5000/team/app` | `1.2` | `com.example.registry:5000.team.app.ref.1.2.service` |
 * | `app` | `tag+build` | `app.ref.tag\x2bbuild.service` |
 *
 * Characters systemd does not allow in unit names (anything but ASCII
 * letters, digits, `:`, `_`, `.`, `-`), plus `\` (the escape character) and
 * `@` (it would make the unit a template instance), are written as
 * `systemd-escape` writes them: `\xNN` per UTF-8 byte. Unlike
 * `systemd-escape` we keep `-` (valid, and the old generator kept it) and
 * escape `/` inside a part as `\x2f` instead of turning it into `-`, so
 * different inputs give different names. A `.` that would start or end a
 * part or follow another `.` is escaped too, so a name never holds `..`.
 * Names are refused when the unit or its companion extract unit
 * (`ocigen-extract@<base>.service`, see {@linkcode extractUnitName}) would
 * be longer than 255 characters (systemd's limit).
 *
 * @module
 */
import { OcigenError } from "../errors.ts";

/** systemd's maximum unit name length (UNIT_NAME_MAX - 1). */
export const UNIT_NAME_MAX = 255;

const KEEP = /[A-Za-z0-9:_-]/;
/** Parts {@linkcode escapeNamePart} keeps unchanged: KEEP characters, dots only between them, one at a time. */
const PLAIN_PART = /^[A-Za-z0-9:_-]+(?:\.[A-Za-z0-9:_-]+)*$/;

function hexBytes(ch: string): string {
  let out = "";
  for (const b of new TextEncoder().encode(ch)) out += "\\x" + b.toString(16).padStart(2, "0");
  return out;
}

/**
 * Escapes one dot-free-at-the-edges part of a unit name (see the module
 * documentation).
 *
 * @example
 * ```ts
 * escapeNamePart("my app");  // "my\\x20app"
 * escapeNamePart("v1.0.0");  // "v1.0.0"
 * escapeNamePart(".hidden"); // "\\x2ehidden"
 * ```
 */
export function escapeNamePart(s: string): string {
  // the common case: nothing to escape (the rules below keep such a part as it is)
  if (PLAIN_PART.test(s)) return s;
  let out = "";
  const chars = [...s];
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i];
    if (ch === ".") {
      const edge = i === 0 || i === chars.length - 1 || out.endsWith(".");
      out += edge ? "\\x2e" : ".";
    } else if (KEEP.test(ch)) {
      out += ch;
    } else {
      out += hexBytes(ch);
    }
  }
  return out;
}

/**
 * Checks a layout name (a relative path below `imagelayoutdir`) and returns
 * its components. Throws EGENERATE for an empty, absolute or non-normalized
 * name, or one holding control characters.
 *
 * @example
 * ```ts
 * layoutNameComponents("myorg.com/myapp"); // ["myorg.com", "myapp"]
 * ```
 */
export function layoutNameComponents(name: string): string[] {
  const comps = name.split("/");
  if (name === "" || comps.some((c) => c === "" || c === "." || c === "..")) {
    throw new OcigenError("EGENERATE", `Bad layout name ${JSON.stringify(name)}: not a normalized relative path`);
  }
  if (/[\x00-\x1f\x7f]/.test(name)) {
    throw new OcigenError("EGENERATE", `Bad layout name ${JSON.stringify(name)}: contains a control character`);
  }
  return comps;
}

/** The reverse-domain form of the first path component. */
function reverseFirst(first: string): string {
  let host = first;
  let port = "";
  const m = /^(.+):([0-9]+)$/.exec(first);
  if (m) {
    host = m[1];
    port = ":" + m[2];
  }
  const labels = host.split(".");
  if (labels.length < 2 || labels.some((l) => l === "")) return escapeNamePart(first);
  return labels.reverse().map(escapeNamePart).join(".") + port;
}

/**
 * The unit name without `.service` for layout `name` and `tag`; also the
 * name of the unit's directory under `extractsdir`.
 *
 * @example
 * ```ts
 * unitBaseName("myorg.com/myapp", "stable"); // "com.myorg.myapp.ref.stable"
 * ```
 */
export function unitBaseName(name: string, tag: string): string {
  const comps = layoutNameComponents(name);
  if (tag === "") throw new OcigenError("EGENERATE", `Bad tag "" in layout ${name}`);
  const parts = [reverseFirst(comps[0]), ...comps.slice(1).map(escapeNamePart)];
  const base = parts.join(".") + ".ref." + escapeNamePart(tag);
  const longest = extractUnitName(base).length;
  if (longest > UNIT_NAME_MAX) {
    throw new OcigenError(
      "EGENERATE",
      `Bad name: unit name for ${name}:${tag} would be ${longest} characters (with ${EXTRACT_UNIT_PREFIX}), more than systemd's ${UNIT_NAME_MAX}`,
    );
  }
  return base;
}

/** Prefix of the companion units that extract a unit's rootfs. */
export const EXTRACT_UNIT_PREFIX = "ocigen-extract@";

/**
 * The companion unit that extracts the rootfs of unit `base` before it
 * starts: an instance name, so it can never equal a service unit name (those
 * never hold an unescaped `@`).
 *
 * @example
 * ```ts
 * extractUnitName("busybox.ref.latest"); // "ocigen-extract@busybox.ref.latest.service"
 * ```
 */
export function extractUnitName(base: string): string {
  return `${EXTRACT_UNIT_PREFIX}${base}.service`;
}

/**
 * The service unit name for layout `name` and `tag` (SPEC 4.2).
 *
 * @example
 * ```ts
 * unitName("busybox", "latest"); // "busybox.ref.latest.service"
 * unitName("example.com/test/myapp", "v1.0.0"); // "com.example.test.myapp.ref.v1.0.0.service"
 * ```
 */
export function unitName(name: string, tag: string): string {
  return unitBaseName(name, tag) + ".service";
}
