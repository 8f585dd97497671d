/**
 * The `--log` option's values and what each means for the logger
 * (src/log.ts). Imports nothing at run time, so the generator's fast entry
 * (src/cli/generate-argv.ts) shares it with the whole CLI (src/cli/program.ts).
 *
 * @module
 */
import type { LogLevel } from "../log.ts";

/**
 * The values `--log` takes: umoci's level names (`warning` is `warn`; `fatal` shows only the failure line, as `error`).
 *
 * @example
 * ```ts
 * LOG_LEVELS.includes("warning"); // true
 * ```
 */
export const LOG_LEVELS = ["debug", "info", "warn", "warning", "error", "fatal"];

/**
 * The logger level of a `--log` value.
 *
 * @example
 * ```ts
 * logLevelOf("fatal"); // "error"
 * ```
 */
export function logLevelOf(name: string): LogLevel {
  if (name === "warning") return "warn";
  if (name === "fatal") return "error";
  return name as LogLevel;
}
