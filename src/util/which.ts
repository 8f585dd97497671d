/**
 * Looking up external programs on a search path, without a shell. The path
 * is given by the caller (the settings' `path`, from `$PATH`); without one,
 * the FHS directories systemd runs services with ({@linkcode DEFAULT_PATH}).
 *
 * @module
 */
import * as fs from "node:fs";
import { join } from "node:path";

/** The search path when none is given: the FHS directories, as systemd sets `PATH`. */
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

function isExecutable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/**
 * True when `cmd` names an executable: an existing path when it contains a
 * `/`, else a file in one of `path`'s `:`-separated directories (as
 * `command -v` finds it).
 *
 * @example
 * ```ts
 * if (!have("umoci", settings.path)) console.log("umoci is not installed");
 * ```
 */
export function have(cmd: string, path: string = DEFAULT_PATH): boolean {
  if (cmd === "") return false;
  if (cmd.includes("/")) return isExecutable(cmd);
  return path.split(":").some((dir) => dir !== "" && isExecutable(join(dir, cmd)));
}
