/**
 * Extracting an update's new content before anything is restarted: the
 * store entry of a manifest (`EXTRACTS/.store/<alg>/<hex>/rootfs`), made
 * exactly as the companion units make it (under the manifest's lock, every
 * layer verified, published by rename), but without touching any unit's
 * own directory: the running service keeps its `current.json` until it is
 * restarted.
 *
 * @module
 */
import { OcigenError, shortDigest } from "../errors.ts";
import { checkImagePlatform } from "../oci/platform.ts";
import type { GeneratorConfig } from "../generator/config.ts";
import { openNamedLayout } from "../generator/extract.ts";
import { imagePlatform } from "../generator/settings.ts";
import { openStore } from "../store/index.ts";

/**
 * Makes sure the store holds the rootfs of `manifest`, which tag `tag` of
 * layout `name` must name. Returns true if this call extracted it.
 *
 * @example
 * ```ts
 * await prefetchManifest(cfg, "app", "v1", "sha256:…"); // true the first time
 * ```
 */
export async function prefetchManifest(cfg: GeneratorConfig, name: string, tag: string, manifest: string): Promise<boolean> {
  const store = openStore(cfg.extractsDir);
  if (store.has(manifest)) return false;
  const layout = await openNamedLayout(cfg, name);
  const platform = imagePlatform(cfg, name, tag);
  const img = await layout.resolve(tag, platform);
  if (img.manifestDescriptor.digest !== manifest) {
    throw new OcigenError("EUPDATE", `${name}:${tag} moved to ${shortDigest(img.manifestDescriptor.digest)} while updating to ${shortDigest(manifest)}; run ocigen update again`);
  }
  checkImagePlatform(img.config, platform, `${name}:${tag}`);
  const r = await store.extractIfMissing(layout, img, { where: `${name}:${tag}`, imageName: `${layout.dir}:${tag}`, note: " before the restart" });
  return r.extracted;
}
