/**
 * Tag names: the image-spec `org.opencontainers.image.ref.name` grammar; and
 * umoci's `LAYOUT[:TAG]` image references.
 *
 * ```
 * ref       ::= component ("/" component)*
 * component ::= alphanum (separator alphanum)*
 * alphanum  ::= [A-Za-z0-9]+
 * separator ::= [-._:@+] | "--"
 * ```
 *
 * @module
 */
import { OcigenError } from "../errors.ts";

const COMPONENT = "[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*";
const REF_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);

/**
 * True if `tag` matches the ref.name grammar.
 *
 * @example
 * ```ts
 * isValidTag("v1.0"); // true
 * isValidTag("-bad"); // false
 * ```
 */
export function isValidTag(tag: string): boolean {
  return typeof tag === "string" && tag.length > 0 && tag.length <= 4096 && REF_RE.test(tag);
}

/**
 * Throws EBADTAG unless `tag` matches the ref.name grammar.
 *
 * @example
 * ```ts
 * validateTag("latest");
 * ```
 */
export function validateTag(tag: string): void {
  if (!isValidTag(tag)) {
    throw new OcigenError("EBADTAG", `Invalid tag ${JSON.stringify(tag)}: does not match the OCI ref.name grammar`);
  }
}

/**
 * Splits umoci's `LAYOUT[:TAG]` image reference (TAG defaults to `latest`);
 * the first `:` separates, as in umoci, and an empty TAG (`LAYOUT:`) is
 * refused as umoci refuses it.
 *
 * @example
 * ```ts
 * parseImageRef("/l:v1"); // { dir: "/l", tag: "v1" }
 * parseImageRef("/l"); // { dir: "/l", tag: "latest" }
 * ```
 */
export function parseImageRef(ref: string): { dir: string; tag: string } {
  const i = ref.indexOf(":");
  if (i < 0) return { dir: ref, tag: "latest" };
  const dir = ref.slice(0, i);
  const tag = ref.slice(i + 1);
  if (dir === "") throw new OcigenError("EINVALID", `Invalid image reference ${JSON.stringify(ref)}: empty layout path`);
  if (tag === "") throw new OcigenError("EINVALID", `Invalid image reference ${JSON.stringify(ref)}: empty tag (leave out the ':' for latest)`);
  return { dir, tag };
}
