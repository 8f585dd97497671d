/**
 * The settings of the command line being run: built once per run by
 * {@linkcode runProgram} in `./program.ts` (from the program entry's
 * {@linkcode processSettings} call, or a fresh one for an in-process run),
 * read by the verbs' actions, which pass the fields the engines need down as
 * options. Engines never see this module.
 *
 * @module
 */
import { processSettings, type Settings } from "../settings.ts";

let current: Settings | undefined;

/**
 * Makes `s` the settings of the run that starts (see the module docs).
 *
 * @example
 * ```ts
 * useSettings(processSettings());
 * ```
 */
export function useSettings(s: Settings): void {
  current = s;
}

/**
 * The settings of this run (built from the environment if no run set them:
 * a program parsed without `runProgram`).
 *
 * @example
 * ```ts
 * await unpackRootfs(layout, image, dir, { lookahead: settings().lookahead });
 * ```
 */
export function settings(): Settings {
  return (current ??= processSettings());
}
