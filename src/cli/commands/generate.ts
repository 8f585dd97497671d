/**
 * The systemd generator verbs: `generate NORMAL [EARLY LATE]` (also run as
 * `ocigen-generator`), `extract --name N --ref T` (what each generated unit's
 * companion `ocigen-extract@` unit runs before it starts) and `gc-extracts`.
 *
 * @module
 */
import process from "node:process";
import type { Command } from "commander";
import { OcigenError } from "../../errors.ts";
import { generatorConfig } from "../generator-config.ts";
import { settings } from "../context.ts";
import { log } from "../../log.ts";
import { gcExtractsJson } from "../json.ts";
import { addExtractAllOptions, extractAllCommand } from "./extract-all.ts";
import { zstdWindowMaxOption } from "../zstd-window.ts";
import { platformOption } from "../platform.ts";
// The generator (../generate-run.ts) and the extractor (extract.ts) are imported by
// the actions that use them: `generate` runs at every boot and `extract`
// before every unit start; neither should load what the other needs.

const collect = (v: string, prev: string[]): string[] => [...prev, v];

interface ExtractFlags {
  name: string;
  ref: string;
  config?: string;
  user?: string;
  manifest?: string;
  service?: boolean;
  volume: string[];
  tmpfs: string[];
  env: string[];
  exec: string[];
  readOnly?: boolean;
  reload?: boolean;
  release?: boolean;
  bundle?: boolean;
  all?: boolean;
  platform?: string;
  zstdWindowMax?: string;
}

/**
 * Registers `generate`, `extract` and `gc-extracts`.
 *
 * @example
 * ```ts
 * register(program, raw);
 * ```
 */
export function register(program: Command, _raw: Command): void {
  program
    .command("generate")
    .description("systemd generator: write one service per tag of every layout under imagelayoutdir (systemd.generator(7))")
    .argument("<normal>", "output directory for units (systemd's normal generator directory)")
    .argument("[early]", "early directory (unused)")
    .argument("[late]", "late directory (unused)")
    .option("--dry-run", "print ---PATH--- and each unit instead of writing")
    .option("--config <file>", "config file (default $OCIGEN_GENERATOR_CONF, else /etc/oci-generator.conf)")
    .action(async (normal: string, early: string | undefined, late: string | undefined, o: { dryRun?: boolean; config?: string }) => {
      const { generateAction } = await import("../generate-run.ts");
      await generateAction(normal, early, late, o);
    });

  addExtractAllOptions(program
    .command("extract")
    .description("make sure the rootfs of a layout's tag is extracted, verified and current (run by generated units before start)")
    .option("--name <name>", "layout name (path relative to imagelayoutdir)")
    .option("--ref <tag>", "tag of the image in that layout")
    .option("--config <file>", "config file (default $OCIGEN_GENERATOR_CONF, else /etc/oci-generator.conf)")
    .option("--user <spec=uid:gid>", "resolve the image user SPEC in the extracted rootfs (and check it gives UID:GID)")
    .option("--manifest <digest>", "serve this manifest of the layout (the one the unit was generated for)")
    .option("--service", "also prepare the service: host accounts, volumes, its root (what generated units run)")
    .option("--volume <spec>", "with --service: a volume PATH, PATH:ro or HOST:PATH[:ro] (repeatable)", collect, [])
    .option("--tmpfs <path[:options]>", "with --bundle: a tmpfs mount (repeatable)", collect, [])
    .option("--env <k=v>", "with --bundle: an extra environment variable (repeatable)", collect, [])
    .option("--exec <word>", "with --bundle: the command instead of the image's, one word per flag (repeatable)", collect, [])
    .option("--read-only", "with --service: the service's root is read-only")
    .option("--reload", "with --service: run systemctl daemon-reload after extracting")
    .option("--release", "unmount the service's root and drop its writable layer (the companion unit's ExecStop=)")
    .option("--bundle", "also write the runc/crun bundle config.json")
    .option("--zstd-window-max <MiB>", "largest zstd window a layer may use, in MiB (default 128, at most 2048)")
    .option("--platform <os/arch[/variant]>", "platform to pick from a multi-platform image (default: the image's settings, else this host's)"))
    .action(async (o: ExtractFlags) => {
      const zstdWindowMax = zstdWindowMaxOption(o.zstdWindowMax);
      if (o.all) return await extractAllCommand({ ...o, zstdWindowMax });
      if (!o.name || !o.ref) throw new OcigenError("EUSAGE", "extract needs --name and --ref (or --all)");
      const config = generatorConfig(o.config);
      const { extract } = await import("../../generator/extract.ts");
      const r = await extract({
        config, name: o.name, tag: o.ref, user: o.user, bundle: Boolean(o.bundle),
        manifest: o.manifest, service: Boolean(o.service), volumes: o.volume, tmpfs: o.tmpfs, env: o.env, exec: o.exec,
        readOnly: Boolean(o.readOnly), reload: Boolean(o.reload), release: Boolean(o.release),
        platform: o.platform === undefined ? undefined : platformOption(o.platform),
        lockTimeoutMs: settings().lockTimeoutMs,
        unpack: { zstdWindowMax: zstdWindowMax ?? config.zstdWindowMax, lookahead: settings().lookahead },
      });
      if (o.release) log.info(`${o.name}:${o.ref}: root released`);
      else log.info(`${r.rootfs} -> ${r.store}${r.extracted ? " (extracted)" : ""}${r.changed ? "" : " (unchanged)"}${r.root ? `, root ${r.root}` : ""}`);
    });

  program
    .command("gc-extracts")
    .description("remove extracted rootfs that no tag and no unit references any more")
    .option("--config <file>", "config file (default $OCIGEN_GENERATOR_CONF, else /etc/oci-generator.conf)")
    .option("--dry-run", "only print what would be removed")
    .option("--json", "print what was (or would be) removed as JSON")
    .action(async (o: { config?: string; dryRun?: boolean; json?: boolean }) => {
      const { gcExtracts } = await import("../../generator/gc.ts");
      const { orphanVolumes, stopOrphans, systemdBooted } = await import("../../generator/orphans.ts");
      const cfg = generatorConfig(o.config);
      // running services whose tag or layout is gone are stopped first (their roots released), then collected
      const orphans = systemdBooted() ? stopOrphans(cfg, { dryRun: Boolean(o.dryRun) }) : { stopped: [], errors: [] };
      for (const u of orphans.stopped) {
        const line = `${o.dryRun ? "would stop" : "stopped"} ${u} (its tag or layout is gone)`;
        if (o.json) log.warn(line);
        else process.stdout.write(line + "\n");
      }
      const r = await gcExtracts({ config: cfg, dryRun: Boolean(o.dryRun), hostAccounts: true });
      r.errors.unshift(...orphans.errors);
      if (o.json) process.stdout.write(JSON.stringify(gcExtractsJson(Boolean(o.dryRun), r)) + "\n");
      else {
        for (const p of r.removed) process.stdout.write(`${o.dryRun ? "would remove" : "removed"} ${p}\n`);
        for (const a of r.accounts) process.stdout.write(`${o.dryRun ? "would remove" : "removed"} host account ${a}\n`);
      }
      for (const v of await orphanVolumes(cfg)) log.warn(`volume ${v} belongs to no current tag; kept (ocigen volume rm UNIT deletes it)`);
      for (const e of r.errors) log.error(e);
      if (r.errors.length > 0) process.exitCode = 1;
    });

  const volume = program.command("volume").description("list or delete the persistent volumes of generated services (gc never deletes them)");
  volume
    .command("ls")
    .description("list each service's volume directory; those whose tag is gone are marked orphaned")
    .option("--config <file>", "config file (default $OCIGEN_GENERATOR_CONF, else /etc/oci-generator.conf)")
    .action(async (o: { config?: string }) => {
      const { listVolumes } = await import("../../generator/orphans.ts");
      for (const v of await listVolumes(generatorConfig(o.config))) process.stdout.write(`${v.dir}${v.orphaned ? " (orphaned)" : ""}\n`);
    });
  volume
    .command("rm")
    .description("delete the volumes of a unit (refused while it runs)")
    .argument("<unit>", "the unit (NAME.ref.TAG.service) whose volumes to delete")
    .option("--config <file>", "config file (default $OCIGEN_GENERATOR_CONF, else /etc/oci-generator.conf)")
    .action(async (unit: string, o: { config?: string }) => {
      const { removeVolumes } = await import("../../generator/orphans.ts");
      process.stdout.write(`removed ${removeVolumes(generatorConfig(o.config), unit)}\n`);
    });
}
