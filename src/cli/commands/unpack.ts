/**
 * Unpack verbs with umoci's names and flags: `unpack`, `raw unpack`,
 * `raw runtime-config`.
 *
 * @module
 */
import fs from "node:fs";
import process from "node:process";
import type { Command } from "commander";
import { OcigenError, shortDigest, wrapIo } from "../../errors.ts";
import { Layout, parseImageRef } from "../../oci/layout.ts";
import { validateTag } from "../../oci/refname.ts";
import { log, progressEnabled } from "../../log.ts";
import { type IdMapping, parseIdMap } from "../../layer/idmap.ts";
import { type UnpackOptions, unpackBundle, unpackRootfs } from "../../layer/unpack.ts";
import { convertConfig } from "../../layer/convert.ts";
import { runningAsRoot } from "../../layer/apply.ts";
import type { Descriptor } from "../../oci/types.ts";

type Opts = Record<string, unknown>;

const collect = (v: string, acc: string[] | undefined) => [...(acc ?? []), v];

async function openImage(o: Opts) {
  const img = o.image as string | undefined;
  if (!img) throw new OcigenError("EUSAGE", "--image LAYOUT[:TAG] is required");
  const { dir, tag } = parseImageRef(img);
  validateTag(tag);
  const layout = await Layout.open(dir);
  return { layout, image: await layout.resolve(tag) };
}

function unpackOptions(o: Opts): UnpackOptions {
  const uidMap: IdMapping[] = ((o.uidMap as string[] | undefined) ?? []).map(parseIdMap);
  const gidMap: IdMapping[] = ((o.gidMap as string[] | undefined) ?? []).map(parseIdMap);
  const rootless = Boolean(o.rootless) || !runningAsRoot();
  if (!o.rootless && rootless) log.info("not running as root: unpacking in rootless mode");
  const show = progressEnabled();
  return {
    rootless,
    uidMap,
    gidMap,
    keepDirlinks: Boolean(o.keepDirlinks),
    onLayer: (i: number, n: number, d: Descriptor) => {
      if (show) process.stderr.write(`\runpacking layer ${i}/${n} ${shortDigest(d.digest)}\x1b[K${i === n ? "\n" : ""}`);
      else log.info(`unpacking layer ${i}/${n} ${shortDigest(d.digest)}`);
    },
  };
}

function addUnpackFlags(c: Command): Command {
  return c
    .option("--rootless", "rootless unpack: do not apply owners, devices become placeholders (automatic when not root)")
    .option("--uid-map <container:host:size>", "uid mapping (repeatable)", collect)
    .option("--gid-map <container:host:size>", "gid mapping (repeatable)", collect)
    .option("--keep-dirlinks", "keep existing symlinks to directories when a layer has a directory of that name");
}

/** Registers `unpack`, `raw unpack` and `raw runtime-config`. */
export function register(program: Command, raw: Command): void {
  addUnpackFlags(
    program
      .command("unpack")
      .description("unpack an image into a runtime bundle (rootfs, config.json, umoci.json, manifest)")
      .requiredOption("--image <layout[:tag]>", "image to unpack")
      .argument("<bundle>", "bundle directory to create (must not exist, or be empty)"),
  ).action(async (bundle: string, o: Opts) => {
    const { layout, image } = await openImage(o);
    await unpackBundle(layout, image, bundle, unpackOptions(o));
  });

  addUnpackFlags(
    raw
      .command("unpack")
      .description("unpack an image's layers into a root filesystem directory")
      .requiredOption("--image <layout[:tag]>", "image to unpack")
      .argument("<rootfs>", "directory to create (must not exist)"),
  ).action(async (rootfs: string, o: Opts) => {
    const { layout, image } = await openImage(o);
    await unpackRootfs(layout, image, rootfs, unpackOptions(o));
  });

  raw
    .command("runtime-config")
    .alias("config")
    .description("write the runtime-spec config.json converted from an image's config")
    .requiredOption("--image <layout[:tag]>", "image whose config to convert")
    .option("--rootfs <dir>", "root filesystem to resolve user and group names in (read safely inside it)")
    .option("--rootless", "generate a rootless configuration")
    .option("--uid-map <container:host:size>", "uid mapping (repeatable)", collect)
    .option("--gid-map <container:host:size>", "gid mapping (repeatable)", collect)
    .argument("<config>", "file to write")
    .action(async (out: string, o: Opts) => {
      const { image } = await openImage(o);
      const spec = convertConfig(image.config, {
        rootfs: o.rootfs as string | undefined,
        rootless: Boolean(o.rootless),
        uidMappings: ((o.uidMap as string[] | undefined) ?? []).map(parseIdMap),
        gidMappings: ((o.gidMap as string[] | undefined) ?? []).map(parseIdMap),
      });
      try {
        fs.writeFileSync(out, JSON.stringify(spec, null, "\t") + "\n", { mode: 0o644 });
      } catch (e) {
        throw wrapIo(e, "write", out);
      }
    });
}
