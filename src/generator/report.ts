/**
 * Where the generator reports problems: the kernel log (`/dev/kmsg`, as
 * `ocigen-generator: ...`) when systemd runs it — at boot there is no other
 * place to see them — and stderr otherwise.
 *
 * The caller decides which (the settings' `kmsg`, see src/settings.ts):
 * systemd is taken to be the caller when `$SYSTEMD_SCOPE` (set for
 * generators since systemd 251), `$SYSTEMD_LOG_TARGET` (other than
 * `console`) or `$INVOCATION_ID` is set, or when the program was invoked as
 * `ocigen-generator`; `$OCIGEN_KMSG=0|1` forces the choice.
 *
 * `/dev/kmsg` is only ever written when it is an existing character device:
 * it is opened write-only, without `O_CREAT`, non-blocking and without
 * following a symlink (the real `/dev/kmsg` is a device node), then checked
 * with `fstat`; anything else (missing, a regular file, a FIFO, a symlink)
 * is left alone. Then, as systemd's own generators do when the kernel log
 * cannot be opened (a container has no `/dev/kmsg`), the console:
 * `/dev/console`, under the same rules (an existing character device, never
 * created), one plain `ocigen-generator: MESSAGE` line per message; and
 * stderr last. The reporter never creates a file.
 *
 * @module
 */
import * as fs from "node:fs";
import process from "node:process";
import { isQuiet, log, oneLine } from "../log.ts";

/** Receives the generator's messages. */
export interface Reporter {
  error(msg: string): void;
  warn(msg: string): void;
  info(msg: string): void;
  /** Worth one line even at the default log level (e.g. "no layouts"). */
  notice?(msg: string): void;
  /** True when messages go to the kernel log, not stderr. */
  readonly kmsg?: boolean;
}

/**
 * One kernel log record: `<PRIO>ocigen-generator[PID]: MESSAGE`, on one line.
 *
 * @example
 * ```ts
 * kmsgRecord(3, "layout x: broken\nmore", 42); // "<3>ocigen-generator[42]: layout x: broken more\n"
 * ```
 */
export function kmsgRecord(prio: number, msg: string, pid = process.pid): string {
  return `<${prio}>ocigen-generator[${pid}]: ${msg.replace(/[\r\n]+/g, " ")}\n`;
}

/**
 * Opens `path` for writing only if it is an existing character device;
 * undefined otherwise (nothing is created).
 *
 * @example
 * ```ts
 * openCharDevice("/dev/kmsg"); // a descriptor, or undefined in a container without it
 * ```
 */
export function openCharDevice(path: string): number | undefined {
  const c = fs.constants;
  let fd: number;
  try {
    fd = fs.openSync(path, c.O_WRONLY | (c.O_NOCTTY ?? 0) | (c.O_NONBLOCK ?? 0) | (c.O_NOFOLLOW ?? 0));
  } catch {
    return undefined;
  }
  try {
    if (fs.fstatSync(fd).isCharacterDevice()) return fd;
  } catch { /* not usable */ }
  fs.closeSync(fd);
  return undefined;
}

/**
 * A reporter writing to `/dev/kmsg` (one record per message, with the
 * kernel log priority prefix) or, when `kmsg` is false or unavailable, to
 * the normal logger (stderr).
 *
 * @example
 * ```ts
 * const r = createReporter(settings.kmsg);
 * r.error("layout busybox: index.json: bad JSON");
 * ```
 */
export function createReporter(kmsg: boolean, path = "/dev/kmsg", consolePath = "/dev/console"): Reporter {
  const fd = kmsg ? openCharDevice(path) : undefined;
  // without a kernel log, systemd's generators write to the console; so does this one
  const consoleFd = kmsg && fd === undefined ? openCharDevice(consolePath) : undefined;
  const write = (prio: number, msg: string, fallback: (m: string) => void) => {
    try {
      if (fd !== undefined) {
        fs.writeSync(fd, kmsgRecord(prio, msg));
        return;
      }
      if (consoleFd !== undefined) {
        fs.writeSync(consoleFd, `ocigen-generator: ${msg.replace(/[\r\n]+/g, " ")}\n`);
        return;
      }
    } catch {
      /* fall back to stderr */
    }
    fallback(msg);
  };
  return {
    error: (m) => write(3, m, log.error),
    warn: (m) => write(4, m, log.warn),
    info: (m) => log.info(m),
    notice: (m) => write(5, m, (x) => {
      if (!isQuiet()) process.stderr.write(`ocigen: ${oneLine(x)}\n`);
    }),
    kmsg: fd !== undefined,
  };
}
