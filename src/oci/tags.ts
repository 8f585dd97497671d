/**
 * Tags of a layout: listing them and resolving one to an image. This is the
 * logic behind `Layout.listTags`, `manifestsForTag`, `resolve` and
 * `legacyRefs` (src/oci/layout.ts), written against the few reads it needs.
 *
 * Where tags live:
 * - `index.json` entries carrying the `org.opencontainers.image.ref.name`
 *   annotation; a tagged entry may be a manifest or an index (all its
 *   manifests carry the tag);
 * - tagged entries of untagged nested indexes (searched, as skopeo writes
 *   them); nesting is followed at most `MAX_NESTING` deep and each index
 *   once, so a hostile index cycle ends;
 * - the pre-1.0 `refs/<tag>` files (one descriptor each), read only, used
 *   when `index.json` does not have the tag.
 *
 * Resolving: one candidate manifest is the image; several are narrowed to the
 * wanted platform (the index entry's `platform`, else the config's
 * os/architecture/variant) and must leave exactly one (EAMBIGUOUS otherwise).
 * A tag naming something that is neither manifest nor index is EMEDIATYPE.
 *
 * @module
 */
import * as fs from "node:fs";
import { join } from "node:path";
import { OcigenError, wrapIo } from "../errors.ts";
import { validateDescriptor } from "./digest.ts";
import { MAX_SMALL_FILE } from "./layout-file.ts";
import { isIndexMediaType, isManifestMediaType } from "./media-type.ts";
import { formatPlatform, platformMatches } from "./platform.ts";
import { validateTag } from "./refname.ts";
import { type Descriptor, type ImageConfig, type ImageIndex, type ImageManifest, type Platform, REF_NAME } from "./types.ts";
import { parseJSON } from "./validate.ts";

/** An image resolved from a tag: its manifest and config, both verified. */
export interface ResolvedImage {
  tag: string;
  manifestDescriptor: Descriptor;
  manifest: ImageManifest;
  config: ImageConfig;
  configDescriptor: Descriptor;
}

/**
 * The reads tag resolution needs (a `Layout` is one).
 *
 * @example
 * ```ts
 * const src: TagSource = await Layout.open("/l");
 * ```
 */
export interface TagSource {
  readonly dir: string;
  readIndex(): Promise<ImageIndex>;
  readIndexBlob(desc: Descriptor): Promise<ImageIndex>;
  legacyRefs(): Promise<Map<string, Descriptor>>;
  readManifest(desc: Descriptor): Promise<ImageManifest>;
  readConfig(desc: Descriptor): Promise<ImageConfig>;
}

const MAX_NESTING = 8;

/**
 * Reads the pre-1.0 `refs/` directory of the layout at `dir`: descriptors by
 * tag (empty when absent). `readText(rel, max)` reads a layout file safely.
 *
 * @example
 * ```ts
 * const refs = await readLegacyRefs("/l", (rel, max) => readSmallText(rel, max));
 * ```
 */
export async function readLegacyRefs(dir: string, readText: (rel: string, max: number) => string): Promise<Map<string, Descriptor>> {
  const out = new Map<string, Descriptor>();
  const root = join(dir, "refs");
  const walk = async (rel: string): Promise<void> => {
    let names: fs.Dirent[];
    try {
      // Most layouts have no refs/: find that out without an exception.
      if (rel === "" && !fs.statSync(root, { throwIfNoEntry: false })) return;
      names = fs.readdirSync(join(root, rel), { withFileTypes: true });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") return;
      throw wrapIo(e, "read directory", join(root, rel));
    }
    for (const d of names) {
      const name = rel ? `${rel}/${d.name}` : d.name;
      if (d.name.startsWith(".")) continue;
      if (d.isDirectory()) await walk(name);
      else if (d.isFile()) {
        const p = join(root, name);
        let text: string;
        try {
          text = readText(`refs/${name}`, MAX_SMALL_FILE);
        } catch (e) {
          throw wrapIo(e, "read", p);
        }
        const v = parseJSON(text, p);
        validateDescriptor(v, p);
        out.set(name, v);
      }
    }
  };
  await walk("");
  return out;
}

/**
 * Sorted, de-duplicated tags of a layout (see the module header).
 *
 * @example
 * ```ts
 * await listTagsOf(layout); // ["latest", "v1"]
 * ```
 */
export async function listTagsOf(src: TagSource): Promise<string[]> {
  const tags = new Set<string>();
  const seen = new Set<string>();
  const walk = async (idx: ImageIndex, depth: number): Promise<void> => {
    for (const d of idx.manifests) {
      const t = d.annotations?.[REF_NAME];
      if (t !== undefined) tags.add(t);
      else if (isIndexMediaType(d.mediaType) && depth < MAX_NESTING && !seen.has(d.digest)) {
        seen.add(d.digest);
        await walk(await src.readIndexBlob(d), depth + 1);
      }
    }
  };
  await walk(await src.readIndex(), 0);
  for (const t of (await src.legacyRefs()).keys()) tags.add(t);
  return [...tags].sort();
}

/**
 * Manifest descriptors a tag names, each with the platform its index gives,
 * if any; the same manifest reachable twice is one candidate.
 *
 * @example
 * ```ts
 * const cands = await manifestsForTagIn(layout, "latest");
 * ```
 */
export async function manifestsForTagIn(src: TagSource, tag: string): Promise<Descriptor[]> {
  const found: Descriptor[] = [];
  const unknown: Descriptor[] = [];
  const seen = new Set<string>(); // indexes expanded for the tag
  const searched = new Set<string>(); // untagged indexes searched for the tag
  const expand = async (d: Descriptor, depth: number, platform?: Platform): Promise<void> => {
    if (isManifestMediaType(d.mediaType)) {
      found.push(platform && !d.platform ? { ...d, platform } : d);
    } else if (isIndexMediaType(d.mediaType)) {
      if (depth >= MAX_NESTING || seen.has(d.digest)) return;
      seen.add(d.digest);
      const idx = await src.readIndexBlob(d);
      for (const c of idx.manifests) await expand(c, depth + 1, c.platform ?? d.platform ?? platform);
    } else unknown.push(d);
  };
  const search = async (idx: ImageIndex, depth: number): Promise<void> => {
    for (const d of idx.manifests) {
      const t = d.annotations?.[REF_NAME];
      if (t === tag) await expand(d, depth);
      else if (t === undefined && isIndexMediaType(d.mediaType) && depth < MAX_NESTING && !searched.has(d.digest)) {
        searched.add(d.digest);
        await search(await src.readIndexBlob(d), depth + 1);
      }
    }
  };
  await search(await src.readIndex(), 0);
  if (found.length === 0 && unknown.length === 0) {
    const legacy = (await src.legacyRefs()).get(tag);
    if (legacy) await expand(legacy, 0);
  }
  if (found.length === 0 && unknown.length > 0) {
    throw new OcigenError(
      "EMEDIATYPE",
      `Cannot resolve tag ${tag} in ${src.dir}: it names a ${unknown[0].mediaType}, not an image manifest or index`,
    );
  }
  const byDigest = new Map<string, Descriptor>();
  for (const d of found) if (!byDigest.has(d.digest)) byDigest.set(d.digest, d);
  return [...byDigest.values()];
}

/**
 * Resolves a tag to its manifest and config for `platform` (see the module
 * header): ENOTAG, EBADTAG, EAMBIGUOUS.
 *
 * @example
 * ```ts
 * const img = await resolveTagIn(layout, "latest", hostPlatform());
 * ```
 */
export async function resolveTagIn(src: TagSource, tag: string, platform: Platform): Promise<ResolvedImage> {
  validateTag(tag);
  const cands = await manifestsForTagIn(src, tag);
  if (cands.length === 0) throw new OcigenError("ENOTAG", `Cannot resolve tag ${tag} in ${src.dir}: no such tag`);
  const load = async (d: Descriptor): Promise<ResolvedImage> => {
    const manifest = await src.readManifest(d);
    const config = await src.readConfig(manifest.config);
    return { tag, manifestDescriptor: d, manifest, config, configDescriptor: manifest.config };
  };
  if (cands.length === 1) return await load(cands[0]);
  const matching: ResolvedImage[] = [];
  for (const d of cands) {
    let p = d.platform;
    let img: ResolvedImage | undefined;
    if (!p) {
      img = await load(d);
      p = { os: img.config.os, architecture: img.config.architecture, variant: img.config.variant };
    }
    if (platformMatches(p, platform)) matching.push(img ?? (await load(d)));
  }
  if (matching.length === 1) return matching[0];
  throw new OcigenError(
    "EAMBIGUOUS",
    `Cannot resolve tag ${tag} in ${src.dir}: tag is ambiguous (${cands.length} manifests, ` +
      `${matching.length === 0 ? "none" : matching.length} for ${formatPlatform(platform)})`,
  );
}
