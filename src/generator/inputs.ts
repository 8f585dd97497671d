/**
 * What the generator reads before it plans (./plan.ts): the layouts under
 * `imagelayoutdir` and, for each selected tag, its settings, its image (the
 * tag's, or the one a rollback pin holds it on), whether the store has that
 * image's rootfs and, with `atomicTemplates`, its Atomic exports.
 *
 * It reads only `oci-layout`, `index.json` (and `refs/`), manifests and
 * configs — small, verified JSON — settings files, pins, and, when already
 * extracted, the `/exports` files of a rootfs. It never reads a layer and
 * writes nothing. A layout or tag that cannot be read is recorded with the
 * reason (the plan reports it); the others are still read. Layouts are read
 * `concurrency` at a time; the result keeps the discovery order.
 *
 * @module
 */
import { Layout } from "../oci/layout.ts";
import type { GeneratorConfig, LayoutSettings } from "./config.ts";
import { settingsForLayout, settingsForTag, settingsPlatform } from "./settings.ts";
import { selectTags } from "./tags.ts";
import { discoverLayouts } from "./discover.ts";
import { unitBaseName } from "./naming.ts";
// the store's paths only: its facade (../store/index.ts) would bring the unpack engine into the generator's bundle
import { isCurrent, storeRootfs } from "../store/paths.ts";
import { readAtomicExports } from "./atomic-template.ts";
import { log } from "../log.ts";
import { applyPin } from "./pin.ts";
import { DirNames } from "../fs/names.ts";
import type { LayoutInput, TagInput } from "./plan.ts";

/** What {@linkcode readInputs} found. */
export interface Inputs {
  /** Problems of the directory walk (each names the path). */
  discoveryErrors: string[];
  layouts: LayoutInput[];
}

/** Options of {@linkcode readInputs}. */
export interface ReadInputsOptions {
  /** Layouts read in parallel (default 16). */
  concurrency?: number;
  /** Receives warnings about a tag (a pin that no longer holds), with the tag named. */
  warn?: (msg: string) => void;
}

/** Runs `fn` over `items` with at most `n` in flight. */
async function pool<T>(items: readonly T[], n: number, fn: (t: T, i: number) => Promise<void>): Promise<void> {
  let i = 0;
  const worker = async () => {
    while (i < items.length) {
      const k = i++;
      await fn(items[k], k);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}

/** Reads one selected tag (see the module docs); never throws. */
async function readTag(cfg: GeneratorConfig, name: string, layout: Layout, tag: string, settings: LayoutSettings, warn: (m: string) => void, names: DirNames): Promise<TagInput> {
  const t: TagInput = { tag };
  try {
    const base = unitBaseName(name, tag);
    t.base = base;
    const tagSettings = settingsForTag(cfg, name, tag, settings, names);
    t.settings = tagSettings;
    const tagImg = await layout.resolve(tag, settingsPlatform(tagSettings));
    t.tagManifest = tagImg.manifestDescriptor.digest;
    // a rollback's pin (ocigen update) serves the previous manifest while the tag names the failed one
    const { image: img, pin } = await applyPin(cfg.stateDir, base, layout, tagImg, (m) => warn(`layout ${name} tag ${tag}: ${m}`), names);
    t.image = img;
    if (pin) t.pin = { manifest: pin.manifest, from: pin.from, at: pin.at, reason: pin.reason };
    const manifest = img.manifestDescriptor.digest;
    const rootfs = storeRootfs(cfg.extractsDir, manifest);
    t.extractedRootfs = names.mayExist(rootfs) && isCurrent(cfg.extractsDir, manifest) ? rootfs : null;
    const rc = img.config.config;
    const hasCommand = (rc?.Entrypoint ?? []).length > 0 || (rc?.Cmd ?? []).length > 0;
    if (t.extractedRootfs && cfg.atomicTemplates && hasCommand) {
      try {
        t.atomic = readAtomicExports(t.extractedRootfs);
      } catch (e) {
        t.atomicError = (e as Error).message ?? String(e);
      }
    }
  } catch (e) {
    t.error = (e as Error).message ?? String(e);
  }
  return t;
}

/**
 * Reads what the generator plans from (see the module docs).
 *
 * @example
 * ```ts
 * const inputs = await readInputs(loadGeneratorConfig());
 * const plan = planUnits({ config, outDir, ocigen, hostIds, layouts: inputs.layouts });
 * ```
 */
export async function readInputs(cfg: GeneratorConfig, opts: ReadInputsOptions = {}): Promise<Inputs> {
  const warn = opts.warn ?? log.warn;
  const disc = await discoverLayouts(cfg.imageLayoutDir);
  // settings files, pins and extracted images are looked up by listing their directories once
  const names = new DirNames();
  const layouts: LayoutInput[] = new Array(disc.layouts.length);
  await pool(disc.layouts, opts.concurrency ?? 16, async ({ name, dir, real }, i) => {
    const entry: LayoutInput = { name, dir, tags: [] };
    layouts[i] = entry;
    let layout: Layout;
    let tags: string[];
    try {
      // A snapshot view: index.json is read once for all tags, and a manifest
      // or config shared by several tags is read (and verified) once.
      layout = (await Layout.open(dir, { real })).snapshot();
      tags = await layout.listTags();
    } catch (e) {
      entry.error = (e as Error).message;
      return;
    }
    if (tags.length === 0) log.info(`layout ${name}: no tags, no units`);
    let settings: LayoutSettings;
    try {
      settings = settingsForLayout(cfg, name, names);
      const sel = selectTags(tags, settings);
      for (const s of sel.skipped) log.info(`layout ${name} tag ${s.tag}: ${s.why}; no unit`);
      tags = sel.selected;
    } catch (e) {
      entry.error = (e as Error).message;
      return;
    }
    for (const tag of tags) entry.tags.push(await readTag(cfg, name, layout, tag, settings, warn, names));
  });
  return { discoveryErrors: disc.errors, layouts };
}
