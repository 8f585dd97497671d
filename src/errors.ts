/**
 * Typed errors for ocigen.
 *
 * Every error ocigen raises on purpose is an {@linkcode OcigenError} (or a
 * subclass) with a stable machine-readable `code`. Messages are one line, name
 * the culprit first and say what is wrong:
 * `Cannot unpack layer sha256:ab..: entry etc/x escapes the root`.
 *
 * @module
 */

/** Stable error codes. Add new ones at the end; never rename. */
export type ErrorCode =
  | "EUSAGE" // bad command line (raised by src/cli/ only; engines raise the codes below)
  | "ENOLAYOUT" // not an OCI layout (missing/invalid oci-layout)
  | "EJSON" // broken JSON or JSON that does not match the spec
  | "EDIGEST" // digest mismatch or malformed digest
  | "ESIZE" // size mismatch
  | "ENOBLOB" // blob missing
  | "ENOTAG" // unknown tag
  | "EAMBIGUOUS" // several manifests for one tag, none for this platform
  | "EBADTAG" // tag does not match the ref.name grammar
  | "EMEDIATYPE" // unsupported media type
  | "ELOCK" // could not take the layout lock
  | "ETAR" // malformed tar stream
  | "EDECOMPRESS" // corrupt compressed stream
  | "EESCAPE" // an entry/link/whiteout would reach outside the root
  | "EWHITEOUT" // malformed whiteout
  | "EDIFFID" // diff_id mismatch
  | "EUNPACK" // other unpack failure
  | "EGENERATE" // generator failure for one unit/layout
  | "EBUILD" // build spec / build step failure
  | "EREPACK" // repack failure
  | "EIO" // filesystem failure (wraps the errno error)
  | "EINSTALL" // install-generator / uninstall-generator refused or failed
  | "ECONFIG" // bad generator config or per-image settings file
  | "EPLATFORM" // the image is for another platform
  | "EBADFILE" // a file of a layout is not a regular file inside it (FIFO, device, symlink out of the layout)
  | "EVOLUME" // a volume command refused (unknown unit, service still running)
  | "EUPDATE" // auto-update refused (unknown unit, no pin) or could not run
  | "EINVALID" // a value an engine was given is malformed (date, KEY=VALUE, id map, image reference, compression name)
  | "EEXIST" // a directory that must be new or empty is not (layout init)
  | "ENOTOOL"; // a needed encoder or external tool is missing

/**
 * The base class of every error ocigen raises deliberately.
 *
 * @example
 * ```ts
 * import { OcigenError } from "./errors.ts";
 * try {
 *   throw new OcigenError("ENOTAG", "Cannot resolve tag latest in /l: no such tag");
 * } catch (e) {
 *   if (e instanceof OcigenError && e.code === "ENOTAG") console.error(e.message);
 * }
 * ```
 */
export class OcigenError extends Error {
  /** Stable code, see {@linkcode ErrorCode}. */
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "OcigenError";
    this.code = code;
  }
}

/**
 * Returns a short form of a digest for messages: `sha256:0123456789ab..`.
 *
 * @example
 * ```ts
 * shortDigest("sha256:" + "a".repeat(64)); // "sha256:aaaaaaaaaaaa.."
 * ```
 */
export function shortDigest(digest: string): string {
  const i = digest.indexOf(":");
  if (i < 0 || digest.length - i - 1 <= 12) return digest;
  return digest.slice(0, i + 13) + "..";
}

/**
 * Wraps a filesystem (errno) error so that its message names the path at fault
 * and the operation, keeping the original as `cause`.
 *
 * @example
 * ```ts
 * try { /* fs call *\/ } catch (e) { throw wrapIo(e, "mkdir parent", "etc/x"); }
 * ```
 */
export function wrapIo(err: unknown, op: string, path: string): OcigenError {
  if (err instanceof OcigenError) return err;
  const e = err as NodeJS.ErrnoException;
  const why = e?.code ? `${e.code}${e.message ? ` (${stripErrno(e.message)})` : ""}` : String(err);
  return new OcigenError("EIO", `${path}: ${op}: ${why}`, { cause: err });
}

function stripErrno(msg: string): string {
  // node: "ENOENT: no such file or directory, open '/x'" -> "no such file or directory"
  const m = /^[A-Z]+: ([^,]+)/.exec(msg);
  return m ? m[1] : msg;
}
