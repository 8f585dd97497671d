/**
 * Tag names: the image-spec `org.opencontainers.image.ref.name` grammar.
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
