/**
 * Looking up external programs on `PATH`, without a shell.
 *
 * @module
 */
import * as fs from "node:fs";
import { join } from "node:path";
import process from "node:process";

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
 * `/`, else a file in one of `$PATH`'s directories (as `command -v` finds it).
 *
 * @example
 * ```ts
 * if (!have("umoci")) console.log("umoci is not installed");
 * ```
 */
export function have(cmd: string): boolean {
  if (cmd === "") return false;
  if (cmd.includes("/")) return isExecutable(cmd);
  const path = process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin";
  return path.split(":").some((dir) => dir !== "" && isExecutable(join(dir, cmd)));
}
