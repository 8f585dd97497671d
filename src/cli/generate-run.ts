/**
 * What `ocigen generate` does (the verb in src/cli/commands/generate.ts and
 * the program entries' fast path share it): load the generator config, pick
 * where problems are reported (the kernel log when systemd runs it), write
 * the units, exit 1 if any layout or tag had a problem.
 *
 * {@linkcode runGenerate} runs a command line recognised by
 * ./generate-argv.ts without commander, setting up the logger as the CLI's
 * global options would and reporting a failure as the CLI does
 * (./failure.ts); src/main.ts and src/ocigen-generator.ts (the generator's
 * own bundle) call it, so a boot-time run loads only what generation needs.
 *
 * @module
 */
import process from "node:process";
import { OcigenError } from "../errors.ts";
import { configureLockTimeout } from "../fs/lock.ts";
import { generate, ocigenCommand } from "../generator/generate.ts";
import { createReporter } from "../generator/report.ts";
import { setLogLevel, setTerminalCapable } from "../log.ts";
import type { Settings } from "../settings.ts";
import { settings, useSettings } from "./context.ts";
import { reportFailure } from "./failure.ts";
import type { GenerateCommandLine } from "./generate-argv.ts";
import { generatorConfig } from "./generator-config.ts";
import { logLevelOf } from "./log-level.ts";

/** Options of {@linkcode generateAction}. */
export interface GenerateActionOptions {
  dryRun?: boolean;
  /** `--config FILE` (default `$OCIGEN_GENERATOR_CONF`, else /etc/oci-generator.conf). */
  config?: string;
  /**
   * The command units run for `ocigen extract` when neither the config
   * (`ocigen =`) nor `OCIGEN_SELF` names one; default: this program (see
   * `ocigenCommand` in src/generator/generate.ts).
   */
  self?: readonly string[];
}

/**
 * The `generate` verb: writes the units of every layout into `normal`
 * (EARLY and LATE are accepted and unused, as systemd passes three
 * directories); sets `process.exitCode` to 1 when a layout or tag had a
 * problem. Throws for a usage error or an unreadable config.
 *
 * @example
 * ```ts
 * await generateAction("/run/systemd/generator", undefined, undefined, { config: "/etc/oci-generator.conf" });
 * ```
 */
export async function generateAction(normal: string, early: string | undefined, late: string | undefined, o: GenerateActionOptions): Promise<void> {
  if (early !== undefined && late === undefined) {
    throw new OcigenError("EUSAGE", "generate takes one directory or three (NORMAL EARLY LATE), not two");
  }
  const reporter = createReporter(settings().kmsg);
  let config;
  try {
    config = generatorConfig(o.config);
  } catch (e) {
    // stderr gets it once, from the caller; the kernel log too when run by systemd
    if (reporter.kmsg) reporter.error((e as Error).message);
    throw e;
  }
  const self = settings().self;
  const ocigen = config.ocigen || self || !o.self ? ocigenCommand(config, { OCIGEN_SELF: self }) : [...o.self];
  const r = await generate({ config, outDir: normal, dryRun: Boolean(o.dryRun), reporter, ocigen });
  if (r.errors.length > 0) process.exitCode = 1;
}

/**
 * Runs a recognised `generate` command line (./generate-argv.ts) and
 * returns the exit status, as the whole CLI would for it.
 *
 * @example
 * ```ts
 * const line = generateCommandLine(process.argv);
 * if (line) process.exitCode = await runGenerate(line, processSettings());
 * ```
 */
export async function runGenerate(line: GenerateCommandLine, s: Settings, self?: readonly string[]): Promise<number> {
  // what the whole CLI's preAction hook sets up (no progress line: generate draws none)
  useSettings(s);
  setLogLevel(logLevelOf(line.log ?? (line.verbose ? "info" : "warn")), line.quiet);
  setTerminalCapable(s.terminalCapable);
  configureLockTimeout(s.layoutLockTimeoutMs);
  try {
    await generateAction(line.normal, line.early, line.late, { dryRun: line.dryRun, config: line.config, ...(self ? { self } : {}) });
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (e) {
    return reportFailure(e);
  }
}
