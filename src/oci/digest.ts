/**
 * OCI digest grammar and descriptor validation (image-spec `descriptor.md`).
 *
 * ```
 * digest              ::= algorithm ":" encoded
 * algorithm           ::= algorithm-component (algorithm-separator algorithm-component)*
 * algorithm-component ::= [a-z0-9]+
 * algorithm-separator ::= [+._-]
 * encoded             ::= [a-zA-Z0-9=_-]+
 * ```
 * Registered algorithms are checked strictly: `sha256` needs 64 lowercase
 * hex digits, `sha512` 128. Other grammar-valid algorithms are tolerated in
 * documents but cannot be verified (reading such a blob fails).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { OcigenError, shortDigest } from "../errors.ts";
import { digestBytes, isSupportedAlgorithm } from "../digest/index.ts";
import type { Descriptor, Platform } from "./types.ts";

const DIGEST_RE = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const HEX64 = /^[a-f0-9]{64}$/;
const HEX128 = /^[a-f0-9]{128}$/;
/** RFC 6838 media type, as in the image-spec schema. */
const MEDIA_TYPE_RE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** A digest split into its parts. */
export interface ParsedDigest {
  algorithm: string;
  encoded: string;
}

/**
 * Explains why `digest` is not a valid OCI digest, or returns null if it is.
 *
 * @example
 * ```ts
 * digestProblem("sha256:abc"); // "sha256 digest must have 64 lowercase hex digits"
 * digestProblem("sha256:" + "0".repeat(64)); // null
 * ```
 */
export function digestProblem(digest: unknown): string | null {
  if (typeof digest !== "string") return "digest must be a string";
  if (!DIGEST_RE.test(digest)) return "digest does not match the grammar algorithm:encoded";
  const i = digest.indexOf(":");
  const alg = digest.slice(0, i);
  const enc = digest.slice(i + 1);
  if (alg === "sha256" && !HEX64.test(enc)) return "sha256 digest must have 64 lowercase hex digits";
  if (alg === "sha512" && !HEX128.test(enc)) return "sha512 digest must have 128 lowercase hex digits";
  return null;
}

/**
 * Parses and validates a digest, throwing EDIGEST naming `where` on failure.
 *
 * @example
 * ```ts
 * parseDigest("sha256:" + "a".repeat(64)); // { algorithm: "sha256", encoded: "aaa..." }
 * ```
 */
export function parseDigest(digest: string, where = "digest"): ParsedDigest {
  const p = digestProblem(digest);
  if (p) throw new OcigenError("EDIGEST", `${where}: ${JSON.stringify(digest)}: ${p}`);
  const i = digest.indexOf(":");
  return { algorithm: digest.slice(0, i), encoded: digest.slice(i + 1) };
}

/**
 * True if `digest` is a valid OCI digest.
 *
 * @example
 * ```ts
 * isValidDigest("sha512:" + "0".repeat(128)); // true
 * ```
 */
export function isValidDigest(digest: unknown): digest is string {
  return digestProblem(digest) === null;
}

/**
 * True if `mt` is a syntactically valid media type (RFC 6838).
 *
 * @example
 * ```ts
 * isValidMediaType("application/vnd.oci.image.manifest.v1+json"); // true
 * ```
 */
export function isValidMediaType(mt: unknown): mt is string {
  return typeof mt === "string" && MEDIA_TYPE_RE.test(mt);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A field path as in `config.Env[0]` or `manifests[0].platform`. */
const FIELD_PATH_RE = /^[A-Za-z_$][\w$.-]*(?:\[\d+\])*(?:\.[A-Za-z_$][\w$.-]*(?:\[\d+\])*)*$/;

/**
 * Names field `key` of the thing at `where`, for one-line messages of the
 * form `DOCUMENT: FIELD.PATH: problem`. `where` is a document name
 * (`/l/index.json`, `/l: manifest sha256:ab..`) or a document name and a field
 * path (`/l/index.json: manifests[0]`); the field path is extended with `.key`
 * (or `[i]` when `key` is an index), a bare document name gets `: key`.
 *
 * @example
 * ```ts
 * fieldOf("/l/index.json", "manifests[0]"); // "/l/index.json: manifests[0]"
 * fieldOf("/l/index.json: manifests[0]", "digest"); // "/l/index.json: manifests[0].digest"
 * fieldOf("/l: config sha256:ab..", "config.Cmd"); // "/l: config sha256:ab..: config.Cmd"
 * fieldOf("m: layers", 2); // "m: layers[2]"
 * ```
 */
export function fieldOf(where: string, key: string | number): string {
  const i = where.lastIndexOf(": ");
  const inField = i >= 0 && FIELD_PATH_RE.test(where.slice(i + 2));
  if (typeof key === "number") return inField ? `${where}[${key}]` : `${where}: [${key}]`;
  return inField ? `${where}.${key}` : `${where}: ${key}`;
}

function checkStringMap(v: unknown, where: string): void {
  if (v === undefined) return;
  if (!isObject(v)) throw new OcigenError("EJSON", `${where}: must be an object of strings`);
  for (const [k, s] of Object.entries(v)) {
    if (typeof s !== "string") throw new OcigenError("EJSON", `${fieldOf(where, k)}: must be a string`);
  }
}

function checkPlatform(p: unknown, where: string): asserts p is Platform {
  if (!isObject(p)) throw new OcigenError("EJSON", `${where}: must be an object`);
  if (typeof p.architecture !== "string") throw new OcigenError("EJSON", `${fieldOf(where, "architecture")}: must be a string`);
  if (typeof p.os !== "string") throw new OcigenError("EJSON", `${fieldOf(where, "os")}: must be a string`);
  for (const k of ["os.version", "variant"]) {
    if (p[k] !== undefined && typeof p[k] !== "string") throw new OcigenError("EJSON", `${fieldOf(where, k)}: must be a string`);
  }
  for (const k of ["os.features", "features"]) {
    const a = p[k];
    if (a !== undefined && !(Array.isArray(a) && a.every((x) => typeof x === "string"))) {
      throw new OcigenError("EJSON", `${fieldOf(where, k)}: must be an array of strings`);
    }
  }
}

/**
 * Decodes and verifies a descriptor's embedded `data` (base64) against its
 * size and digest. Returns undefined when the descriptor has no `data`.
 *
 * @example
 * ```ts
 * const bytes = embeddedData({ mediaType: "application/json", size: 2, digest: "sha256:44136fa3...", data: "e30=" });
 * ```
 */
export function embeddedData(desc: Descriptor, where = "descriptor"): Uint8Array | undefined {
  if (desc.data === undefined) return undefined;
  const at = fieldOf(where, "data");
  if (typeof desc.data !== "string" || !BASE64_RE.test(desc.data)) {
    throw new OcigenError("EJSON", `${at}: not valid base64`);
  }
  const buf = Buffer.from(desc.data, "base64");
  if (buf.toString("base64") !== desc.data) throw new OcigenError("EJSON", `${at}: not canonical base64`);
  const bytes = new Uint8Array(buf);
  if (bytes.length !== desc.size) {
    throw new OcigenError("ESIZE", `${at}: embedded data has ${bytes.length} bytes, descriptor size says ${desc.size}`);
  }
  const alg = desc.digest.slice(0, desc.digest.indexOf(":"));
  if (isSupportedAlgorithm(alg)) {
    const got = digestBytes(bytes, alg);
    if (got !== desc.digest) {
      throw new OcigenError(
        "EDIGEST",
        `${at}: embedded data hashes to ${shortDigest(got)}, descriptor says ${shortDigest(desc.digest)}`,
      );
    }
  }
  return bytes;
}

/**
 * Validates a descriptor's shape: media type, digest grammar (sha256 64 hex,
 * sha512 128 hex), size a non-negative integer, urls, annotations, platform,
 * and embedded `data` checked against size and digest. `where` names the
 * culprit in the one-line error (e.g. `/l/index.json: manifests[0]`); it may
 * be a function, called only when there is an error to report (readers
 * validate thousands of descriptors at boot and report almost none).
 *
 * @example
 * ```ts
 * validateDescriptor(JSON.parse(text).config, "manifest sha256:ab..: config");
 * ```
 */
export function validateDescriptor(d: unknown, where: string | (() => string)): asserts d is Descriptor {
  const at = typeof where === "string" ? () => where : where;
  if (!isObject(d)) throw new OcigenError("EJSON", `${at()}: descriptor must be an object`);
  if (!isValidMediaType(d.mediaType)) {
    const why = d.mediaType === undefined ? "missing" : `${JSON.stringify(d.mediaType)} is not a valid media type`;
    throw new OcigenError("EJSON", `${fieldOf(at(), "mediaType")}: ${why}`);
  }
  const p = digestProblem(d.digest);
  if (p) throw new OcigenError("EDIGEST", `${fieldOf(at(), "digest")}: ${d.digest === undefined ? "missing" : `${JSON.stringify(d.digest)}: ${p}`}`);
  if (typeof d.size !== "number" || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw new OcigenError("ESIZE", `${fieldOf(at(), "size")}: ${d.size === undefined ? "missing" : `${JSON.stringify(d.size)} is not a non-negative integer`}`);
  }
  if (d.urls !== undefined && !(Array.isArray(d.urls) && d.urls.every((u) => typeof u === "string"))) {
    throw new OcigenError("EJSON", `${fieldOf(at(), "urls")}: must be an array of strings`);
  }
  if (d.annotations !== undefined) checkStringMap(d.annotations, fieldOf(at(), "annotations"));
  if (d.platform !== undefined) checkPlatform(d.platform, fieldOf(at(), "platform"));
  if (d.artifactType !== undefined && !isValidMediaType(d.artifactType)) {
    throw new OcigenError("EJSON", `${fieldOf(at(), "artifactType")}: not a valid media type`);
  }
  if (d.data !== undefined) embeddedData(d as unknown as Descriptor, at());
}
