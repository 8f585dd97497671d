/**
 * How a command's failure is told: one line on stderr through the logger
 * (a Deno permission that was not granted: which one and its flag; a file
 * system refusal when not root: a hint naming the path), the cause and
 * stack only at `--log debug`, exit status 1. Shared by the whole CLI
 * (src/cli/program.ts) and the generator's fast entry
 * (src/cli/generate-run.ts), so both fail alike.
 *
 * @module
 */
import process from "node:process";
import { OcigenError } from "../errors.ts";
import { log } from "../log.ts";
import { denoPermissionLine, permissionHint } from "./hints.ts";

/**
 * Logs `e` as the one-line failure of a command and returns the exit status (1).
 *
 * @example
 * ```ts
 * try { await run(); } catch (e) { process.exitCode = reportFailure(e); }
 * ```
 */
export function reportFailure(e: unknown): number {
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

function myUid(): number | undefined {
  try {
    return typeof process.getuid === "function" ? process.getuid() : undefined;
  } catch {
    return undefined; // Deno without --allow-sys
  }
}
