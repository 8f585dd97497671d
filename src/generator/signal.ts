/**
 * Image `StopSignal` values to systemd `KillSignal=` values.
 *
 * @module
 */
import { OcigenError } from "../errors.ts";

const NAMES = [
  "", "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2", "PIPE", "ALRM", "TERM",
  "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
];
const ALIASES: Record<string, string> = { IOT: "ABRT", POLL: "IO", CLD: "CHLD" };
const RTMIN = 34;
const RTMAX = 64;

/**
 * Normalizes a stop signal (`SIGTERM`, `TERM`, `15`, `SIGRTMIN+3`) to the
 * `SIGNAME` form systemd accepts. Throws EGENERATE for anything else.
 *
 * @example
 * ```ts
 * normalizeSignal("15");        // "SIGTERM"
 * normalizeSignal("quit");      // "SIGQUIT"
 * normalizeSignal("RTMIN+3");   // "SIGRTMIN+3"
 * ```
 */
export function normalizeSignal(sig: string): string {
  const s = sig.trim();
  const bad = () => new OcigenError("EGENERATE", `Bad StopSignal ${JSON.stringify(sig)}: not a signal`);
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n >= 1 && n < NAMES.length) return "SIG" + NAMES[n];
    if (n >= RTMIN && n <= RTMAX) return n === RTMIN ? "SIGRTMIN" : `SIGRTMIN+${n - RTMIN}`;
    throw bad();
  }
  let name = s.toUpperCase();
  if (name.startsWith("SIG")) name = name.slice(3);
  name = ALIASES[name] ?? name;
  if (NAMES.includes(name) && name !== "") return "SIG" + name;
  const rt = /^RTM(IN|AX)(?:([+-])(\d+))?$/.exec(name);
  if (rt) {
    const off = rt[3] ? Number(rt[3]) : 0;
    const n = rt[1] === "IN" ? (rt[2] === "-" ? NaN : RTMIN + off) : (rt[2] === "+" ? NaN : RTMAX - off);
    if (n >= RTMIN && n <= RTMAX) return n === RTMIN ? "SIGRTMIN" : `SIGRTMIN+${n - RTMIN}`;
  }
  throw bad();
}

/**
 * The number of a signal in the form {@linkcode normalizeSignal} returns.
 *
 * @example
 * ```ts
 * signalNumber("SIGQUIT");     // 3
 * signalNumber("SIGRTMIN+3");  // 37
 * ```
 */
export function signalNumber(normalized: string): number {
  const name = normalized.slice(3);
  const i = NAMES.indexOf(name);
  if (i > 0) return i;
  const rt = /^RTMIN(?:\+(\d+))?$/.exec(name);
  if (rt) return RTMIN + Number(rt[1] ?? 0);
  throw new OcigenError("EGENERATE", `Bad signal ${JSON.stringify(normalized)}`);
}
