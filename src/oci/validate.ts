/**
 * Structural validation of the OCI JSON documents ocigen reads: the layout
 * header (`oci-layout`), image indexes (`index.json` and nested indexes),
 * image manifests and image configs. Checks what ocigen relies on and what
 * the image-spec requires; unknown fields and unknown media types are
 * tolerated where the spec says so. Errors are one line naming `where` and
 * the field at fault ({@linkcode fieldOf}): `/l/index.json: manifests[0].digest: ...`.
 *
 * @module
 */
import { OcigenError, shortDigest } from "../errors.ts";
import { digestProblem, fieldOf, isValidMediaType, validateDescriptor } from "./digest.ts";
import { INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES } from "./media-type.ts";
import type { ImageConfig, ImageIndex, ImageManifest } from "./types.ts";

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function bad(where: string, what: string): never {
  throw new OcigenError("EJSON", `${where}: ${what}`);
}

// `where` of the helpers below: the name of the field's parent and its key;
// the field's name (./digest.ts fieldOf) is made only for an error.

function strMap(v: unknown, where: () => string, key: string): void {
  if (v === undefined) return;
  if (!isObject(v)) bad(fieldOf(where(), key), "must be an object of strings");
  for (const [k, s] of Object.entries(v)) if (typeof s !== "string") bad(fieldOf(fieldOf(where(), key), k), "must be a string");
}

function strArray(v: unknown, where: () => string, key: string, nullable = false): void {
  if (v === undefined || (nullable && v === null)) return;
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) bad(fieldOf(where(), key), "must be an array of strings");
}

function schemaVersion2(o: Record<string, unknown>, where: string): void {
  if (o.schemaVersion !== 2) {
    bad(fieldOf(where, "schemaVersion"), o.schemaVersion === undefined ? "missing (must be 2)" : `must be 2, not ${JSON.stringify(o.schemaVersion)}`);
  }
}

/**
 * Parses JSON text, throwing EJSON naming `where` on broken JSON.
 *
 * @example
 * ```ts
 * parseJSON('{"a":1}', "/l/index.json"); // { a: 1 }
 * ```
 */
export function parseJSON(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const why = (e as Error).message.split("\n")[0];
    throw new OcigenError("EJSON", `${where}: broken JSON: ${why}`);
  }
}

/**
 * Validates the `oci-layout` header document.
 *
 * @example
 * ```ts
 * validateLayoutHeader({ imageLayoutVersion: "1.0.0" }, "/l/oci-layout");
 * ```
 */
export function validateLayoutHeader(v: unknown, where: string): asserts v is { imageLayoutVersion: string } {
  if (!isObject(v) || typeof v.imageLayoutVersion !== "string") {
    throw new OcigenError("ENOLAYOUT", `${where}: not an OCI layout header (no imageLayoutVersion)`);
  }
  if (!/^1\.\d+\.\d+$/.test(v.imageLayoutVersion)) {
    throw new OcigenError("ENOLAYOUT", `${where}: unsupported imageLayoutVersion ${JSON.stringify(v.imageLayoutVersion)}`);
  }
}

/**
 * Validates an image index (also used for `index.json`).
 *
 * @example
 * ```ts
 * validateIndex(JSON.parse(text), "/l/index.json");
 * ```
 */
export function validateIndex(v: unknown, where: string): asserts v is ImageIndex {
  if (!isObject(v)) bad(where, "image index must be a JSON object");
  schemaVersion2(v, where);
  if (v.mediaType !== undefined && !INDEX_MEDIA_TYPES.includes(v.mediaType as string)) {
    bad(fieldOf(where, "mediaType"), `${JSON.stringify(v.mediaType)} is not an image index media type`);
  }
  // Go tools write a nil slice as null: `umoci init` and `umoci rm` of the last tag leave `"manifests":null`
  if (v.manifests === null) v.manifests = [];
  if (!Array.isArray(v.manifests)) bad(fieldOf(where, "manifests"), "must be an array");
  v.manifests.forEach((d, i) => validateDescriptor(d, () => fieldOf(fieldOf(where, "manifests"), i)));
  if (v.subject !== undefined) validateDescriptor(v.subject, () => fieldOf(where, "subject"));
  strMap(v.annotations, () => where, "annotations");
}

/**
 * Validates an image manifest.
 *
 * @example
 * ```ts
 * validateManifest(JSON.parse(text), "manifest sha256:ab..");
 * ```
 */
export function validateManifest(v: unknown, where: string): asserts v is ImageManifest {
  if (!isObject(v)) bad(where, "image manifest must be a JSON object");
  schemaVersion2(v, where);
  if (v.mediaType !== undefined && !MANIFEST_MEDIA_TYPES.includes(v.mediaType as string)) {
    bad(fieldOf(where, "mediaType"), `${JSON.stringify(v.mediaType)} is not an image manifest media type`);
  }
  validateDescriptor(v.config, () => fieldOf(where, "config"));
  if (!Array.isArray(v.layers)) bad(fieldOf(where, "layers"), "must be an array");
  v.layers.forEach((d, i) => validateDescriptor(d, () => fieldOf(fieldOf(where, "layers"), i)));
  if (v.subject !== undefined) validateDescriptor(v.subject, () => fieldOf(where, "subject"));
  if (v.artifactType !== undefined && !isValidMediaType(v.artifactType)) bad(fieldOf(where, "artifactType"), "not a media type");
  strMap(v.annotations, () => where, "annotations");
}

/**
 * Validates an image config (the parts the spec requires and ocigen uses).
 *
 * @example
 * ```ts
 * validateConfig(JSON.parse(text), "config sha256:ab..");
 * ```
 */
export function validateConfig(v: unknown, where: string): asserts v is ImageConfig {
  if (!isObject(v)) bad(where, "image config must be a JSON object");
  if (typeof v.architecture !== "string") bad(fieldOf(where, "architecture"), "must be a string");
  if (typeof v.os !== "string") bad(fieldOf(where, "os"), "must be a string");
  for (const k of ["created", "author", "os.version", "variant"]) {
    if (v[k] !== undefined && typeof v[k] !== "string") bad(fieldOf(where, k), "must be a string");
  }
  const rootfs = () => fieldOf(where, "rootfs");
  if (!isObject(v.rootfs)) bad(rootfs(), "must be an object");
  if (v.rootfs.type !== "layers") bad(fieldOf(rootfs(), "type"), `must be "layers"`);
  const diffIds = () => fieldOf(rootfs(), "diff_ids");
  if (!Array.isArray(v.rootfs.diff_ids)) bad(diffIds(), "must be an array");
  v.rootfs.diff_ids.forEach((d, i) => {
    const p = digestProblem(d);
    if (p) throw new OcigenError("EDIGEST", `${fieldOf(diffIds(), i)}: ${JSON.stringify(d)}: ${p}`);
  });
  if (v.config !== undefined && v.config !== null) {
    const c = v.config;
    const w = () => fieldOf(where, "config");
    if (!isObject(c)) bad(w(), "must be an object");
    for (const k of ["User", "WorkingDir", "StopSignal"]) {
      if (c[k] !== undefined && typeof c[k] !== "string") bad(fieldOf(w(), k), "must be a string");
    }
    strArray(c.Env, w, "Env", true);
    strArray(c.Entrypoint, w, "Entrypoint", true);
    strArray(c.Cmd, w, "Cmd", true);
    // Docker-built images carry `"Labels": null` (kept as is by skopeo copy docker://... oci:...): no labels
    if (c.Labels === null) delete c.Labels;
    strMap(c.Labels, w, "Labels");
    for (const k of ["ExposedPorts", "Volumes"]) {
      if (c[k] !== undefined && c[k] !== null && !isObject(c[k])) bad(fieldOf(w(), k), "must be an object");
    }
  }
  if (v.history !== undefined && v.history !== null) {
    const history = () => fieldOf(where, "history");
    if (!Array.isArray(v.history)) bad(history(), "must be an array");
    v.history.forEach((h, i) => {
      const hi = () => fieldOf(history(), i);
      if (!isObject(h)) bad(hi(), "must be an object");
      for (const k of ["created", "created_by", "author", "comment"]) {
        if (h[k] !== undefined && typeof h[k] !== "string") bad(fieldOf(hi(), k), "must be a string");
      }
      if (h.empty_layer !== undefined && typeof h.empty_layer !== "boolean") {
        bad(fieldOf(hi(), "empty_layer"), "must be a boolean");
      }
    });
  }
}

/**
 * Checks that an image's config has one `rootfs.diff_ids` entry per layer of
 * its manifest (what unpacking needs), throwing EUNPACK naming the image as
 * `name` (`LAYOUT:TAG`) and its manifest digest otherwise.
 *
 * @example
 * ```ts
 * const image = await layout.resolve("latest");
 * checkLayerCount(image, "/l:latest"); // Cannot unpack image /l:latest (manifest sha256:ab..): ...
 * ```
 */
export function checkLayerCount(
  image: { manifest: ImageManifest; config: ImageConfig; manifestDescriptor?: { digest: string } },
  name: string,
): void {
  const layers = image.manifest.layers.length;
  const diffIds = image.config.rootfs?.diff_ids?.length ?? 0;
  if (layers === diffIds) return;
  const which = image.manifestDescriptor ? ` (manifest ${shortDigest(image.manifestDescriptor.digest)})` : "";
  throw new OcigenError(
    "EUNPACK",
    `Cannot unpack image ${name}${which}: the manifest has ${layers} layer${layers === 1 ? "" : "s"} but the config has ${diffIds} diff_id${diffIds === 1 ? "" : "s"}`,
  );
}
