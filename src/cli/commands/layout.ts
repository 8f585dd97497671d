/**
 * Layout verbs with umoci's names, flags and output: `init`, `new`, `ls`,
 * `stat`, `tag`, `rm`, `gc`, `config`.
 *
 * @module
 */
import process from "node:process";
import type { Command } from "commander";
import { OcigenError } from "../../errors.ts";
import { Layout } from "../../oci/layout.ts";
import { CLEAR_KEYS, type ConfigChanges, configImage, copyTag, type HistoryOptions, newImage } from "../../oci/image.ts";
import { formatStatTable, imageStat } from "../../oci/stat.ts";
import { gcLayout } from "../../oci/gc.ts";
import { start as startProgress } from "../../progress.ts";
import { validateTag } from "../../oci/refname.ts";
import { log } from "../../log.ts";
import { collect, historyArgs, imageArg, layoutArg } from "../args.ts";
import { gcJson, lsJson } from "../json.ts";

type Opts = Record<string, unknown>;


function out(s: string): void {
  process.stdout.write(s);
}

/** Registers `init`, `new`, `ls`, `stat`, `tag`, `rm`, `gc` and `config`. */
export function register(program: Command, _raw: Command): void {
  program
    .command("init")
    .description("create a new, empty OCI image layout")
    .requiredOption("--layout <layout>", "path of the layout to create")
    .action(async (o: Opts) => {
      await Layout.init(layoutArg(o));
    });

  program
    .command("new")
    .description("create a blank tagged image (empty config, no layers)")
    .requiredOption("--image <layout:tag>", "layout and tag of the new image")
    .action(async (o: Opts) => {
      const { dir, tag } = imageArg(o);
      await newImage(await Layout.open(dir), tag);
    });

  program
    .command("ls")
    .alias("list")
    .description("list the tags of a layout, one per line")
    .requiredOption("--layout <layout>", "path of the layout")
    .option("--json", "print the tags with the manifest each resolves to as JSON")
    .action(async (o: Opts) => {
      const layout = await Layout.open(layoutArg(o));
      const tags = await layout.listTags();
      if (!o.json) {
        out(tags.map((t) => t + "\n").join(""));
        return;
      }
      const rows = [];
      for (const tag of tags) {
        try {
          rows.push({ tag, image: await layout.resolve(tag) });
        } catch (e) {
          rows.push({ tag, error: (e as Error).message });
        }
      }
      out(JSON.stringify(lsJson(layoutArg(o), rows)) + "\n");
    });

  program
    .command("stat")
    .description("show the history and layers of an image")
    .requiredOption("--image <layout[:tag]>", "layout and tag of the image")
    .option("--json", "print machine-readable JSON")
    .action(async (o: Opts) => {
      const { dir, tag } = imageArg(o);
      const img = await (await Layout.open(dir)).resolve(tag);
      const s = imageStat(img);
      out(o.json ? JSON.stringify(s) + "\n" : formatStatTable(s));
    });

  program
    .command("tag")
    .description("point a new tag at an image")
    .requiredOption("--image <layout[:tag]>", "layout and existing tag")
    .argument("<new-tag>", "the new tag")
    .action(async (newTag: string, o: Opts) => {
      const { dir, tag } = imageArg(o);
      validateTag(newTag);
      await copyTag(await Layout.open(dir), tag, newTag);
    });

  program
    .command("rm")
    .alias("remove")
    .description("remove a tag from a layout")
    .requiredOption("--image <layout[:tag]>", "layout and tag to remove")
    .action(async (o: Opts) => {
      const { dir, tag } = imageArg(o);
      await (await Layout.open(dir)).removeTag(tag);
    });

  program
    .command("gc")
    .description("delete unreferenced blobs, verifying the ones kept")
    .requiredOption("--layout <layout>", "path of the layout")
    .option("--json", "print what was kept and removed as JSON")
    .action(async (o: Opts) => {
      // progress (TTY only): bytes and blobs verified
      const p = startProgress("gc: verifying");
      let bytes = 0;
      let blobs = 0;
      let r;
      try {
        r = await gcLayout(await Layout.open(layoutArg(o)), {
          onVerified: (d) => p.update({ bytes: (bytes += d.size), entries: ++blobs }),
        });
      } finally {
        p.done();
      }
      log.info(`gc: kept ${r.kept.length} blobs, removed ${r.removed.length} blobs and ${r.tempRemoved.length} temporary files`);
      if (o.json) out(JSON.stringify(gcJson(layoutArg(o), r)) + "\n");
    });

  const config = program
    .command("config")
    .description("change the image config: new config and manifest blobs, history entry, tag")
    .requiredOption("--image <layout[:tag]>", "layout and tag to start from")
    .option("--tag <new-tag>", "new tag name (default: overwrite the --image tag)")
    .option("--config.user <user>", "user[:group] the process runs as")
    .option("--config.exposedports <port>", "exposed port, e.g. 80/tcp (repeatable)", collect)
    .option("--config.env <KEY=VALUE>", "environment variable, replacing KEY (repeatable)", collect)
    .option("--config.entrypoint <arg>", "entrypoint; repeat for each argument", collect)
    .option("--config.cmd <arg>", "command; repeat for each argument", collect)
    .option("--config.volume <path>", "volume (repeatable)", collect)
    .option("--config.label <KEY=VALUE>", "label (repeatable)", collect)
    .option("--config.workingdir <dir>", "working directory")
    .option("--config.stopsignal <signal>", "stop signal")
    .option("--created <date>", "creation date of the image (RFC 3339)")
    .option("--author <author>", "author of the image (and of the history entry)")
    .option("--architecture <arch>", "architecture of the image")
    .option("--os <os>", "operating system of the image")
    .option("--manifest.annotation <KEY=VALUE>", "manifest annotation (repeatable)", collect)
    .option("--clear <key>", `empty a list before adding (repeatable): ${CLEAR_KEYS.join(", ")}`, collect)
    .option("--no-history", "do not create a history entry")
    .option("--history.author <author>", "author of the history entry")
    .option("--history.comment <text>", "comment of the history entry")
    .option("--history.created <date>", "creation date of the history entry (RFC 3339)")
    .option("--history.created_by <text>", "created_by of the history entry");
  config.action(async (o: Opts) => {
    const { dir, tag } = imageArg(o);
    historyArgs(o);
    const s = (k: string) => o[k] as string | undefined;
    const a = (k: string) => o[k] as string[] | undefined;
    const newTag = s("tag");
    if (newTag !== undefined) validateTag(newTag);
    for (const k of a("clear") ?? []) {
      if (!(CLEAR_KEYS as readonly string[]).includes(k)) {
        throw new OcigenError("EUSAGE", `Unknown key to --clear: ${k} (one of ${CLEAR_KEYS.join(", ")})`);
      }
    }
    const changes: ConfigChanges = {
      user: s("config.user"),
      exposedPorts: a("config.exposedports"),
      env: a("config.env"),
      entrypoint: a("config.entrypoint"),
      cmd: a("config.cmd"),
      volumes: a("config.volume"),
      labels: a("config.label"),
      workingDir: s("config.workingdir"),
      stopSignal: s("config.stopsignal"),
      created: s("created"),
      author: s("author"),
      architecture: s("architecture"),
      os: s("os"),
      manifestAnnotations: a("manifest.annotation"),
      clear: a("clear"),
    };
    const h = historyArgs(o);
    const history: HistoryOptions | false = h.none ? false : { ...h.values };
    await configImage(await Layout.open(dir), tag, changes, { newTag, history });
  });
}
