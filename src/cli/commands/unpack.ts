/**
 * Unpack verbs with umoci's names and flags: `unpack`, `raw unpack`,
 * `raw runtime-config`.
 *
 * @module
 */
import fs from "node:fs";
import { type Command, Option } from "commander";
import { OcigenError, shortDigest, wrapIo } from "../../errors.ts";
import { Layout } from "../../oci/layout.ts";
import { addIdMapOptions, idMapArgs, imageArg } from "../args.ts";
import { checkLayerCount } from "../../oci/validate.ts";
import { log } from "../../log.ts";
import { type Progress, start as startProgress } from "../../progress.ts";
import type { UnpackOptions } from "../../layer/unpack.ts";
import type { Descriptor } from "../../oci/types.ts";
import { zstdWindowMaxOption } from "../zstd-window.ts";
import { checkImagePlatform, foreignPlatform, formatPlatform } from "../../oci/platform.ts";
import { platformOption } from "../platform.ts";
import { settings } from "../context.ts";
// The unpack engine (layer/unpack.ts, layer/apply.ts) and the config
// converter are imported by the actions: registering the verbs stays cheap.

type Opts = Record<string, unknown>;

/**
 * Opens `--image` and resolves it for `--platform` (default: the host's).
 * `forPlatform`: an image made for another platform is refused when
 * `--platform` names the one wanted; without it, it is unpacked with a
 * warning, as umoci unpacks any image (a foreign root filesystem is only
 * files; the generator is what refuses to run one).
 */
async function openImage(o: Opts, forPlatform = false) {
  const img = o.image as string;
  const { dir, tag } = imageArg(o);
  const platform = platformOption(o.platform as string | undefined);
  const layout = await Layout.open(dir);
  const image = await layout.resolve(tag, platform);
  if (forPlatform && o.platform !== undefined) checkImagePlatform(image.config, platform, img);
  else if (forPlatform) {
    const got = foreignPlatform(image.config, platform);
    if (got) log.warn(`${img}: the image is for ${formatPlatform(got)}, not ${formatPlatform(platform)}: unpacking it anyway (--platform refuses it)`);
  }
  return { layout, image, name: img };
}

function unpackOptions(o: Opts, p: Progress, runningAsRoot: () => boolean): UnpackOptions {
  const { uidMap, gidMap } = idMapArgs(o);
  const rootless = Boolean(o.rootless) || !runningAsRoot();
  if (!o.rootless && rootless) log.info("not running as root: unpacking in rootless mode");
  return {
    rootless,
    uidMap,
    gidMap,
    keepDirlinks: Boolean(o.keepDirlinks),
    zstdWindowMax: zstdWindowMaxOption(o.zstdWindowMax),
    lookahead: settings().lookahead,
    inflate: settings().inflate,
    tarKernel: o.tarKernel === undefined ? undefined : Boolean(o.tarKernel),
    onLayer: (i: number, n: number, d: Descriptor) => {
      p.update({ layer: d.digest, layerIndex: i - 1, layers: n });
      log.info(`unpacking layer ${i}/${n} ${shortDigest(d.digest)}`);
    },
    onProgress: (bytes: number, entries: number) => p.add(bytes, entries),
  };
}

/** Runs an unpack with a progress line (drawn only on a TTY) sized by the layers' compressed bytes. */
async function withLine<T>(layers: Descriptor[], fn: (p: Progress) => Promise<T>): Promise<T> {
  const p = startProgress("unpack", { total: layers.reduce((a, l) => a + (l.size || 0), 0), layers: layers.length });
  try {
    return await fn(p);
  } finally {
    p.done();
  }
}

function addUnpackFlags(c: Command): Command {
  return addIdMapOptions(c.option("--rootless", "rootless unpack: do not apply owners, devices become placeholders (automatic when not root)"))
    .option("--keep-dirlinks", "keep existing symlinks to directories when a layer has a directory of that name")
    .option("--zstd-window-max <MiB>", "largest zstd window a layer may use, in MiB (default 128, at most 2048)")
    .option("--platform <os/arch[/variant]>", "platform to pick from a multi-platform image, e.g. linux/arm64/v8 (default: this host's); an image for another platform is refused")
    // measurement switches
    .addOption(new Option("--tar-kernel", "read layer tars with the WebAssembly tar kernel (the default)").hideHelp())
    .addOption(new Option("--no-tar-kernel", "read layer tars with the TypeScript parser").hideHelp());
}

/**
 * Registers `unpack`, `raw unpack` and `raw runtime-config`.
 *
 * @example
 * ```ts
 * const program = new Command("ocigen");
 * register(program, program.command("raw"));
 * ```
 */
export function register(program: Command, raw: Command): void {
  addUnpackFlags(
    program
      .command("unpack")
      .description("unpack an image into a runtime bundle (rootfs, config.json, umoci.json, manifest)")
      .requiredOption("--image <layout[:tag]>", "image to unpack")
      .argument("<bundle>", "bundle directory to create (must not exist, or be empty)")
      .addOption(
        new Option(
          "--bundle-manifest <which>",
          "change manifests to write: umoci's sha256_<digest>.mtree (read by umoci repack, gomtree), ocigen's ocigen.mtree.jsonl (lets ocigen repack skip unchanged files unread), or both",
        ).choices(["both", "umoci", "ocigen"]).default("both"),
      ),
  ).action(async (bundle: string, o: Opts) => {
    const [{ layout, image, name }, { unpackBundle }, { runningAsRoot }] = await Promise.all([
      openImage(o, true),
      import("../../layer/unpack.ts"),
      import("../../layer/apply.ts"),
    ]);
    checkLayerCount(image, name);
    await withLine(image.manifest.layers, (p) =>
      unpackBundle(layout, image, bundle, {
        ...unpackOptions(o, p, runningAsRoot),
        bundleManifests: o.bundleManifest as "both" | "umoci" | "ocigen",
      }));
  });

  addUnpackFlags(
    raw
      .command("unpack")
      .description("unpack an image's layers into a root filesystem directory")
      .requiredOption("--image <layout[:tag]>", "image to unpack")
      .argument("<rootfs>", "directory to create (must not exist)"),
  ).action(async (rootfs: string, o: Opts) => {
    const [{ layout, image, name }, { unpackRootfs }, { runningAsRoot }] = await Promise.all([
      openImage(o, true),
      import("../../layer/unpack.ts"),
      import("../../layer/apply.ts"),
    ]);
    checkLayerCount(image, name);
    await withLine(image.manifest.layers, (p) => unpackRootfs(layout, image, rootfs, { ...unpackOptions(o, p, runningAsRoot), rootlessOwnerXattrs: true }));
  });

  const runtimeConfig = raw
    .command("runtime-config")
    .alias("config")
    .description("write the runtime-spec config.json converted from an image's config")
    .requiredOption("--image <layout[:tag]>", "image whose config to convert")
    .option("--rootfs <dir>", "root filesystem to resolve user and group names in (read safely inside it)")
    .option("--rootless", "generate a rootless configuration");
  addIdMapOptions(runtimeConfig)
    .argument("<config>", "file to write")
    .action(async (out: string, o: Opts) => {
      const [{ image }, { convertConfig }] = await Promise.all([openImage(o), import("../../layer/convert.ts")]);
      const { uidMap, gidMap } = idMapArgs(o);
      const spec = convertConfig(image.config, {
        rootfs: o.rootfs as string | undefined,
        rootless: Boolean(o.rootless),
        uidMappings: uidMap,
        gidMappings: gidMap,
        unresolvedUserAsRoot: { warn: log.warn },
      });
      try {
        fs.writeFileSync(out, JSON.stringify(spec, null, "\t") + "\n", { mode: 0o644 });
      } catch (e) {
        throw wrapIo(e, "write", out);
      }
    });
}
