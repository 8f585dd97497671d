/**
 * Verbs `install-generator`, `uninstall-generator`, and the hidden
 * `__progress-demo` (draws the progress line for a few seconds; used by the
 * progress tests and to eyeball the line).
 *
 * @module
 */
import process from "node:process";
import { type Command, Option } from "commander";
import { OcigenError } from "../../errors.ts";
import { installGenerator, uninstallGenerator } from "../../install/install.ts";
import { INSTALL_PATHS } from "../../install/files.ts";
import { start } from "../../progress.ts";

/**
 * Registers `install-generator`, `uninstall-generator` and `__progress-demo`.
 *
 * @example
 * ```ts
 * import { Command } from "commander";
 * const program = new Command("ocigen");
 * register(program, program.command("raw"));
 * ```
 */
export function register(program: Command, _raw: Command): void {
  program
    .command("install-generator")
    .description("install ocigen as a systemd generator: program, generator link, oci.slice, default config")
    .addHelpText("after", `
Installs under --prefix (default /; like DESTDIR, laid out as on the target):
  ${INSTALL_PATHS.binary.padEnd(44)}the program (see --bin)
  ${INSTALL_PATHS.generator} -> ${INSTALL_PATHS.generatorTarget}
  ${INSTALL_PATHS.slice.padEnd(44)}slice of the generated services
  ${INSTALL_PATHS.updateService.padEnd(44)}runs \`ocigen update\`
  ${INSTALL_PATHS.updateTimer.padEnd(44)}every 15 min once enabled (systemctl enable --now ocigen-update.timer)
  ${INSTALL_PATHS.config.padEnd(44)}generator config, only if absent
  ${INSTALL_PATHS.manifest.padEnd(44)}what was installed, for uninstall
Running it again updates what it installed and changes nothing else; a file in
the way that ocigen did not install stops it before anything is written.`)
    .option("--prefix <dir>", "root to install under (like DESTDIR)", "/")
    .option("--bin <path>", "file to install as the program (default: this binary, or a wrapper script running node on dist/ocigen.mjs)")
    .option("--force", "replace files at these paths that ocigen did not install")
    .action((o: { prefix: string; bin?: string; force?: boolean }) => {
      const r = installGenerator({ prefix: o.prefix, bin: o.bin, force: o.force });
      for (const a of r.actions) process.stdout.write(a + "\n");
      if (r.prefix === "/") process.stdout.write("run `systemctl daemon-reload` to generate the units\n");
    });

  program
    .command("uninstall-generator")
    .description("remove what install-generator installed (files changed since, and a changed config, are kept)")
    .addHelpText("after", `
Removes what PREFIX/${INSTALL_PATHS.manifest}
lists, each only if unchanged since install, then the directories install
created if they are empty.`)
    .option("--prefix <dir>", "root the generator was installed under", "/")
    .action((o: { prefix: string }) => {
      const r = uninstallGenerator({ prefix: o.prefix });
      for (const a of r.actions) process.stdout.write(a + "\n");
      if (r.prefix === "/" && r.actions.length > 1) process.stdout.write("run `systemctl daemon-reload` to drop the units\n");
    });

  program
    .command("__progress-demo", { hidden: true })
    .description("draw a fake unpack progress line (tests)")
    .addOption(new Option("--ms <n>", "duration in milliseconds").default("1500"))
    .action(async (o: { ms: string }) => {
      const ms = Number(o.ms);
      if (!Number.isFinite(ms) || ms < 0) throw new OcigenError("EUSAGE", `--ms ${o.ms}: not a duration`);
      const layers = 3;
      const per = 8 << 20;
      const outer = start("demo", { items: 1 });
      const p = start("unpack", { total: layers * per, layers });
      const steps = 60;
      for (let i = 0; i < steps; i++) {
        const layerIndex = Math.floor((i * layers) / steps);
        p.update({ layerIndex, layer: `sha256:${String(layerIndex).repeat(64)}` });
        p.add(Math.floor((layers * per) / steps), 25);
        await new Promise((r) => setTimeout(r, ms / steps));
      }
      p.done();
      outer.itemDone();
      outer.done();
      process.stdout.write("demo done\n");
    });
}
