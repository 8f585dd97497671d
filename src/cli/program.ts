/**
 * The frame of the `ocigen` command line (global options, error handling)
 * and the start-up-fast runner the program entry uses.
 *
 * Start-up matters: the systemd generator runs at every boot and
 * daemon-reload, and each generated unit runs `ocigen extract` before it
 * starts. {@linkcode runLazy} therefore loads only the verb group a command
 * line names (`ocigen generate ...` never loads the unpack engine, the build
 * tool's YAML parser or the benchmarks); anything it does not recognise
 * (`--help`, `help`, `raw ...`, an unknown verb) gets the whole program of
 * {@linkcode makeProgram} from `./main.ts`, so output is the same either way.
 * The verb groups keep their heavy imports inside their actions.
 *
 * @module
 */
import process from "node:process";
import { Command, CommanderError, Option } from "commander";
import { OcigenError } from "../errors.ts";
import { type LogLevel, log, setLogLevel, setTerminalCapable } from "../log.ts";
import { VERSION } from "../version.ts";
import { denoPermissionLine, permissionHint } from "./hints.ts";

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
    .addOption(new Option("--log <level>", "log level").choices(["debug", "info", "warn", "error"]).default("warn"))
    .option("--verbose", "alias for --log=info")
    .option("-q, --quiet", "no progress or warnings, errors only")
    .showHelpAfterError(false)
    .exitOverride();
  program.hook("preAction", (_this, action) => {
    const o = action.optsWithGlobals() as { log?: LogLevel; verbose?: boolean; quiet?: boolean };
    setLogLevel(o.verbose && o.log === "warn" ? "info" : (o.log ?? "warn"), Boolean(o.quiet));
    // a terminal that cannot move the cursor gets no progress line (nothing to erase, no escapes)
    setTerminalCapable(process.env.TERM !== "dumb");
  });
  const raw = program.command("raw").description("advanced internal image tooling");
  return { program, raw };
}

/**
 * Parses `argv` (as `process.argv`) with `program` and returns the exit
 * code. Errors are printed as one line on stderr.
 *
 * @example
 * ```ts
 * process.exitCode = await runProgram(makeProgram(), process.argv);
 * ```
 */
export async function runProgram(program: Command, argv: string[]): Promise<number> {
  program.configureOutput({ writeErr: (s) => process.stderr.write(s) });
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version" || e.code === "commander.help") return 0;
      return e.exitCode === 0 ? 0 : 1;
    }
    const denied = denoPermissionLine(e);
    if (denied !== undefined) {
      log.error(denied);
      return 1;
    }
    const hint = permissionHint(e, myUid());
    if (e instanceof OcigenError) {
      log.error(hint ? `${e.message}; ${hint}` : e.message);
      if (e.cause) log.debug(String((e.cause as Error)?.stack ?? e.cause));
      return 1;
    }
    const err = e as NodeJS.ErrnoException;
    const m = err?.message ?? String(e);
    log.error(hint ? `${m}; ${hint}` : m);
    log.debug(String(err?.stack ?? ""));
    return 1;
  }
}

function myUid(): number | undefined {
  try {
    return typeof process.getuid === "function" ? process.getuid() : undefined;
  } catch {
    return undefined; // Deno without --allow-sys
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
  "install-generator": "install", "uninstall-generator": "install", "__progress-demo": "install",
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
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--verbose" || a === "-q" || a === "--quiet" || a.startsWith("--log=")) continue;
    if (a === "--log") {
      i++;
      continue;
    }
    return a.startsWith("-") ? undefined : a;
  }
  return undefined;
}

/**
 * The program for a command line: only the verb group it names when the
 * verb is known (see the module doc), else the whole program.
 *
 * @example
 * ```ts
 * const p = await programFor(["node", "ocigen", "generate", "/run/x"]); // the generator group only
 * ```
 */
export async function programFor(argv: readonly string[]): Promise<Command> {
  const verb = verbOf(argv.slice(2));
  const group = verb !== undefined && Object.hasOwn(VERB_GROUP, verb) ? GROUPS[VERB_GROUP[verb]] : undefined;
  if (verb !== undefined && group) {
    const mod = await group();
    const { program, raw } = baseProgram();
    mod.register(program, raw);
    if (program.commands.some((c) => c.name() === verb || c.aliases().includes(verb))) return program;
  }
  const { makeProgram } = await import("./main.ts");
  return makeProgram();
}

/**
 * Runs the CLI like `main` in `./main.ts`, loading only the verb group the
 * command line needs.
 *
 * @example
 * ```ts
 * process.exitCode = await runLazy(process.argv);
 * ```
 */
export async function runLazy(argv: string[]): Promise<number> {
  return await runProgram(await programFor(argv), argv);
}
