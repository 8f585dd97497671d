/**
 * Minimal levelled logger writing one line per message to stderr.
 *
 * @module
 */
import process from "node:process";

/** Log levels, most verbose first. */
export type LogLevel = "debug" | "info" | "warn" | "error";
const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

let current: LogLevel = "warn";
let quiet = false;

/**
 * Sets the process-wide log level (`--log`) and quiet flag (`--quiet`).
 *
 * @example
 * ```ts
 * setLogLevel("debug");
 * ```
 */
export function setLogLevel(level: LogLevel, isQuiet = false): void {
  current = level;
  quiet = isQuiet;
}

let escapesOk = true;

/**
 * Tells whether the terminal understands the escape sequences the progress
 * line redraws itself with; the CLI passes `false` for `TERM=dumb` (Emacs
 * shells, some CI logs), and then no progress is drawn at all.
 *
 * @example
 * ```ts
 * setTerminalCapable(settings.terminalCapable);
 * ```
 */
export function setTerminalCapable(ok: boolean): void {
  escapesOk = ok;
}

/** True when progress output may be shown (stderr is a TTY that is not `TERM=dumb`, and not quiet). */
export function progressEnabled(): boolean {
  return !quiet && escapesOk && Boolean(process.stderr.isTTY);
}

/** True when `--quiet` was given. */
export function isQuiet(): boolean {
  return quiet;
}

let beforeWrite: (() => void) | null = null;

/**
 * Registers a function run before each log line is written (src/progress.ts
 * erases its progress line this way); `null` removes it.
 *
 * @example
 * ```ts
 * setBeforeLogWrite(() => process.stderr.write("\r\x1b[K"));
 * ```
 */
export function setBeforeLogWrite(fn: (() => void) | null): void {
  beforeWrite = fn;
}

/**
 * Escapes control characters (C0 but tab, DEL, C1) as `\n`, `\r` or `\xNN`, so
 * that a message naming a hostile entry or file stays one line and cannot
 * forge log lines or drive the terminal.
 *
 * @example
 * ```ts
 * oneLine("entry a\nb"); // "entry a\\nb"
 * oneLine("x".repeat(4000)).length; // 418: words over 512 characters keep only their ends
 * ```
 */
export function oneLine(msg: string): string {
  return msg.replace(/[\x00-\x08\x0a-\x1f\x7f-\x9f]/g, (c) =>
    c === "\n" ? "\\n" : c === "\r" ? "\\r" : "\\x" + c.charCodeAt(0).toString(16).padStart(2, "0")
  ).replace(/\S{513,}/g, (w) => `${w.slice(0, 200)}...[${w.length} chars]...${w.slice(-200)}`);
}

function emit(level: LogLevel, msg: string): void {
  if (ORDER[level] < ORDER[current]) return;
  if (quiet && level !== "error") return;
  beforeWrite?.();
  process.stderr.write(`ocigen: ${level === "error" ? "" : level + ": "}${oneLine(msg)}\n`);
}

/**
 * The logger.
 *
 * @example
 * ```ts
 * log.info("unpacking layer 1/3");
 * ```
 */
export const log = {
  debug: (m: string) => emit("debug", m),
  info: (m: string) => emit("info", m),
  warn: (m: string) => emit("warn", m),
  error: (m: string) => emit("error", m),
};
