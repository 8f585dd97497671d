/**
 * What both program entries (`src/main.ts`, the whole CLI, and
 * `src/ocigen-generator.ts`, the generator's light boot path) do around
 * their start function: an error that escapes is printed as one line
 * (a Deno permission: which one and its flag) with exit code 1, and a
 * reader of stdout that went away (`ocigen ls | head`) is not an error.
 * Light on purpose: the generator entry loads it at every boot.
 *
 * @module
 */
import process from "node:process";
import { denoPermissionLine } from "./hints.ts";

/**
 * Prints an error that escaped the CLI as one line and sets exit code 1.
 *
 * @example
 * ```ts
 * fatal(new Error("boom")); // stderr: "ocigen: boom"
 * ```
 */
export function fatal(e: unknown): void {
  process.stderr.write(`ocigen: ${denoPermissionLine(e) ?? (e as Error)?.message ?? String(e)}\n`);
  process.exitCode = 1;
}

/**
 * Makes EPIPE on stdout end the process quietly with the current exit code.
 *
 * @example
 * ```ts
 * quietEpipe(); // `ocigen ls | head` exits 0
 * ```
 */
export function quietEpipe(): void {
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(typeof process.exitCode === "number" ? process.exitCode : 0);
    throw e;
  });
}

/**
 * Runs an entry's start function: its exit code (when it returns one)
 * becomes the process's, and anything thrown, synchronously or not, goes
 * to {@linkcode fatal}.
 *
 * @example
 * ```ts
 * runEntry(() => Promise.resolve(0));
 * ```
 */
export function runEntry(start: () => Promise<number | void>): void {
  let run: Promise<number | void>;
  try {
    run = start();
  } catch (e) {
    run = Promise.reject(e);
  }
  run.then((code) => {
    if (typeof code === "number") process.exitCode = code;
  }, fatal);
}
