/**
 * The frame of the `ocigen` command line (global options, error handling)
 * and the start-up-fast runner the program entry uses.
 *
 * Start-up matters: the systemd generator runs at every boot and
 * daemon-reload, and each generated unit runs `ocigen extract` before it
 * starts. {@linkcode runLazy} therefore loads only the verb group a command
 * line names (`ocigen generate ...` never loads the unpack engine, the build
 * tool's YAML parser or the benchmarks; `ocigen raw unpack ...`, umoci's
 * verb, only the unpack group); anything it does not recognise (`--help`,
 * `help`, `raw` alone, an unknown verb) gets the whole program (every verb
 * group, as `makeProgram` in `./main.ts` builds it), so output is the same
 * either way.
 * The verb groups keep their heavy imports inside their actions.
 *
 * @module
 */
import process from "node:process";
import { Command, CommanderError, Option } from "commander";
import { OcigenError } from "../errors.ts";
import { setLogLevel, setTerminalCapable } from "../log.ts";
import { configureLockTimeout } from "../fs/lock.ts";
import { configureProgress } from "../progress.ts";
import type { Settings } from "../settings.ts";
import { processSettings } from "../settings.ts";
import { settings, useSettings } from "./context.ts";
import { VERSION } from "../version.ts";
import { reportFailure } from "./failure.ts";
import { LOG_LEVELS, logLevelOf } from "./log-level.ts";

/** A verb group module (`src/cli/commands/<group>.ts`). */
export interface CommandGroup {
  register(program: Command, raw: Command): void;
}

/**
 * The program with its global options and the (empty) `raw` command, no verbs.
 *
 * @example
 * ```ts
 * const { program, raw } = baseProgram();
 * layoutCmds.register(program, raw);
 * ```
 */
export function baseProgram(): { program: Command; raw: Command } {
  const program = new Command("ocigen")
    .description("OCI image layouts to systemd services; unpack, repack and build OCI images")
    .version(VERSION, "-v, --version")
    .addOption(new Option("--log <level>", "log level").choices(LOG_LEVELS).default("warn"))
    .option("--verbose", "alias for --log=info")
    .option("-q, --quiet", "no progress or warnings, errors only")
    .enablePositionalOptions()
    .showHelpAfterError(false)
    .exitOverride();
  program.hook("preAction", (_this, action) => {
    let level: string | undefined;
    let levelGiven = false;
    let verbose = false;
    let quiet = false;
    // innermost command first: a --log after the verb wins over one before it
    for (let c: Command | null = action; c; c = c.parent) {
      const o = c.opts() as { log?: string; verbose?: boolean; quiet?: boolean };
      if (o.log !== undefined && c.getOptionValueSource("log") === "cli") {
        levelGiven = true;
        level ??= o.log;
      }
      verbose ||= Boolean(o.verbose);
      quiet ||= Boolean(o.quiet);
    }
    if (verbose && levelGiven) throw new OcigenError("EUSAGE", "--log=* and --verbose are mutually exclusive");
    setLogLevel(logLevelOf(level ?? (verbose ? "info" : "warn")), quiet);
    // a terminal that cannot move the cursor gets no progress line (nothing to erase, no escapes)
    const s = settings();
    setTerminalCapable(s.terminalCapable);
    configureProgress({ intervalMs: s.progressIntervalMs, columns: s.columns });
    configureLockTimeout(s.layoutLockTimeoutMs);
  });
  const raw = program.command("raw").description("advanced internal image tooling");
  return { program, raw };
}

export { LOG_LEVELS, logLevelOf };

/**
 * Gives every verb the global options too (hidden from its help), so that
 * they may also follow the verb. Global options are positional (as umoci's
 * are): before the verb they belong to the program, after it to the verb,
 * so a verb's option value that starts with `-` (`--config.cmd -v`) is never
 * taken for a global flag.
 *
 * @example
 * ```ts
 * addGlobalOptionsToVerbs(makeProgram());
 * ```
 */
export function addGlobalOptionsToVerbs(program: Command): void {
  const walk = (cmd: Command) => {
    for (const c of cmd.commands) {
      const has = (flag: string) => c.options.some((o) => o.long === flag);
      if (!has("--log")) c.addOption(new Option("--log <level>", "log level").choices(LOG_LEVELS).hideHelp());
      if (!has("--verbose")) c.addOption(new Option("--verbose", "alias for --log=info").hideHelp());
      if (!has("--quiet")) c.addOption(new Option("-q, --quiet", "no progress or warnings, errors only").hideHelp());
      if (c.commands.length > 0) c.enablePositionalOptions();
      walk(c);
    }
  };
  walk(program);
}

/**
 * Parses `argv` (as `process.argv`) with `program` and returns the exit
 * code. Errors are printed as one line on stderr. `runSettings`: the settings the
 * verbs pass down (default: built now from this process's environment).
 *
 * @example
 * ```ts
 * process.exitCode = await runProgram(makeProgram(), process.argv);
 * ```
 */
export async function runProgram(program: Command, argv: string[], runSettings: Settings = processSettings()): Promise<number> {
  useSettings(runSettings);
  program.configureOutput({ writeErr: (s) => process.stderr.write(s) });
  addGlobalOptionsToVerbs(program);
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version" || e.code === "commander.help") return 0;
      return e.exitCode === 0 ? 0 : 1;
    }
    return reportFailure(e);
  }
}

const GROUPS: Record<string, () => Promise<CommandGroup>> = {
  layout: () => import("./commands/layout.ts"),
  unpack: () => import("./commands/unpack.ts"),
  generate: () => import("./commands/generate.ts"),
  repack: () => import("./commands/repack.ts"),
  build: () => import("./commands/build.ts"),
  bench: () => import("./commands/bench.ts"),
  install: () => import("./commands/install.ts"),
  status: () => import("./commands/status.ts"),
};

/**
 * Top-level verb -> the group registering it. A verb missing here (or moved
 * to another group) is still run correctly, through the whole program.
 */
const VERB_GROUP: Record<string, string> = {
  init: "layout", new: "layout", ls: "layout", list: "layout", stat: "layout", tag: "layout", rm: "layout",
  remove: "layout", gc: "layout", config: "layout",
  unpack: "unpack",
  generate: "generate", extract: "generate", "gc-extracts": "generate", volume: "generate",
  repack: "repack", insert: "repack", "add-layer": "repack",
  build: "build",
  bench: "bench",
  status: "status", update: "status",
  "install-generator": "install", "uninstall-generator": "install", "__progress-demo": "install",
};

/** `raw` subverb -> the group registering it (the same rule as {@linkcode VERB_GROUP}). */
const RAW_VERB_GROUP: Record<string, string> = {
  unpack: "unpack", "runtime-config": "unpack", config: "unpack",
  "add-layer": "repack",
};

/**
 * The verb of a command line (arguments after the script), skipping the
 * global options; undefined when another option comes first.
 *
 * @example
 * ```ts
 * verbOf(["--log", "debug", "generate", "/run/x"]); // "generate"
 * verbOf(["--help"]); // undefined
 * ```
 */
export function verbOf(args: readonly string[]): string | undefined {
  const i = verbIndex(args);
  return i === undefined ? undefined : args[i];
}

/** Where {@linkcode verbOf}'s verb is in `args`. */
function verbIndex(args: readonly string[]): number | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--verbose" || a === "-q" || a === "--quiet" || a.startsWith("--log=")) continue;
    if (a === "--log") {
      i++;
      continue;
    }
    return a.startsWith("-") ? undefined : i;
  }
  return undefined;
}

/**
 * The group a command line needs and the command it must register there:
 * `[group, verb, true]` for `raw VERB` (global options may come before
 * either word); undefined when the line names no known verb.
 */
function groupOf(args: readonly string[]): [string, string, boolean] | undefined {
  const i = verbIndex(args);
  if (i === undefined) return undefined;
  const verb = args[i];
  if (verb !== "raw") return Object.hasOwn(VERB_GROUP, verb) ? [VERB_GROUP[verb], verb, false] : undefined;
  const rest = args.slice(i + 1);
  const j = verbIndex(rest);
  if (j === undefined || !Object.hasOwn(RAW_VERB_GROUP, rest[j])) return undefined;
  return [RAW_VERB_GROUP[rest[j]], rest[j], true];
}

/**
 * The program for a command line: only the verb group it names when the
 * verb is known (see the module doc), else the whole program.
 *
 * @example
 * ```ts
 * const p = await programFor(["node", "ocigen", "generate", "/run/x"]); // the generator group only
 * await programFor(["node", "ocigen", "raw", "unpack", "--image", "l:t", "r"]); // the unpack group only
 * ```
 */
export async function programFor(argv: readonly string[]): Promise<Command> {
  const g = groupOf(argv.slice(2));
  if (g) {
    const [group, verb, isRaw] = g;
    const mod = await GROUPS[group]();
    const { program, raw } = baseProgram();
    mod.register(program, raw);
    if ((isRaw ? raw : program).commands.some((c) => c.name() === verb || c.aliases().includes(verb))) return program;
  }
  return await fullProgram();
}

/**
 * The whole program: every verb group, in the order of {@linkcode GROUPS}
 * (the same program `makeProgram` in `./main.ts` builds with static
 * imports; this module does not import it, so the two do not depend on
 * each other).
 */
async function fullProgram(): Promise<Command> {
  const { program, raw } = baseProgram();
  for (const load of Object.values(GROUPS)) (await load()).register(program, raw);
  return program;
}

/**
 * Runs the CLI like `main` in `./main.ts`, loading only the verb group the
 * command line needs; `s` as `runSettings` of {@linkcode runProgram}.
 *
 * @example
 * ```ts
 * process.exitCode = await runLazy(process.argv, processSettings());
 * ```
 */
export async function runLazy(argv: string[], s?: Settings): Promise<number> {
  return await runProgram(await programFor(argv), argv, s);
}
