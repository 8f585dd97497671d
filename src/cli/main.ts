/**
 * The `ocigen` command line: a thin layer over the library.
 *
 * Each group of verbs lives in `src/cli/commands/<group>.ts` and exports
 * `register(program, raw)`.
 *
 * @module
 */
import process from "node:process";
import { Command, CommanderError, Option } from "commander";
import { OcigenError } from "../errors.ts";
import { type LogLevel, log, setLogLevel } from "../log.ts";
import { VERSION } from "../version.ts";
import * as layoutCmds from "./commands/layout.ts";
import * as unpackCmds from "./commands/unpack.ts";
import * as generateCmds from "./commands/generate.ts";
import * as repackCmds from "./commands/repack.ts";
import * as buildCmds from "./commands/build.ts";
import * as benchCmds from "./commands/bench.ts";
import * as installCmds from "./commands/install.ts";

/**
 * Builds the commander program with every verb registered.
 *
 * @example
 * ```ts
 * const program = makeProgram();
 * await program.parseAsync(["node", "ocigen", "ls", "--layout", "dir"]);
 * ```
 */
export function makeProgram(): Command {
  const program = new Command("ocigen")
    .description("OCI image layouts to systemd services; unpack, repack and build OCI images")
    .version(VERSION, "-v, --version")
    .addOption(new Option("--log <level>", "log level").choices(["debug", "info", "warn", "error"]).default("warn"))
    .option("--verbose", "alias for --log=info")
    .option("-q, --quiet", "no progress or warnings, errors only")
    .showHelpAfterError(false)
    .exitOverride();
  program.hook("preAction", (_this, action) => {
    const o = action.optsWithGlobals() as { log?: LogLevel; verbose?: boolean; quiet?: boolean };
    setLogLevel(o.verbose && o.log === "warn" ? "info" : (o.log ?? "warn"), Boolean(o.quiet));
  });
  const raw = program.command("raw").description("advanced internal image tooling");
  for (const m of [layoutCmds, unpackCmds, generateCmds, repackCmds, buildCmds, benchCmds, installCmds]) {
    m.register(program, raw);
  }
  return program;
}

/**
 * Runs the CLI with `argv` (as `process.argv`) and returns the exit code.
 * Errors are printed as one line on stderr.
 */
export async function main(argv: string[]): Promise<number> {
  const program = makeProgram();
  program.configureOutput({ writeErr: (s) => process.stderr.write(s) });
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version" || e.code === "commander.help") return 0;
      return e.exitCode === 0 ? 0 : 1;
    }
    if (e instanceof OcigenError) {
      log.error(e.message);
      if (e.cause) log.debug(String((e.cause as Error)?.stack ?? e.cause));
      return 1;
    }
    const err = e as NodeJS.ErrnoException;
    log.error(err?.message ?? String(e));
    log.debug(String(err?.stack ?? ""));
    return 1;
  }
}
