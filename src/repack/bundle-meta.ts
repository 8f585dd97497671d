/**
 * Reading (and, for `repack --refresh-bundle`, rewriting) a bundle's
 * `umoci.json`: which manifest the bundle was unpacked from and how owners
 * were mapped.
 *
 * Format (umoci's, version "2"):
 * `{"umoci_version":"2","from_descriptor_path":{"descriptor_walk":[<descriptor>…]},
 *   "map_options":{"uid_mappings":[{"containerID":0,"hostID":1000,"size":1}],"gid_mappings":[…],"rootless":false}}`
 * The last descriptor of `descriptor_walk` is the image manifest.
 *
 * @module
 */
import fs from "node:fs";
import path from "node:path";
import { OcigenError, wrapIo } from "../errors.ts";
import type { Descriptor } from "../oci/types.ts";

/** One id mapping range (runtime-spec LinuxIDMapping). */
export interface IdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

/** The parsed `umoci.json`. */
export interface BundleMeta {
  umoci_version?: string;
  from_descriptor_path: { descriptor_walk: Descriptor[] };
  map_options?: { uid_mappings?: IdMapping[] | null; gid_mappings?: IdMapping[] | null; rootless?: boolean };
  [k: string]: unknown;
}

/**
 * Reads `BUNDLE/umoci.json`.
 *
 * @example
 * ```ts
 * const meta = readBundleMeta("/tmp/bundle");
 * bundleSource(meta).digest; // the manifest it was unpacked from
 * ```
 */
export function readBundleMeta(bundle: string): BundleMeta {
  const file = path.join(bundle, "umoci.json");
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      throw new OcigenError("EREPACK", `Cannot repack ${bundle}: no umoci.json (not an unpacked bundle)`);
    }
    throw wrapIo(err, "read", file);
  }
  let meta: BundleMeta;
  try {
    meta = JSON.parse(text);
  } catch {
    throw new OcigenError("EJSON", `${file}: not valid JSON`);
  }
  const fdp = meta?.from_descriptor_path as { descriptor_walk?: Descriptor[]; walk?: Descriptor[] } | undefined;
  const walk = fdp?.descriptor_walk ?? fdp?.walk;
  if (!Array.isArray(walk) || walk.length === 0 || typeof walk[walk.length - 1]?.digest !== "string") {
    throw new OcigenError("EJSON", `${file}: from_descriptor_path.descriptor_walk names no manifest`);
  }
  meta.from_descriptor_path = { descriptor_walk: walk };
  return meta;
}

/**
 * The manifest descriptor a bundle was unpacked from.
 *
 * @example
 * ```ts
 * bundleSource(readBundleMeta(b)).digest;
 * ```
 */
export function bundleSource(meta: BundleMeta): Descriptor {
  const w = meta.from_descriptor_path.descriptor_walk;
  return w[w.length - 1];
}

/**
 * Writes `BUNDLE/umoci.json` (atomically) pointing at `manifest`, keeping the map options.
 *
 * @example
 * ```ts
 * writeBundleMeta("/tmp/bundle", { ...meta, from_descriptor_path: { descriptor_walk: [desc] } });
 * ```
 */
export function writeBundleMeta(bundle: string, meta: BundleMeta): void {
  const file = path.join(bundle, "umoci.json");
  const tmp = `${file}.tmp-${Date.now()}`;
  try {
    fs.writeFileSync(tmp, JSON.stringify({ umoci_version: meta.umoci_version ?? "2", ...meta }), { mode: 0o644 });
    fs.renameSync(tmp, file);
  } catch (err) {
    try {
      fs.unlinkSync(tmp);
    } catch { /* ignore */ }
    throw wrapIo(err, "write", file);
  }
}

/**
 * Builds the host -> image id function of a mapping list (identity when empty).
 *
 * @example
 * ```ts
 * const f = reverseIdMap([{ containerID: 0, hostID: 1000, size: 1 }]);
 * f(1000); // 0
 * ```
 */
export function reverseIdMap(maps: IdMapping[] | null | undefined): (id: number) => number {
  if (!maps || maps.length === 0) return (n) => n;
  return (h) => {
    for (const m of maps) if (h >= m.hostID && h < m.hostID + m.size) return m.containerID + (h - m.hostID);
    return h;
  };
}
