/**
 * `ocigen gc-extracts`: which extracts are still needed (the policy), and
 * their removal through the store (src/store/gc.ts).
 *
 * It removes per-unit directories whose layout and tag are gone and store
 * entries that no unit and no current tag references; it skips anything a
 * broken layout might still need (the unit directories its `current.json` —
 * or, without one, its name — ties to that layout, and their store entries),
 * anything locked and the roots of running services, collects everything
 * else, removes the host accounts no kept unit needs, and reports the broken
 * layouts as errors. Volumes are never removed.
 *
 * @module
 */
import * as fs from "node:fs";
import { join } from "node:path";
import { wrapIo } from "../errors.ts";
import { Layout } from "../oci/layout.ts";
import type { GeneratorConfig, LayoutSettings } from "./config.ts";
import { discoverLayouts } from "./discover.ts";
import type { CurrentRecord } from "./extract.ts";
import { unitBaseName } from "./naming.ts";
import { settingsForLayout, settingsForTag, settingsPlatform } from "./settings.ts";
import { openStore } from "../store/index.ts";
import { removeUnitDir } from "../store/gc.ts";
import { DEFAULT_RUN_DIR, serviceRoot } from "./state.ts";
import { removeHostAccounts } from "./hostusers.ts";
import { isMountPoint, mountedLowerDirs } from "./serviceroot.ts";

function readlinkOrNull(p: string): string | null {
  try {
    return fs.readlinkSync(p);
  } catch {
    return null;
  }
}

/** Options of {@linkcode gcExtracts}. */
export interface GcOptions {
  config: GeneratorConfig;
  /** Report what would be removed, remove nothing. */
  dryRun?: boolean;
  /**
   * Also remove the host accounts (`ocigen-u<uid>`, `ocigen-g<gid>`) no kept
   * unit runs as: the host's (what `ocigen gc-extracts` does), or those under
   * `hostRoot`. Off by default: one store's gc knows only its own units.
   */
  hostAccounts?: boolean;
  /** Host accounts live under this root instead of `/` (tests). */
  hostRoot?: string;
}

/** What {@linkcode gcExtracts} did. */
export interface GcResult {
  /** Removed (or, dry-run, removable) paths. */
  removed: string[];
  /** Host accounts removed (or, dry-run, removable): `ocigen-u<uid>`, `ocigen-g<gid>`. */
  accounts: string[];
  /** Problems met (gc kept what they might concern). */
  errors: string[];
}

/**
 * Removes extracts no longer referenced (see the module docs).
 *
 * @example
 * ```ts
 * const { removed } = await gcExtracts({ config: loadGeneratorConfig() });
 * ```
 */
export async function gcExtracts(opts: GcOptions): Promise<GcResult> {
  const cfg = opts.config;
  const removed: string[] = [];
  const errors: string[] = [];
  const live = new Set<string>(); // unit bases of current tags
  const referenced = new Set<string>(); // manifest digests to keep
  const brokenLayouts = new Set<string>();
  const accounts: string[] = [];
  const keepUids = new Set<number>();
  const keepGids = new Set<number>();
  const runDir = cfg.runDir ?? DEFAULT_RUN_DIR;
  const store = openStore(cfg.extractsDir);
  const disc = await discoverLayouts(cfg.imageLayoutDir);
  errors.push(...disc.errors);
  for (const { name, dir } of disc.layouts) {
    let layout: Layout;
    let tags: string[];
    try {
      layout = await Layout.open(dir);
      tags = await layout.listTags();
    } catch (e) {
      brokenLayouts.add(name);
      errors.push(`layout ${name}: ${(e as Error).message} (its extracts are kept)`);
      continue;
    }
    let perLayout: LayoutSettings | undefined; // the layout's settings file, read once for all its tags
    for (const tag of tags) {
      try {
        live.add(unitBaseName(name, tag));
        perLayout ??= settingsForLayout(cfg, name);
        const platform = settingsPlatform(settingsForTag(cfg, name, tag, perLayout));
        referenced.add((await layout.resolve(tag, platform)).manifestDescriptor.digest);
      } catch (e) {
        brokenLayouts.add(name);
        errors.push(`layout ${name} tag ${tag}: ${(e as Error).message} (the layout's extracts are kept)`);
      }
    }
  }
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(cfg.extractsDir, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return { removed, accounts, errors };
    throw wrapIo(e, "read directory", cfg.extractsDir);
  }
  const discovered = new Set(disc.layouts.map((l) => l.name));
  // Unit directory names of a broken layout start with this prefix (null: not computable, so any name may be one).
  const brokenPrefixes = [...brokenLayouts].map((n) => {
    try {
      return unitBaseName(n, "x").slice(0, -1);
    } catch {
      return null;
    }
  });
  // Per-unit directories: kept when their tag is current or their layout cannot be read; a store entry
  // is removed only when no kept unit links to it and no readable tag names it.
  for (const d of entries) {
    if (d.name.startsWith(".") || !d.isDirectory()) continue;
    const udir = join(cfg.extractsDir, d.name);
    let meta: CurrentRecord | null = null;
    try {
      meta = JSON.parse(fs.readFileSync(join(udir, "current.json"), "utf8")) as CurrentRecord;
    } catch { /* unknown */ }
    let keep: boolean;
    if (live.has(d.name)) keep = true;
    else if (meta && typeof meta.name === "string") {
      // the unit's layout is broken, or may exist unseen (the walk met an unreadable directory)
      keep = brokenLayouts.has(meta.name) || (disc.errors.length > 0 && !discovered.has(meta.name));
    } else {
      // no readable current.json: attributed to a layout by its name (never to fewer layouts than it may belong to)
      keep = disc.errors.length > 0 || brokenPrefixes.some((p) => p === null || d.name.startsWith(p));
    }
    // a running service (its root is mounted) keeps its directory even when its tag is gone
    if (!keep && isMountPoint(serviceRoot(runDir, d.name))) keep = true;
    const t = readlinkOrNull(join(udir, "rootfs"));
    if (keep) {
      if (meta && typeof meta.manifest === "string") referenced.add(meta.manifest);
      if (meta && Number.isSafeInteger(meta.uid) && Number.isSafeInteger(meta.gid)) {
        keepUids.add(meta.uid!);
        keepGids.add(meta.gid!);
      }
      const linked = t ? store.digestOf(join(udir, t)) : null;
      if (linked) referenced.add(linked);
      continue;
    }
    await removeUnitDir(udir, opts, { removed, errors });
  }
  // The store entries under mounted service roots stay, whatever the tags say.
  for (const lower of mountedLowerDirs()) {
    const d = store.digestOf(lower);
    if (d) referenced.add(d);
  }
  // Host accounts registered for ids no kept unit runs as.
  if (opts.hostAccounts) {
    try {
      accounts.push(...removeHostAccounts(keepUids, keepGids, opts.dryRun, opts.hostRoot));
    } catch (e) {
      errors.push((e as Error).message);
    }
  }
  // Store entries.
  const gc = await store.gc(referenced, { dryRun: opts.dryRun });
  removed.push(...gc.removed);
  errors.push(...gc.errors);
  return { removed, accounts, errors };
}
