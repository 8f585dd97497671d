/**
 * The `ocigen` command line: a thin layer over the library.
 *
 * Each group of verbs lives in `src/cli/commands/<group>.ts` and exports
 * `register(program, raw)`. The program entry (`src/main.ts`) runs the CLI
 * through `runLazy` in `./program.ts`, which loads only the group a command
 * line needs; this module builds the whole program (help, tests).
 *
 * @module
 */
import type { Command } from "commander";
import { baseProgram, type CommandGroup, runProgram } from "./program.ts";
import type { Settings } from "../settings.ts";
import * as layoutCmds from "./commands/layout.ts";
import * as unpackCmds from "./commands/unpack.ts";
import * as generateCmds from "./commands/generate.ts";
import * as repackCmds from "./commands/repack.ts";
import * as buildCmds from "./commands/build.ts";
import * as benchCmds from "./commands/bench.ts";
import * as installCmds from "./commands/install.ts";
import * as statusCmds from "./commands/status.ts";

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
  const { program, raw } = baseProgram();
  const groups: CommandGroup[] = [layoutCmds, unpackCmds, generateCmds, repackCmds, buildCmds, benchCmds, installCmds, statusCmds];
  for (const m of groups) {
    m.register(program, raw);
  }
  return program;
}

/**
 * Runs the CLI with `argv` (as `process.argv`) and returns the exit code.
 * Errors are printed as one line on stderr. `s`: the settings (default:
 * built from this process's environment).
 *
 * @example
 * ```ts
 * process.exitCode = await main(process.argv);
 * ```
 */
export async function main(argv: string[], s?: Settings): Promise<number> {
  return await runProgram(makeProgram(), argv, s);
}
