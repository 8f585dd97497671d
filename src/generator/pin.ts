/**
 * How the generator honours a pin (./update-state.ts, written by `ocigen update`): when unit `base`'s tag
 * still names the manifest a rollback pinned it away from, the unit is
 * generated for the pinned (previous) manifest instead, read from the same
 * layout. A pinned manifest that is no longer in the layout (an operator's
 * `ocigen gc` removed it) cannot be served: the pin is then ignored with a
 * warning and the tag's manifest is used, as without a pin.
 *
 * @module
 */
import * as fs from "node:fs";
import { shortDigest } from "../errors.ts";
import type { Layout, ResolvedImage } from "../oci/layout.ts";
import { MediaType } from "../oci/types.ts";
import { DEFAULT_STATE_DIR, type Pin, pinFor } from "./update-state.ts";
import type { DirNames } from "../fs/names.ts";

/**
 * The image a unit is generated for, and the pin that chose it (if any).
 *
 * @example
 * ```ts
 * const c: PinnedChoice = await applyPin(stateDir, base, layout, img, log.warn);
 * ```
 */
export interface PinnedChoice {
  image: ResolvedImage;
  pin: Pin | null;
}

/**
 * The image unit `base` runs: `img` (the tag's), or the pinned manifest of
 * `layout` while a pin holds. `names`: the directory listings of one pass
 * (src/fs/names.ts), so that looking for an absent pin costs nothing.
 *
 * @example
 * ```ts
 * const { image, pin } = await applyPin(cfg.stateDir, "app.ref.v1", layout, await layout.resolve("v1"), log.warn);
 * ```
 */
export async function applyPin(
  stateDir: string | undefined,
  base: string,
  layout: Layout,
  img: ResolvedImage,
  warn: (msg: string) => void,
  names?: DirNames,
): Promise<PinnedChoice> {
  const pin = pinFor(stateDir ?? DEFAULT_STATE_DIR, base, img.manifestDescriptor.digest, names);
  if (!pin) return { image: img, pin: null };
  const st = fs.statSync(layout.blobPath(pin.manifest), { throwIfNoEntry: false });
  if (!st?.isFile()) {
    warn(`pinned to ${shortDigest(pin.manifest)}, which is no longer in the layout; running the tag's ${shortDigest(pin.from)} (ocigen update --unpin ${pin.unit} clears the pin)`);
    return { image: img, pin: null };
  }
  try {
    const d = { mediaType: MediaType.Manifest, digest: pin.manifest, size: st.size };
    const manifest = await layout.readManifest(d);
    const config = await layout.readConfig(manifest.config);
    return {
      image: { tag: img.tag, manifestDescriptor: { ...d, mediaType: manifest.mediaType ?? d.mediaType }, manifest, config, configDescriptor: manifest.config },
      pin,
    };
  } catch (e) {
    warn(`pinned manifest ${shortDigest(pin.manifest)} cannot be read (${(e as Error).message}); running the tag's ${shortDigest(pin.from)}`);
    return { image: img, pin: null };
  }
}
