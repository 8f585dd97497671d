/**
 * Verbs `repack`, `insert` and `raw add-layer` (umoci's flag names).
 *
 * @module
 */
import { type Command, Option } from "commander";
import { OcigenError } from "../../errors.ts";
import { Layout } from "../../oci/layout.ts";
import { addIdMapOptions, asUsage, collect, historyArgs, idMapArgs, imageArg, tagArg } from "../args.ts";
import { settings } from "../context.ts";
import type { HistoryOptions } from "../../repack/commit.ts";
import type { GzipMode } from "../../compress/encode.ts";
// The layer writer, the compressors and the repack machinery are imported by
// the actions (first thing, so errors come in the same order): registering
// the verbs stays cheap.
import { checkDate } from "../../oci/image.ts";

function addHistoryOptions(cmd: Command): Command {
  return cmd
    .option("--no-history", "do not create a history entry")
    .option("--history.author <author>", "author of the history entry")
    .option("--history.comment <text>", "comment of the history entry")
    .option("--history.created <date>", "creation date of the history entry (RFC 3339)")
    .option("--history.created_by <text>", "created_by of the history entry");
}

function addCompressOption(cmd: Command): Command {
  return cmd.addOption(new Option("--compress <kind>", "layer compression").choices(["gzip", "zstd", "none", "auto"]).default("gzip"));
}

function historyFrom(o: Record<string, unknown>): HistoryOptions {
  const { none, values } = historyArgs(o);
  const h: HistoryOptions = { ...values };
  if (h.created !== undefined) asUsage(() => checkDate(h.created!, "--history.created"));
  if (none) h.none = true;
  return h;
}

function imageOf(o: { image?: string }): { dir: string; tag: string } {
  return imageArg(o);
}

/** What every layer-writing verb passes down: history, and from the settings the gzip writer and `$SOURCE_DATE_EPOCH`. */
function layerArgs(o: Record<string, unknown>): { history: HistoryOptions; gzip: GzipMode; sourceDateEpoch: number | undefined } {
  const s = settings();
  return { history: historyFrom(o), gzip: s.gzip, sourceDateEpoch: s.sourceDateEpoch };
}

/**
 * Registers `repack`, `insert` and `raw add-layer` on the program (and its `raw` command).
 *
 * @example
 * ```ts
 * register(program, program.command("raw"));
 * ```
 */
export function register(program: Command, raw: Command): void {
  const repack = program
    .command("repack")
    .description("repack an OCI runtime bundle into a new layer and tag")
    .requiredOption("--image <layout[:tag]>", "layout and tag to write")
    .argument("<bundle>", "bundle directory made by ocigen unpack (or umoci unpack)")
    .option("--mask-path <path>", "path whose changes (with those below it) are left out of the layer (repeatable)", collect)
    .option("--no-mask-volumes", "do not mask the image's volumes (include their changes in the layer)")
    .option("--refresh-bundle", "update the bundle metadata to refer to the new image");
  addCompressOption(addHistoryOptions(repack));
  repack.action(async (bundle: string, o: Record<string, unknown>) => {
    const [{ parseCompression }, { repackBundle }] = await Promise.all([
      import("../../compress/encode.ts"),
      import("../../repack/repack.ts"),
    ]);
    const { dir, tag } = imageOf(o as { image?: string });
    const layout = await Layout.open(dir);
    await repackBundle(layout, bundle, {
      tag,
      ...layerArgs(o),
      compression: parseCompression(o.compress as string),
      maskPaths: (o.maskPath as string[] | undefined) ?? [],
      maskVolumes: o.maskVolumes !== false,
      refreshBundle: Boolean(o.refreshBundle),
    });
  });

  const insert = program
    .command("insert")
    .description("add a layer holding one file or tree (or one whiteout)")
    .requiredOption("--image <layout[:tag]>", "layout and tag to start from")
    .option("--tag <new-tag>", "new tag name (default: overwrite the --image tag)")
    .option("--opaque", "make TARGET opaque (hide what lower layers have below it)")
    .option("--whiteout", "add a whiteout for TARGET instead of content");
  addIdMapOptions(insert, {
    uid: "uid mapping: inserted files owned by host id HOST get image id CONTAINER (repeatable)",
    gid: "gid mapping, as --uid-map (repeatable)",
  })
    .option("--rootless", "rootless insert: the calling user is the image's root; user.rootlesscontainers xattrs give owners")
    .argument("[src]", "host file or directory")
    .argument("[target]", "path inside the image");
  addCompressOption(addHistoryOptions(insert));
  insert.action(async (a: string | undefined, b: string | undefined, o: Record<string, unknown>) => {
    const [{ parseCompression }, { insertPath, insertWhiteout }] = await Promise.all([
      import("../../compress/encode.ts"),
      import("../../repack/insert.ts"),
    ]);
    const { dir, tag } = imageOf(o as { image?: string });
    const layout = await Layout.open(dir);
    const base = {
      tag,
      newTag: tagArg(o),
      ...layerArgs(o),
      compression: parseCompression(o.compress as string),
      ...idMapArgs(o),
      rootless: Boolean(o.rootless),
    };
    if (o.whiteout) {
      if (a === undefined || b !== undefined) throw new OcigenError("EUSAGE", "insert --whiteout takes exactly one argument: TARGET");
      if (a === "") throw new OcigenError("EUSAGE", "insert --whiteout: TARGET must not be empty");
      if (o.opaque) throw new OcigenError("EUSAGE", "insert: --whiteout and --opaque exclude each other");
      await insertWhiteout(layout, a, base);
      return;
    }
    if (a === undefined || b === undefined) throw new OcigenError("EUSAGE", "insert takes two arguments: SRC TARGET");
    if (a === "" || b === "") throw new OcigenError("EUSAGE", `insert: ${a === "" ? "SRC" : "TARGET"} must not be empty`);
    await insertPath(layout, a, b, { ...base, opaque: Boolean(o.opaque) });
  });

  const addLayer = raw
    .command("add-layer")
    .description("add an uncompressed tar archive as a new layer")
    .requiredOption("--image <layout[:tag]>", "layout and tag to start from")
    .option("--tag <new-tag>", "new tag name (default: overwrite the --image tag)")
    .argument("<layer>", "uncompressed tar file");
  addCompressOption(addHistoryOptions(addLayer));
  addLayer.action(async (file: string, o: Record<string, unknown>) => {
    const [{ parseCompression }, { addTarLayer }] = await Promise.all([
      import("../../compress/encode.ts"),
      import("../../repack/insert.ts"),
    ]);
    const { dir, tag } = imageOf(o as { image?: string });
    const layout = await Layout.open(dir);
    await addTarLayer(layout, file, {
      tag,
      newTag: tagArg(o),
      ...layerArgs(o),
      compression: parseCompression(o.compress as string),
    });
  });
}
