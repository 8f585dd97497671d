/**
 * The systemd generator (SPEC 4): layouts on disk -> service units.
 *
 * It reads only `oci-layout`, `index.json` (and `refs/`), manifests and
 * configs — small, verified JSON — plus, when already extracted, a few small
 * files of a rootfs (passwd/group, Atomic exports). It never reads a layer
 * and writes only into its output directory: each file is written to a
 * temporary name there and renamed into place. A broken layout or tag is
 * reported and skipped; the others are still generated. Two layouts/tags
 * mapping to one unit name are both reported and neither is written.
 *
 * @module
 */
import * as fs from "node:fs";
import { basename, join } from "node:path";
import process from "node:process";
import { OcigenError, wrapIo } from "../errors.ts";
import { tempPath } from "../fs/atomic.ts";
import { Layout } from "../oci/layout.ts";
import { type GeneratorConfig, type LayoutSettings, normalizeRuntime } from "./config.ts";
import { settingsForLayout, settingsForTag, settingsPlatform } from "./settings.ts";
import { selectTags } from "./tags.ts";
import { checkImagePlatform } from "../oci/platform.ts";
import { discoverLayouts } from "./discover.ts";
import { exposedPorts } from "./sandbox.ts";
import { extractUnitName, unitBaseName } from "./naming.ts";
import { storeRootfs, unitDir } from "../store/paths.ts";
import { createReporter, type Reporter } from "./report.ts";
import { DEFAULT_VOLUMES_DIR } from "./state.ts";
import { containerId, extractArgv, type ImageInfo, releaseArgv, renderExtractUnit, renderUnit, unitExtractArgv, type UnitInput, unitHeader } from "./unit.ts";
import { addMissingDirectives, atomicVariables, readAtomicExports, renderAtomicTemplate } from "./atomic-template.ts";
import { checkLineValue, checkUnitLines, listWord } from "./syntax.ts";
import { log } from "../log.ts";
import { selfCommand } from "../install/self.ts";
import { applyPin } from "./pin.ts";

/** Options of {@linkcode generate}. */
export interface GenerateOptions {
  config: GeneratorConfig;
  /** The generator's normal output directory. */
  outDir: string;
  /** Print `---PATH---` and each file instead of writing. */
  dryRun?: boolean;
  /** Where dry-run output goes (default stdout). */
  print?: (s: string) => void;
  /** argv prefix running ocigen in the extract units (default: config `ocigen`, else this program). */
  ocigen?: readonly string[];
  /** Where problems are reported (default stderr / kmsg, see report.ts). */
  reporter?: Reporter;
  /** Parallel layouts (default 16). */
  concurrency?: number;
}

/** One unit the generator produced (or would have). */
export interface GeneratedUnit {
  name: string;
  tag: string;
  unit: string;
  path: string;
  text: string;
  /** Path of the `.wants/` link, when enabled. */
  wantsLink?: string;
  /** The companion extract unit (`ocigen-extract@BASE.service`). */
  extractUnit: { unit: string; path: string; text: string };
  /** True when rendered from an Atomic `service.template`. */
  atomic: boolean;
  /** The image's exposed ports (`80/tcp`...), for status listings; the service uses the host's network unless `Network=none`. */
  ports: string[];
  /** The manifest the unit runs (the tag's, or the pinned one). */
  manifest: string;
  /** The manifest the tag names now. */
  tagManifest: string;
  /** The pin `ocigen update` set after a failed update, while it holds (src/generator/update-state.ts). */
  pin?: { manifest: string; from: string; at: string; reason: string };
}

/** The outcome of a run. */
export interface GenerateResult {
  units: GeneratedUnit[];
  /** One line per problem (each names the layout, tag or unit at fault). */
  errors: string[];
}

const TRUE = new Set(["true", "yes", "1", "on"]);
const FALSE = new Set(["false", "no", "0", "off"]);

function enabled(cfg: GeneratorConfig, settings: LayoutSettings, img: ImageInfo, where: string, rep: Reporter): boolean {
  const per = settings.enable;
  if (per !== undefined) return per;
  if (cfg.enableLabel) {
    const v = img.config.config?.Labels?.[cfg.enableLabel];
    if (typeof v === "string") {
      if (TRUE.has(v.toLowerCase())) return true;
      if (FALSE.has(v.toLowerCase())) return false;
      rep.warn(`${where}: label ${cfg.enableLabel}=${JSON.stringify(v)} is neither true nor false; ignored`);
    }
  }
  return cfg.enable;
}

/**
 * The argv prefix that runs this ocigen in the extract units: the config's
 * `ocigen =`, else {@linkcode selfCommand} (`$OCIGEN_SELF` set by the
 * installed wrapper, the single binary, or runtime + script) with every path
 * made absolute and real — so a run through the `ocigen-generator` link
 * never writes that link (which would run `generate`) into units.
 *
 * @example
 * ```ts
 * ocigenCommand(defaultGeneratorConfig()); // e.g. ["/usr/local/bin/ocigen"]
 * ```
 */
export function ocigenCommand(cfg: GeneratorConfig, env: Record<string, string | undefined> = process.env): string[] {
  if (cfg.ocigen) return [cfg.ocigen];
  return selfCommand(env).map((a) => {
    if (!a.startsWith("/") || !/^ocigen-generator/.test(basename(a))) return a;
    try {
      return fs.realpathSync(a);
    } catch {
      return a;
    }
  });
}

/** Runs `fn` over `items` with at most `n` in flight. */
async function pool<T>(items: T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  const worker = async () => {
    while (i < items.length) await fn(items[i++]);
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}

function isDir(p: string): boolean {
  try {
    // throwIfNoEntry: not yet extracted is the common case; no exception for it.
    return fs.statSync(p, { throwIfNoEntry: false })?.isDirectory() ?? false;
  } catch {
    return false;
  }
}

/**
 * Generates the units of every layout below `config.imageLayoutDir` into
 * `outDir` (or prints them with `dryRun`). Never throws for a broken layout:
 * problems are reported and returned in `errors`.
 *
 * @example
 * ```ts
 * const r = await generate({ config: loadGeneratorConfig(), outDir: "/run/systemd/generator" });
 * process.exitCode = r.errors.length ? 1 : 0;
 * ```
 */
export async function generate(opts: GenerateOptions): Promise<GenerateResult> {
  const cfg = opts.config;
  const rep = opts.reporter ?? createReporter(false);
  const ocigen = opts.ocigen ?? ocigenCommand(cfg);
  const errors: string[] = [];
  const fail = (msg: string) => {
    errors.push(msg);
    rep.error(msg);
  };
  const disc = await discoverLayouts(cfg.imageLayoutDir);
  for (const e of disc.errors) fail(e);
  if (disc.layouts.length === 0 && disc.errors.length === 0) {
    (rep.notice ?? rep.info)(`no layouts under ${cfg.imageLayoutDir} (a layout is a directory holding an oci-layout file); no units`);
  }
  const candidates: GeneratedUnit[] = [];
  const failedUnits = new Set<string>();

  await pool(disc.layouts, opts.concurrency ?? 16, async ({ name, dir }) => {
    let layout: Layout;
    let tags: string[];
    try {
      // A snapshot view: index.json is read once for all tags, and a manifest
      // or config shared by several tags is read (and verified) once.
      layout = (await Layout.open(dir)).snapshot();
      tags = await layout.listTags();
    } catch (e) {
      fail(`layout ${name}: ${(e as Error).message}`);
      return;
    }
    if (tags.length === 0) log.info(`layout ${name}: no tags, no units`);
    let settings: LayoutSettings;
    try {
      settings = settingsForLayout(cfg, name);
      const sel = selectTags(tags, settings);
      for (const s of sel.skipped) log.info(`layout ${name} tag ${s.tag}: ${s.why}; no unit`);
      tags = sel.selected;
    } catch (e) {
      fail(`layout ${name}: ${(e as Error).message}`);
      return;
    }
    // Tags whose config has no command (base images) yield no unit; only a
    // layout where no tag has one is reported as broken.
    const noCommand: string[] = [];
    let units = 0;
    for (const tag of tags) {
      const where = `layout ${name} tag ${tag}`;
      let base = "";
      try {
        base = unitBaseName(name, tag);
        const tagSettings = settingsForTag(cfg, name, tag, settings);
        const platform = settingsPlatform(tagSettings);
        const tagImg = await layout.resolve(tag, platform);
        // a rollback's pin (ocigen update) serves the previous manifest while the tag names the failed one
        const { image: img, pin } = await applyPin(cfg.stateDir, base, layout, tagImg, (m) => rep.warn(`${where}: ${m}`));
        checkImagePlatform(img.config, platform, ""); // the message gets `where` below
        const rc = img.config.config;
        if ((rc?.Entrypoint ?? []).length === 0 && (rc?.Cmd ?? []).length === 0) {
          log.info(`${where}: no Entrypoint or Cmd, no unit`);
          noCommand.push(tag);
          continue;
        }
        units++;
        const unit = base + ".service";
        const extracted = storeRootfs(cfg.extractsDir, img.manifestDescriptor.digest);
        const extractedRootfs = isDir(extracted) ? extracted : null;
        const configPath = cfg.explicit ? cfg.path : undefined;
        let text: string | null = null;
        let atomic = false;
        let extract: string[] | null = null;
        let stop: string[] | undefined;
        if (extractedRootfs && cfg.atomicTemplates) {
          const ex = readAtomicExports(extractedRootfs);
          if (ex?.noContainerService) {
            log.info(`${where}: /exports/manifest.json says noContainerService; no unit`);
            continue;
          }
          if (ex) {
            const runtime = tagSettings.runtime === "systemd" ? normalizeRuntime("runc") : tagSettings.runtime;
            extract = extractArgv(ocigen, name, tag, configPath, undefined, true);
            const vars = atomicVariables({
              base, name, tag, bundleDir: unitDir(cfg.extractsDir, base), runtime, containerId: containerId(base),
              configDigest: img.configDescriptor.digest, ocigen: ocigen[0],
              hostUid: process.getuid?.() ?? 0, hostGid: process.getgid?.() ?? 0,
            }, ex.defaultValues);
            const rendered = renderAtomicTemplate(ex.template, vars);
            const companion = extractUnitName(base);
            text = unitHeader(dir, tag, unit) + addMissingDirectives(rendered, [
              `SourcePath=${checkLineValue(dir, "SourcePath=")}`,
              `RequiresMountsFor=${[dir, cfg.extractsDir].map((p) => listWord(p, "RequiresMountsFor=")).join(" ")}`,
            ], ["Slice=oci.slice"], [`Requires=${companion}`, `After=${companion}`]);
            if (!text.endsWith("\n")) text += "\n";
            atomic = true;
          }
        }
        if (text === null) {
          const input: UnitInput = {
            name, tag, base, layoutDir: dir, extractsDir: cfg.extractsDir, runDir: cfg.runDir, volumesDir: cfg.volumesDir,
            image: img, settings: tagSettings, ocigen, configPath, extractedRootfs,
            warn: (m) => rep.warn(`${where}: ${m}`),
          };
          text = renderUnit(input);
          extract = unitExtractArgv(input);
          stop = releaseArgv(ocigen, name, tag, configPath);
        }
        const companion = extractUnitName(base);
        const extractText = renderExtractUnit({ name, tag, base, layoutDir: dir, extractsDir: cfg.extractsDir, volumesDir: cfg.volumesDir ?? DEFAULT_VOLUMES_DIR }, extract!, stop);
        checkUnitLines(text, unit);
        checkUnitLines(extractText, companion);
        const g: GeneratedUnit = {
          name, tag, unit, path: join(opts.outDir, unit), text, atomic, ports: exposedPorts(img.config),
          manifest: img.manifestDescriptor.digest, tagManifest: tagImg.manifestDescriptor.digest,
          ...(pin ? { pin: { manifest: pin.manifest, from: pin.from, at: pin.at, reason: pin.reason } } : {}),
          extractUnit: { unit: companion, path: join(opts.outDir, companion), text: extractText },
        };
        if (enabled(cfg, tagSettings, img, where, rep)) g.wantsLink = join(opts.outDir, `${cfg.wantedBy}.wants`, unit);
        candidates.push(g);
      } catch (e) {
        if (base) failedUnits.add(base + ".service");
        const msg = (e as Error).message ?? String(e);
        fail(`${where}: ${e instanceof OcigenError || msg ? msg : String(e)}`);
      }
    }
    if (units === 0 && noCommand.length > 0) {
      fail(`layout ${name}: no command: no tag's image config has Entrypoint or Cmd (${noCommand.join(", ")})`);
    }
  });

  // Collisions: every claimant is reported, none is written.
  const byUnit = new Map<string, GeneratedUnit[]>();
  for (const c of candidates) byUnit.set(c.unit, [...(byUnit.get(c.unit) ?? []), c]);
  const units: GeneratedUnit[] = [];
  for (const [unit, list] of [...byUnit.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (list.length > 1 || failedUnits.has(unit)) {
      const who = list.map((c) => `${c.name}:${c.tag}`);
      if (failedUnits.has(unit)) who.push("a broken tag");
      for (const c of list) {
        fail(`layout ${c.name} tag ${c.tag}: unit name ${unit} collides with ${who.filter((w) => w !== `${c.name}:${c.tag}`).join(", ")}; neither is generated`);
      }
      continue;
    }
    units.push(list[0]);
  }

  if (opts.dryRun) {
    const print = opts.print ?? ((s: string) => process.stdout.write(s));
    for (const u of units) {
      print(`---${u.path}---\n${u.text}`);
      print(`---${u.extractUnit.path}---\n${u.extractUnit.text}`);
      if (u.wantsLink) print(`---${u.wantsLink} -> ../${u.unit}---\n`);
    }
    return { units, errors };
  }

  if (units.length > 0) {
    try {
      fs.mkdirSync(opts.outDir, { recursive: true });
    } catch (e) {
      fail(wrapIo(e, "create output directory", opts.outDir).message);
      return { units: [], errors };
    }
  }
  const written: GeneratedUnit[] = [];
  const writeFile = (path: string, text: string) => {
    const tmp = tempPath(opts.outDir);
    try {
      fs.writeFileSync(tmp, text, { mode: 0o644 });
      fs.renameSync(tmp, path);
    } catch (e) {
      try {
        fs.rmSync(tmp, { force: true });
      } catch { /* ignore */ }
      throw e;
    }
  };
  for (const u of units) {
    try {
      // The extract unit first: the service requires it.
      writeFile(u.extractUnit.path, u.extractUnit.text);
      writeFile(u.path, u.text);
    } catch (e) {
      fail(`unit ${u.unit}: ${wrapIo(e, "write", opts.outDir).message}`);
      continue;
    }
    if (u.wantsLink) {
      const wantsDir = join(opts.outDir, `${cfg.wantedBy}.wants`);
      const tmpLink = tempPath(opts.outDir);
      try {
        fs.mkdirSync(wantsDir, { recursive: true });
        fs.symlinkSync(`../${u.unit}`, tmpLink);
        fs.renameSync(tmpLink, u.wantsLink);
      } catch (e) {
        try {
          fs.rmSync(tmpLink, { force: true });
        } catch { /* ignore */ }
        fail(`unit ${u.unit}: ${wrapIo(e, "link", u.wantsLink).message}`);
      }
    }
    written.push(u);
  }
  log.info(`${written.length} unit(s) written to ${opts.outDir}, ${errors.length} problem(s)`);
  return { units: written, errors };
}
