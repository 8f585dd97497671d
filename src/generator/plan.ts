/**
 * Planning the generator's output: from what was read about the layouts
 * (./inputs.ts) and the settings, the list of unit files with their
 * contents — no file is written and nothing is read here but what the
 * caller passes in.
 *
 * For every tag (layouts in the order given, tags in their order) the plan:
 * reports a tag that could not be read; checks the image's platform; skips
 * an image without Entrypoint or Cmd (a base image; a layout where no tag
 * has a command is reported as broken); renders the image's Atomic
 * `service.template` when its extracted rootfs ships one (atomic.ts), else
 * ocigen's own unit (unit.ts); renders the companion `ocigen-extract@` unit;
 * checks every line; and enables the unit (a `.wants/` link) per the
 * settings or the enable label. Two layouts/tags mapping to one unit name
 * are both reported and neither is planned.
 *
 * The one exception to "nothing is read": when the caller says a tag's
 * rootfs is extracted (`TagInput.extractedRootfs`), rendering resolves the
 * image user in its passwd/group and looks the command up in its PATH
 * (confined to that rootfs, src/rootfs/). With no extracted rootfs, planning
 * touches no file at all.
 *
 * @module
 */
import { join } from "node:path";
import { OcigenError } from "../errors.ts";
import { type GeneratorConfig, type LayoutSettings, normalizeRuntime } from "./config.ts";
import { settingsPlatform } from "./settings.ts";
import { checkImagePlatform } from "../oci/platform.ts";
import { exposedPorts } from "./sandbox.ts";
import { extractUnitName } from "./naming.ts";
import { unitDir } from "../store/paths.ts";
import { DEFAULT_VOLUMES_DIR } from "./state.ts";
import { containerId, extractArgv, type ImageInfo, releaseArgv, renderExtractUnit, renderUnitAndArgv, type UnitInput, unitHeader } from "./unit.ts";
import { addMissingDirectives, type AtomicExports, atomicVariables, renderAtomicTemplate } from "./atomic-template.ts";
import { checkLineValue, checkUnitLines, listWord } from "./syntax.ts";
import { BOOL } from "./ini.ts";

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

/** What was read about one tag of a layout (./inputs.ts). */
export interface TagInput {
  tag: string;
  /** The unit base name (unit name without `.service`), when it could be computed. */
  base?: string;
  /** Why the tag could not be read (it yields no unit; its unit name, if known, none either). */
  error?: string;
  /** The tag's settings (layout settings plus its per-tag file). */
  settings?: LayoutSettings;
  /** The image the unit runs: the tag's, or the one a rollback pin holds it on. */
  image?: ImageInfo;
  /** The manifest the tag names now. */
  tagManifest?: string;
  /** The rollback pin in effect. */
  pin?: { manifest: string; from: string; at: string; reason: string };
  /** The store rootfs of `image`, when it is extracted. */
  extractedRootfs?: string | null;
  /** Its Atomic exports (read only with `atomicTemplates` on), or why they could not be read. */
  atomic?: AtomicExports | null;
  atomicError?: string;
}

/** What was read about one layout (./inputs.ts). */
export interface LayoutInput {
  /** Layout name (path relative to imagelayoutdir). */
  name: string;
  /** Absolute layout directory. */
  dir: string;
  /** Why the layout (or its settings) could not be read: no units. */
  error?: string;
  /** The selected tags. */
  tags: TagInput[];
}

/** Everything {@linkcode planUnits} plans from. */
export interface PlanInput {
  config: GeneratorConfig;
  /** The generator's normal output directory (where the paths point; nothing is written). */
  outDir: string;
  /** argv prefix running ocigen in the extract units. */
  ocigen: readonly string[];
  /** The host ids Atomic templates see as `HOST_UID`/`HOST_GID`. */
  hostIds: { uid: number; gid: number };
  layouts: readonly LayoutInput[];
}

/** A message of the plan, in order. */
export interface PlanMessage {
  level: "info" | "warn" | "error";
  text: string;
}

/** The plan. */
export interface UnitPlan {
  /** The units to write, sorted by unit name. */
  units: GeneratedUnit[];
  /** One line per problem (each names the layout, tag or unit at fault); also in `messages`. */
  errors: string[];
  /** Every message (info, warnings, errors) in the order met. */
  messages: PlanMessage[];
}

function enabled(cfg: GeneratorConfig, settings: LayoutSettings, img: ImageInfo, where: string, warn: (m: string) => void): boolean {
  const per = settings.enable;
  if (per !== undefined) return per;
  if (cfg.enableLabel) {
    const v = img.config.config?.Labels?.[cfg.enableLabel];
    if (typeof v === "string") {
      const word = v.toLowerCase();
      if (Object.hasOwn(BOOL, word)) return BOOL[word];
      warn(`${where}: label ${cfg.enableLabel}=${JSON.stringify(v)} is neither true nor false; ignored`);
    }
  }
  return cfg.enable;
}

/**
 * Plans the units of `input` (see the module docs). Pure: the same input
 * gives the same plan, and nothing is written.
 *
 * @example
 * ```ts
 * const plan = planUnits({ config, outDir: "/run/systemd/generator", ocigen: ["/usr/bin/ocigen"], hostIds: { uid: 0, gid: 0 },
 *   layouts: [{ name: "app", dir: "/var/lib/oci/layouts/app", tags: [{ tag: "v1", base: "app.ref.v1", settings, image, tagManifest }] }] });
 * for (const u of plan.units) console.log(u.path, u.text.length);
 * ```
 */
export function planUnits(input: PlanInput): UnitPlan {
  const cfg = input.config;
  const { outDir, ocigen } = input;
  const messages: PlanMessage[] = [];
  const errors: string[] = [];
  const say = (level: PlanMessage["level"], text: string) => {
    messages.push({ level, text });
    if (level === "error") errors.push(text);
  };
  const candidates: GeneratedUnit[] = [];
  const failedUnits = new Set<string>();
  const configPath = cfg.explicit ? cfg.path : undefined;

  for (const { name, dir, error, tags } of input.layouts) {
    if (error !== undefined) {
      say("error", `layout ${name}: ${error}`);
      continue;
    }
    // Tags whose config has no command (base images) yield no unit; only a
    // layout where no tag has one is reported as broken.
    const noCommand: string[] = [];
    let units = 0;
    for (const t of tags) {
      const { tag } = t;
      const where = `layout ${name} tag ${tag}`;
      try {
        if (t.error !== undefined) throw new OcigenError("EGENERATE", t.error);
        const base = t.base!, img = t.image!, tagSettings = t.settings!;
        checkImagePlatform(img.config, settingsPlatform(tagSettings), ""); // the message gets `where` below
        const rc = img.config.config;
        if ((rc?.Entrypoint ?? []).length === 0 && (rc?.Cmd ?? []).length === 0) {
          say("info", `${where}: no Entrypoint or Cmd, no unit`);
          noCommand.push(tag);
          continue;
        }
        units++;
        const unit = base + ".service";
        const extractedRootfs = t.extractedRootfs ?? null;
        let text: string | null = null;
        let atomic = false;
        let extract: string[] | null = null;
        let stop: string[] | undefined;
        if (extractedRootfs && cfg.atomicTemplates) {
          if (t.atomicError !== undefined) throw new OcigenError("EGENERATE", t.atomicError);
          const ex = t.atomic ?? null;
          if (ex?.noContainerService) {
            say("info", `${where}: /exports/manifest.json says noContainerService; no unit`);
            continue;
          }
          if (ex) {
            const runtime = tagSettings.runtime === "systemd" ? normalizeRuntime("runc") : tagSettings.runtime;
            extract = extractArgv(ocigen, name, tag, configPath, undefined, true);
            const vars = atomicVariables({
              base, name, tag, bundleDir: unitDir(cfg.extractsDir, base), runtime, containerId: containerId(base),
              configDigest: img.configDescriptor.digest, ocigen: ocigen[0],
              hostUid: input.hostIds.uid, hostGid: input.hostIds.gid,
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
          const unitInput: UnitInput = {
            name, tag, base, layoutDir: dir, extractsDir: cfg.extractsDir, runDir: cfg.runDir, volumesDir: cfg.volumesDir,
            image: img, settings: tagSettings, ocigen, configPath, extractedRootfs,
            warn: (m) => say("warn", `${where}: ${m}`),
          };
          ({ text, extract } = renderUnitAndArgv(unitInput));
          stop = releaseArgv(ocigen, name, tag, configPath);
        }
        const companion = extractUnitName(base);
        const extractText = renderExtractUnit({ name, tag, base, layoutDir: dir, extractsDir: cfg.extractsDir, volumesDir: cfg.volumesDir ?? DEFAULT_VOLUMES_DIR }, extract!, stop);
        checkUnitLines(text, unit);
        checkUnitLines(extractText, companion);
        const g: GeneratedUnit = {
          name, tag, unit, path: join(outDir, unit), text, atomic, ports: exposedPorts(img.config),
          manifest: img.manifestDescriptor.digest, tagManifest: t.tagManifest ?? img.manifestDescriptor.digest,
          ...(t.pin ? { pin: { manifest: t.pin.manifest, from: t.pin.from, at: t.pin.at, reason: t.pin.reason } } : {}),
          extractUnit: { unit: companion, path: join(outDir, companion), text: extractText },
        };
        if (enabled(cfg, tagSettings, img, where, (m) => say("warn", m))) g.wantsLink = join(outDir, `${cfg.wantedBy}.wants`, unit);
        candidates.push(g);
      } catch (e) {
        if (t.base) failedUnits.add(t.base + ".service");
        const msg = (e as Error).message ?? String(e);
        say("error", `${where}: ${e instanceof OcigenError || msg ? msg : String(e)}`);
      }
    }
    if (units === 0 && noCommand.length > 0) {
      say("error", `layout ${name}: no command: no tag's image config has Entrypoint or Cmd (${noCommand.join(", ")})`);
    }
  }

  // Collisions: every claimant is reported, none is planned.
  const byUnit = new Map<string, GeneratedUnit[]>();
  for (const c of candidates) byUnit.set(c.unit, [...(byUnit.get(c.unit) ?? []), c]);
  const units: GeneratedUnit[] = [];
  for (const [unit, list] of [...byUnit.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (list.length > 1 || failedUnits.has(unit)) {
      const who = list.map((c) => `${c.name}:${c.tag}`);
      if (failedUnits.has(unit)) who.push("a broken tag");
      for (const c of list) {
        say("error", `layout ${c.name} tag ${c.tag}: unit name ${unit} collides with ${who.filter((w) => w !== `${c.name}:${c.tag}`).join(", ")}; neither is generated`);
      }
      continue;
    }
    units.push(list[0]);
  }
  return { units, errors, messages };
}
