/**
 * Verbs `status` (what the generated services run, their state, pins and
 * updates; a table on a terminal, JSON otherwise) and `update` (roll out
 * moved tags with rollback; run by `ocigen-update.timer`).
 *
 * @module
 */
import process from "node:process";
import type { Command } from "commander";
import { OcigenError } from "../../errors.ts";
import { generatorConfig } from "../generator-config.ts";
import { statusJson, updateJson } from "../json.ts";
import { log } from "../../log.ts";

const collect = (v: string, prev: string[]): string[] => [...prev, v];
const CONFIG_HELP = "config file (default $OCIGEN_GENERATOR_CONF, else /etc/oci-generator.conf)";

/**
 * Registers `status` and `update`.
 *
 * @example
 * ```ts
 * register(program, raw);
 * ```
 */
export function register(program: Command, _raw: Command): void {
  program
    .command("status")
    .description("each generated unit: image, manifest it runs, rootfs extracted, state, ports, pins and updates; unused trees and orphaned volumes")
    .option("--config <file>", CONFIG_HELP)
    .option("--json", "print JSON (the default when stdout is not a terminal)")
    .option("--table", "print the table (the default on a terminal)")
    .action(async (o: { config?: string; json?: boolean; table?: boolean }) => {
      if (o.json && o.table) throw new OcigenError("EUSAGE", "--json and --table exclude each other");
      const { gatherStatus } = await import("../../status/status.ts");
      const r = await gatherStatus({ config: generatorConfig(o.config) });
      const table = o.table || (!o.json && Boolean(process.stdout.isTTY));
      if (table) {
        const { statusTable } = await import("../../status/table.ts");
        process.stdout.write(statusTable(r));
        for (const e of r.errors) log.error(e);
      } else process.stdout.write(JSON.stringify(statusJson(r)) + "\n");
      if (r.errors.length > 0) process.exitCode = 1;
    });

  program
    .command("update")
    .description("roll out moved tags: extract, daemon-reload, restart the affected units, roll back (pin) any that fail")
    .addHelpText("after", `
A unit whose restarted service fails to start, exits non-zero, is restarted
by systemd or fails its HealthCmd= within HealthTimeout= (per-image settings;
default 10 s) is pinned to the manifest it ran before and restarted on it.
The pin holds until the tag moves again or \`ocigen update --unpin UNIT\`.
Exit status 1 when any unit was rolled back or failed.`)
    .argument("[units...]", "only these units (default: every generated unit)")
    .option("--config <file>", CONFIG_HELP)
    .option("--dry-run", "only say which units would be updated")
    .option("--timeout <seconds>", "health window of every unit (overrides HealthTimeout=)")
    .option("--unpin <unit>", "remove the unit's rollback pin, then roll its tag out again (repeatable)", collect, [])
    .option("--json", "print what was done as JSON")
    .action(async (units: string[], o: { config?: string; dryRun?: boolean; timeout?: string; unpin: string[]; json?: boolean }) => {
      let timeoutSeconds: number | undefined;
      if (o.timeout !== undefined) {
        timeoutSeconds = Number(o.timeout);
        if (!/^[0-9]+$/.test(o.timeout) || timeoutSeconds < 1) throw new OcigenError("EUSAGE", `--timeout ${o.timeout}: not a number of seconds`);
      }
      const { update } = await import("../../update/update.ts");
      const r = await update({ config: generatorConfig(o.config), units, unpin: o.unpin, dryRun: Boolean(o.dryRun), timeoutSeconds });
      if (o.json) process.stdout.write(JSON.stringify(updateJson(Boolean(o.dryRun), r)) + "\n");
      else {
        const short = (d?: string) => (d ? d.replace(/^sha256:/, "").slice(0, 12) : "-");
        for (const p of r.unpinned) process.stdout.write(`${o.dryRun ? "would unpin" : "unpinned"} ${p}\n`);
        for (const u of r.units) {
          process.stdout.write(`${u.unit}: ${u.status} ${short(u.from)} -> ${short(u.to)}${u.reason ? ` (${u.reason})` : ""}\n`);
        }
        if (r.units.length === 0 && r.unpinned.length === 0) process.stdout.write("nothing to update\n");
      }
      for (const e of r.errors) log.error(e);
      if (r.errors.length > 0 || r.units.some((u) => u.status === "failed" || u.status === "rolled-back")) process.exitCode = 1;
    });
}
