/**
 * Image-level operations on a layout: create an empty image (`new`), change
 * an image's config (`config`), copy and remove tags. Each writes new
 * config/manifest blobs and moves the tag under the layout lock, so a failed
 * operation leaves `index.json` as it was.
 *
 * @module
 */
import { OcigenError } from "../errors.ts";
import { log } from "../log.ts";
import type { Layout, ResolvedImage } from "./layout.ts";
import { isIndexMediaType, isManifestMediaType } from "./media-type.ts";
import { hostPlatform } from "./platform.ts";
import { validateTag } from "./refname.ts";
import { type Descriptor, type History, type ImageConfig, type ImageManifest, MediaType, REF_NAME } from "./types.ts";

/** Options for {@linkcode newImage}. */
export interface NewImageOptions {
  architecture?: string;
  os?: string;
  /** RFC 3339 creation time (default: now). */
  created?: string;
}

/** A history entry to add; absent fields get defaults. */
export interface HistoryOptions {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
}

/** Keys accepted by `--clear` (umoci's names). */
export const CLEAR_KEYS = [
  "config.labels",
  "config.volume",
  "config.env",
  "config.exposedports",
  "config.entrypoint",
  "config.cmd",
  "manifest.annotations",
] as const;

/** Changes for {@linkcode configImage}; list options add to what is there, after `clear`. */
export interface ConfigChanges {
  user?: string;
  exposedPorts?: string[];
  /** `KEY=VALUE`; replaces an existing KEY. */
  env?: string[];
  /** Replaces the entrypoint when given. */
  entrypoint?: string[];
  /** Replaces the command when given. */
  cmd?: string[];
  volumes?: string[];
  /** `KEY=VALUE`. */
  labels?: string[];
  workingDir?: string;
  stopSignal?: string;
  created?: string;
  author?: string;
  architecture?: string;
  os?: string;
  /** `KEY=VALUE` manifest annotations. */
  manifestAnnotations?: string[];
  /** Keys of {@linkcode CLEAR_KEYS} to empty before adding. */
  clear?: string[];
}

/**
 * Checks an RFC 3339 date-time as the image-spec requires, returning it.
 *
 * @example
 * ```ts
 * checkDate("2024-01-01T00:00:00Z", "--created");
 * ```
 */
export function checkDate(s: string, what: string): string {
  if (!/^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.test(s) || Number.isNaN(Date.parse(s))) {
    throw new OcigenError("EINVALID", `Invalid ${what} ${JSON.stringify(s)}: expected an RFC 3339 date-time`);
  }
  return s;
}

/**
 * The current time as an RFC 3339 date-time (UTC, milliseconds).
 *
 * @example
 * ```ts
 * nowRFC3339(); // "2024-05-06T07:08:09.123Z"
 * ```
 */
export function nowRFC3339(): string {
  return new Date().toISOString();
}

function kv(s: string, what: string): [string, string] {
  const i = s.indexOf("=");
  if (i < 0) throw new OcigenError("EINVALID", `Invalid ${what} ${JSON.stringify(s)}: must contain '='`);
  return [s.slice(0, i), s.slice(i + 1)];
}

/**
 * Creates an empty image (config with no layers for the host platform,
 * manifest with zero layers) and tags it, replacing an existing tag as umoci
 * does. Returns the manifest descriptor.
 *
 * @example
 * ```ts
 * await newImage(layout, "base");
 * ```
 */
export async function newImage(layout: Layout, tag: string, opts: NewImageOptions = {}): Promise<Descriptor> {
  validateTag(tag);
  const host = hostPlatform();
  const config: ImageConfig = {
    created: opts.created !== undefined ? checkDate(opts.created, "--created") : nowRFC3339(),
    architecture: opts.architecture ?? host.architecture,
    os: opts.os ?? host.os,
    config: {},
    rootfs: { type: "layers", diff_ids: [] },
  };
  return await layout.withLock(async () => {
    const cfg = await layout.writeJSON(config, MediaType.Config);
    const manifest: ImageManifest = { schemaVersion: 2, mediaType: MediaType.Manifest, config: cfg, layers: [] };
    const m = await layout.writeJSON(manifest, MediaType.Manifest);
    await layout.setTag(tag, m);
    return m;
  });
}

/**
 * Applies {@linkcode ConfigChanges} to a config (a modified copy) and the
 * manifest annotations. Pure; exposed for tests and library users.
 *
 * @example
 * ```ts
 * const { config } = applyConfigChanges(img.config, {}, { env: ["A=1"], cmd: ["/bin/sh"] });
 * ```
 */
export function applyConfigChanges(
  config0: ImageConfig,
  annotations0: Record<string, string> | undefined,
  ch: ConfigChanges,
): { config: ImageConfig; annotations: Record<string, string> | undefined } {
  const config: ImageConfig = structuredClone(config0);
  const c = (config.config ??= {});
  let annotations = annotations0 ? { ...annotations0 } : undefined;
  for (const k of ch.clear ?? []) {
    switch (k) {
      case "config.labels":
        delete c.Labels;
        break;
      case "config.volume":
        delete c.Volumes;
        break;
      case "config.env":
        delete c.Env;
        break;
      case "config.exposedports":
        delete c.ExposedPorts;
        break;
      case "config.entrypoint":
        delete c.Entrypoint;
        break;
      case "config.cmd":
        delete c.Cmd;
        break;
      case "manifest.annotations":
        annotations = undefined;
        break;
      default:
        throw new OcigenError("EINVALID", `Unknown key to --clear: ${k} (one of ${CLEAR_KEYS.join(", ")})`);
    }
  }
  if (ch.user !== undefined) c.User = ch.user;
  for (const p of ch.exposedPorts ?? []) (c.ExposedPorts ??= {})[p] = {};
  for (const e of ch.env ?? []) {
    const [k] = kv(e, "--config.env");
    const env = (c.Env ??= []);
    const i = env.findIndex((x) => x === k || x.startsWith(k + "="));
    if (i >= 0) env[i] = e;
    else env.push(e);
  }
  if (ch.entrypoint !== undefined) c.Entrypoint = [...ch.entrypoint];
  if (ch.cmd !== undefined) c.Cmd = [...ch.cmd];
  for (const v of ch.volumes ?? []) (c.Volumes ??= {})[v] = {};
  for (const l of ch.labels ?? []) {
    const [k, v] = kv(l, "--config.label");
    (c.Labels ??= {})[k] = v;
  }
  if (ch.workingDir !== undefined) c.WorkingDir = ch.workingDir;
  if (ch.stopSignal !== undefined) c.StopSignal = ch.stopSignal;
  if (ch.created !== undefined) config.created = checkDate(ch.created, "--created");
  if (ch.author !== undefined) config.author = ch.author;
  if (ch.architecture !== undefined) config.architecture = ch.architecture;
  if (ch.os !== undefined) config.os = ch.os;
  for (const a of ch.manifestAnnotations ?? []) {
    const [k, v] = kv(a, "--manifest.annotation");
    (annotations ??= {})[k] = v;
  }
  return { config, annotations };
}

/**
 * Changes the config of the image tagged `tag`: writes a new config and
 * manifest, adds an empty-layer history entry (unless `history` is false)
 * and points `newTag` (default: `tag`) at it. Everything happens under the
 * layout lock, after the source image resolved and the changes validated.
 * Returns the new manifest descriptor.
 *
 * @example
 * ```ts
 * await configImage(layout, "latest", { entrypoint: ["/bin/app"], env: ["MODE=prod"] }, { newTag: "prod" });
 * ```
 */
export async function configImage(
  layout: Layout,
  tag: string,
  changes: ConfigChanges,
  opts: { newTag?: string; history?: HistoryOptions | false } = {},
): Promise<Descriptor> {
  validateTag(tag);
  const target = opts.newTag ?? tag;
  validateTag(target);
  const hist = opts.history;
  if (hist && hist.created !== undefined) checkDate(hist.created, "--history.created");
  return await layout.withLock(async () => {
    const img = await layout.resolve(tag);
    const { config, annotations } = applyConfigChanges(img.config, img.manifest.annotations, changes);
    if (target === tag && (await layout.readIndex()).manifests.some((d) => d.annotations?.[REF_NAME] === tag && isIndexMediaType(d.mediaType))) {
      log.warn(`tag ${tag} named a multi-platform index; it now names only the ${config.os}/${config.architecture} image`);
    }
    if (hist !== false) {
      const h: History = {
        created: hist?.created ?? nowRFC3339(),
        created_by: hist?.created_by ?? "ocigen config",
      };
      const author = hist?.author ?? config.author;
      if (author !== undefined) h.author = author;
      if (hist?.comment !== undefined) h.comment = hist.comment;
      h.empty_layer = true;
      config.history = [...(config.history ?? []), h];
    }
    return await writeImage(layout, img, config, annotations, target);
  });
}

async function writeImage(
  layout: Layout,
  img: ResolvedImage,
  config: ImageConfig,
  annotations: Record<string, string> | undefined,
  tag: string,
): Promise<Descriptor> {
  const cfg = await layout.writeJSON(config, img.configDescriptor.mediaType || MediaType.Config);
  const manifest: ImageManifest = { ...img.manifest, config: cfg };
  if (annotations && Object.keys(annotations).length) manifest.annotations = annotations;
  else delete manifest.annotations;
  const mt = img.manifest.mediaType ?? img.manifestDescriptor.mediaType ?? MediaType.Manifest;
  if (manifest.mediaType === undefined && mt === MediaType.Manifest) manifest.mediaType = mt;
  const m = await layout.writeJSON(manifest, mt);
  await layout.setTag(tag, m);
  return m;
}

/**
 * Points `newTag` at what `tag` names: the same `index.json` entry (so a
 * multi-platform index stays one), or for nested or pre-1.0 tags the
 * manifest `tag` resolves to. The source blob is verified first.
 *
 * @example
 * ```ts
 * await copyTag(layout, "latest", "v1.2");
 * ```
 */
export async function copyTag(layout: Layout, tag: string, newTag: string): Promise<Descriptor> {
  validateTag(tag);
  validateTag(newTag);
  return await layout.withLock(async () => {
    const idx = await layout.readIndex();
    const top = idx.manifests.filter((d) => d.annotations?.[REF_NAME] === tag);
    let d: Descriptor;
    if (top.length === 1) {
      const { annotations, ...rest } = top[0];
      const others = { ...annotations };
      delete others[REF_NAME];
      d = Object.keys(others).length ? { ...rest, annotations: others } : rest;
      if (isManifestMediaType(d.mediaType)) await layout.readConfig((await layout.readManifest(d)).config);
      else if (isIndexMediaType(d.mediaType)) await layout.readIndexBlob(d);
      else await layout.verifyBlob(d);
    } else {
      const img = await layout.resolve(tag);
      const { annotations: _a, platform: _p, ...rest } = img.manifestDescriptor;
      d = rest;
    }
    await layout.setTag(newTag, d);
    return d;
  });
}
