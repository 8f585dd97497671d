// Helpers for the OCI tests: run the CLI in-process (capturing stdout and
// stderr) or as a child process, find external tools.
import process from "node:process";
import { spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { Command, CommanderError } from "commander";
import { OcigenError } from "../src/errors.ts";
import { log, setLogLevel } from "../src/log.ts";
import * as layoutCmds from "../src/cli/commands/layout.ts";
export { have } from "../src/util/which.ts";

// The layout verbs on a program of their own, with main()'s error handling:
// in-process tests do not depend on the other verb groups (the child-process
// tests below run the real src/main.ts).
async function layoutMain(argv: string[]): Promise<number> {
  const program = new Command("ocigen").exitOverride().option("--log <level>").option("--verbose").option("-q, --quiet");
  program.configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) });
  program.hook("preAction", () => setLogLevel("warn"));
  layoutCmds.register(program, program.command("raw"));
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 1;
    log.error(e instanceof OcigenError ? e.message : String((e as Error)?.message ?? e));
    return 1;
  }
}

/** Repository root. */
export const ROOT = fileURLToPath(new URL("..", import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `ocigen ARGS` in this process, capturing its output. */
export async function cli(...args: string[]): Promise<CliResult> {
  const so = process.stdout.write;
  const se = process.stderr.write;
  let stdout = "";
  let stderr = "";
  // Only writes made by ocigen (or commander) are captured; the test runner's
  // own reporter writes to the same stream meanwhile and must pass through.
  const cap = (f: (s: string) => void, orig: typeof process.stdout.write, self: NodeJS.WriteStream) =>
    ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      const stack = new Error().stack ?? "";
      if (!stack.includes(join(ROOT, "src")) && !stack.includes("commander")) {
        return (orig as (...a: unknown[]) => boolean).call(self, chunk, ...rest);
      }
      f(typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk));
      const cb = rest.find((r) => typeof r === "function") as (() => void) | undefined;
      cb?.();
      return true;
    }) as typeof process.stdout.write;
  process.stdout.write = cap((s) => (stdout += s), so, process.stdout);
  process.stderr.write = cap((s) => (stderr += s), se, process.stderr);
  let code: number;
  try {
    code = await layoutMain(["node", "ocigen", ...args]);
  } finally {
    process.stdout.write = so;
    process.stderr.write = se;
  }
  return { code, stdout, stderr };
}

/** The command line that runs the CLI from source as a child process. */
export function cliCommand(): [string, string[]] {
  return ["node", ["--import", "tsx", join(ROOT, "src", "main.ts")]];
}

/** Runs `ocigen ARGS` as a child process (optionally as another user). */
export function cliProcSync(args: string[], opts: { uid?: number; gid?: number } = {}): CliResult {
  const [cmd, pre] = cliCommand();
  const r = spawnSync(cmd, [...pre, ...args], { cwd: ROOT, encoding: "utf8", ...opts });
  return { code: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

/** Runs `ocigen ARGS` as a child process, asynchronously. */
export function cliProc(args: string[]): Promise<CliResult> {
  const [cmd, pre] = cliCommand();
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, [...pre, ...args], { cwd: ROOT });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d) => (stdout += d));
    p.stderr.on("data", (d) => (stderr += d));
    p.on("error", reject);
    p.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** Runs a tool synchronously, returning status and output. */
export function run(cmd: string, args: string[], cwd?: string): CliResult {
  const r = spawnSync(cmd, args, { encoding: "utf8", cwd });
  return { code: r.status ?? -1, stdout: r.stdout ?? "", stderr: (r.stderr ?? "") + (r.error ? String(r.error) : "") };
}
