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
import * as fs from "node:fs";
import { dirname } from "node:path";
import { OcigenError, shortDigest, wrapIo } from "../errors.ts";
import { acquireLock } from "../fs/lock.ts";
import { log } from "../log.ts";
import { checkImagePlatform } from "../oci/platform.ts";
import { checkLayerCount } from "../oci/validate.ts";
import type { GeneratorConfig } from "../generator/config.ts";
import { openNamedLayout } from "../generator/extract.ts";
import { imagePlatform } from "../generator/settings.ts";
import { ensureStore, STORE_MODE, storeDir, storeRootfs } from "../store/paths.ts";

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
  const store = storeRootfs(cfg.extractsDir, manifest);
  if (fs.statSync(store, { throwIfNoEntry: false })?.isDirectory()) return false;
  const layout = await openNamedLayout(cfg, name);
  const platform = imagePlatform(cfg, name, tag);
  const img = await layout.resolve(tag, platform);
  if (img.manifestDescriptor.digest !== manifest) {
    throw new OcigenError("EUPDATE", `${name}:${tag} moved to ${shortDigest(img.manifestDescriptor.digest)} while updating to ${shortDigest(manifest)}; run ocigen update again`);
  }
  checkImagePlatform(img.config, platform, `${name}:${tag}`);
  ensureStore(cfg.extractsDir);
  const sdir = storeDir(cfg.extractsDir, manifest);
  try {
    fs.mkdirSync(dirname(sdir), { recursive: true, mode: STORE_MODE });
  } catch (e) {
    throw wrapIo(e, "mkdir", dirname(sdir));
  }
  const lock = await acquireLock(`${sdir}.lock`, `extract of ${shortDigest(manifest)}`, 3600_000);
  let made = false;
  try {
    if (fs.statSync(store, { throwIfNoEntry: false })?.isDirectory()) return false;
    checkLayerCount(img, `${layout.dir}:${tag}`);
    if (!fs.existsSync(sdir)) {
      fs.mkdirSync(sdir, { mode: STORE_MODE });
      made = true;
    }
    log.info(`${name}:${tag}: extracting ${shortDigest(manifest)} into ${store} before the restart`);
    const { unpackRootfs } = await import("../layer/unpack.ts");
    await unpackRootfs(layout, img, store, {});
    return true;
  } catch (e) {
    if (made) {
      try {
        fs.rmdirSync(sdir);
      } catch { /* not empty or gone */ }
    }
    throw e;
  } finally {
    lock.release();
  }
}
