/**
 * Recognises the command lines systemd (and people) run the generator with,
 * without loading commander: `[GLOBAL...] generate [OPTION...] NORMAL
 * [EARLY LATE]`, where GLOBAL and OPTION are `--log LEVEL` (`--log=LEVEL`),
 * `--verbose`, `-q`/`--quiet`, and for the verb also `--dry-run` and
 * `--config FILE` (`--config=FILE`).
 *
 * The generator runs at every boot and daemon-reload, so its start-up is
 * what these few lines save: the program entries (src/main.ts,
 * src/ocigen-generator.ts) run such a command line directly
 * (src/cli/generate-run.ts). Anything else — `--help`, an unknown or
 * misspelt option, a bad `--log` level, `--log` with `--verbose`, two
 * directories, `--`, an option value starting with `-` — is answered
 * `undefined`, and the whole CLI parses it, so errors and help read exactly
 * as they always do. The recognised forms mean what commander makes of them
 * (an option after the verb wins over the same option before it; the last
 * of repeated options wins).
 *
 * This module loads nothing else at run time (only ./log-level.ts), so the
 * entries can ask it before loading anything.
 *
 * @module
 */
import { LOG_LEVELS } from "./log-level.ts";

/** A recognised `generate` command line. */
export interface GenerateCommandLine {
  /** The output directory for units (systemd's normal generator directory). */
  normal: string;
  /** The early and late directories (unused), when three were given. */
  early?: string;
  late?: string;
  /** `--dry-run`: print the units instead of writing them. */
  dryRun: boolean;
  /** `--config FILE`. */
  config?: string;
  /** `--log` value as given (one of {@linkcode LOG_LEVELS}), if any. */
  log?: string;
  verbose: boolean;
  quiet: boolean;
}

interface Flags {
  log?: string;
  verbose: boolean;
  quiet: boolean;
}

/**
 * Takes one global option at `args[i]` into `f`: the number of arguments
 * used, 0 when `args[i]` is not a global option, -1 when it is one with a
 * value the whole CLI must judge.
 */
function globalOption(args: readonly string[], i: number, f: Flags): number {
  const a = args[i];
  if (a === "--verbose") f.verbose = true;
  else if (a === "-q" || a === "--quiet") f.quiet = true;
  else if (a === "--log" || a.startsWith("--log=")) {
    const v = a === "--log" ? args[i + 1] : a.slice("--log=".length);
    if (v === undefined || !LOG_LEVELS.includes(v)) return -1;
    f.log = v;
    return a === "--log" ? 2 : 1;
  } else return 0;
  return 1;
}

/**
 * The `generate` command line in `argv` (as `process.argv`, after the
 * generator name's `generate` was inserted), or `undefined` when the whole
 * CLI should parse it (see the module doc).
 *
 * @example
 * ```ts
 * generateCommandLine(["node", "ocigen", "generate", "/run/systemd/generator"]);
 * // { normal: "/run/systemd/generator", dryRun: false, verbose: false, quiet: false }
 * generateCommandLine(["node", "ocigen", "generate", "--help"]); // undefined
 * ```
 */
export function generateCommandLine(argv: readonly string[]): GenerateCommandLine | undefined {
  const args = argv.slice(2);
  const before: Flags = { verbose: false, quiet: false };
  let i = 0;
  for (;;) {
    if (i >= args.length) return undefined;
    const n = globalOption(args, i, before);
    if (n < 0) return undefined;
    if (n === 0) break;
    i += n;
  }
  if (args[i++] !== "generate") return undefined;
  const after: Flags = { verbose: false, quiet: false };
  const dirs: string[] = [];
  let dryRun = false;
  let config: string | undefined;
  while (i < args.length) {
    const a = args[i];
    const n = globalOption(args, i, after);
    if (n < 0) return undefined;
    if (n > 0) {
      i += n;
      continue;
    }
    if (a === "--dry-run") dryRun = true;
    else if (a === "--config" || a.startsWith("--config=")) {
      const v = a === "--config" ? args[i + 1] : a.slice("--config=".length);
      if (v === undefined || v === "" || v.startsWith("-")) return undefined;
      config = v;
      if (a === "--config") i++;
    } else if (a.startsWith("-")) return undefined;
    else dirs.push(a);
    i++;
  }
  if (dirs.length !== 1 && dirs.length !== 3) return undefined;
  const log = after.log ?? before.log;
  const verbose = before.verbose || after.verbose;
  if (verbose && log !== undefined) return undefined; // the CLI's "mutually exclusive" error
  const [normal, early, late] = dirs;
  return {
    normal,
    ...(early !== undefined ? { early, late } : {}),
    dryRun,
    ...(config !== undefined ? { config } : {}),
    ...(log !== undefined ? { log } : {}),
    verbose,
    quiet: before.quiet || after.quiet,
  };
}
