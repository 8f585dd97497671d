/**
 * Where the generator reports problems: the kernel log (`/dev/kmsg`, as
 * `ocigen-generator: ...`) when systemd runs it — at boot there is no other
 * place to see them — and stderr otherwise.
 *
 * systemd is taken to be the caller when `$SYSTEMD_SCOPE` (set for
 * generators since systemd 251), `$SYSTEMD_LOG_TARGET` (other than
 * `console`) or `$INVOCATION_ID` is set, or when the program was invoked as
 * `ocigen-generator`; `$OCIGEN_KMSG=0|1` forces the choice. If `/dev/kmsg`
 * cannot be opened, stderr is used.
 *
 * @module
 */
import * as fs from "node:fs";
import process from "node:process";
import { log } from "../log.ts";

/** Receives the generator's messages. */
export interface Reporter {
  error(msg: string): void;
  warn(msg: string): void;
  info(msg: string): void;
}

/**
 * True when the messages should go to `/dev/kmsg` (see the module docs).
 *
 * @example
 * ```ts
 * runBySystemd({ SYSTEMD_SCOPE: "system" }, false); // true
 * ```
 */
export function runBySystemd(env: Record<string, string | undefined> = process.env, asGenerator = false): boolean {
  if (env.OCIGEN_KMSG === "0") return false;
  if (env.OCIGEN_KMSG === "1") return true;
  if (env.SYSTEMD_LOG_TARGET === "console") return false;
  return Boolean(env.SYSTEMD_SCOPE || env.SYSTEMD_LOG_TARGET || env.INVOCATION_ID || asGenerator);
}

/**
 * A reporter writing to `/dev/kmsg` (one record per message, with the
 * kernel log priority prefix) or, when `kmsg` is false or unavailable, to
 * the normal logger (stderr).
 *
 * @example
 * ```ts
 * const r = createReporter(runBySystemd());
 * r.error("layout busybox: index.json: bad JSON");
 * ```
 */
export function createReporter(kmsg: boolean, path = "/dev/kmsg"): Reporter {
  let fd: number | undefined;
  if (kmsg) {
    try {
      fd = fs.openSync(path, "a");
    } catch {
      fd = undefined;
    }
  }
  const write = (prio: number, msg: string, fallback: (m: string) => void) => {
    if (fd !== undefined) {
      try {
        fs.writeSync(fd, `<${prio}>ocigen-generator[${process.pid}]: ${msg.replace(/[\r\n]+/g, " ")}\n`);
        return;
      } catch {
        /* fall back to stderr */
      }
    }
    fallback(msg);
  };
  return {
    error: (m) => write(3, m, log.error),
    warn: (m) => write(4, m, log.warn),
    info: (m) => log.info(m),
  };
}
