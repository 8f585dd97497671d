/**
 * Is a restarted service good? {@linkcode watchService} watches it for its
 * health window (`HealthTimeout=`, src/generator/update-settings.ts) and says no when, within
 * that time, it
 * - fails (`ActiveState=failed`), or ends with a result other than success
 *   or a non-zero exit status,
 * - is restarted by systemd (`Restart=on-failure`: it exited non-zero; seen
 *   as a new invocation, a higher `NRestarts`, or `SubState=auto-restart`),
 * - or, with `HealthCmd=`, the command has not exited 0 by the end.
 * Without a health command the service must stay up the whole window (a
 * command that ends with status 0 is fine); with one, it is good as soon as
 * the command succeeds while the service is active (tried once a second).
 *
 * The health command runs as a transient unit (`systemd-run --wait`) with
 * the service's own `[Service]` settings (root directory, user, environment,
 * sandbox: {@linkcode healthRunArgv}), so image content never runs as an
 * unconfined root process on the host.
 *
 * @module
 */
import type { Runner, UnitProps } from "./systemd.ts";
import { showUnits } from "./systemd.ts";

/** `[Service]` keys of a generated unit that describe how it is started or stopped, not its sandbox. */
const NOT_FOR_HEALTH = new Set([
  "Type", "ExecStart", "ExecStartPre", "ExecStartPost", "ExecStop", "ExecStopPost", "ExecReload", "ExecCondition", "Restart",
  "RestartSec", "SuccessExitStatus", "NotifyAccess", "RemainAfterExit", "TimeoutStopSec", "TimeoutStartSec", "TimeoutSec",
  "WatchdogSec", "RestartPreventExitStatus", "RestartForceExitStatus", "PIDFile", "KillSignal", "KillMode", "SyslogIdentifier",
  "RuntimeMaxSec", "StandardInput", "StandardOutput", "StandardError",
]);

/**
 * The `systemd-run` argv that runs `cmd` with the `[Service]` settings of
 * `unitText` (a generated unit), waiting for it and stopping it after
 * `timeoutSeconds`.
 *
 * @example
 * ```ts
 * healthRunArgv("[Service]\nUser=1000\nRootDirectory=/run/ocigen/app.ref.v1/root\n", ["/bin/check"], 5);
 * // ["systemd-run", "--wait", "--pipe", "--quiet", "--collect", "--service-type=exec", "-p", "RuntimeMaxSec=5", "-p", "User=1000", ..., "--", "/bin/check"]
 * ```
 */
export function healthRunArgv(unitText: string, cmd: readonly string[], timeoutSeconds: number): string[] {
  const argv = ["systemd-run", "--wait", "--pipe", "--quiet", "--collect", "--service-type=exec", "-p", `RuntimeMaxSec=${Math.max(1, Math.ceil(timeoutSeconds))}`];
  let section = "";
  for (const raw of unitText.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    if (line.startsWith("[")) {
      section = line;
      continue;
    }
    if (section !== "[Service]") continue;
    const i = line.indexOf("=");
    if (i <= 0) continue;
    const key = line.slice(0, i);
    if (NOT_FOR_HEALTH.has(key)) continue;
    // unit-file escapes of `%` are not specifiers on the command line
    argv.push("-p", line.replaceAll("%%", "%"));
  }
  argv.push("--", ...cmd);
  return argv;
}

/**
 * A verdict on a restarted service.
 *
 * @example
 * ```ts
 * const v: Verdict = { ok: false, reason: "failed (exit-code, exit status 1)", seconds: 0.5 };
 * ```
 */
export interface Verdict {
  ok: boolean;
  /** Why not (one line), or what made it good. */
  reason: string;
  seconds: number;
}

/**
 * Options of {@linkcode watchService}.
 *
 * @example
 * ```ts
 * const o: WatchOptions = { runner: processRunner, unit, before, timeoutSeconds: 10, sleep, now: Date.now };
 * ```
 */
export interface WatchOptions {
  runner: Runner;
  unit: string;
  /** The properties read just before the restart (NRestarts, InvocationID). */
  before: UnitProps;
  timeoutSeconds: number;
  /** `systemd-run` argv of the health command ({@linkcode healthRunArgv}), if any. */
  health?: string[];
  sleep: (ms: number) => Promise<void>;
  now: () => number;
  /** Poll interval (default 500 ms). */
  pollMs?: number;
}

function exitWord(p: UnitProps): string {
  const code = p.ExecMainCode;
  const st = p.ExecMainStatus ?? "";
  // ExecMainCode: 1 exited, 2 killed, 3 dumped (siginfo codes)
  if (code === "2" || code === "3") return `killed by signal ${st}`;
  return `exit status ${st || "?"}`;
}

/**
 * Watches `unit` after its restart (see the module docs).
 *
 * @example
 * ```ts
 * const v = await watchService({ runner, unit, before, timeoutSeconds: 10, sleep, now: Date.now });
 * if (!v.ok) console.log("rolling back:", v.reason);
 * ```
 */
export async function watchService(o: WatchOptions): Promise<Verdict> {
  const t0 = o.now();
  const deadline = t0 + o.timeoutSeconds * 1000;
  const secs = () => Math.round((o.now() - t0) / 100) / 10;
  const beforeRestarts = Number(o.before.NRestarts ?? "0") || 0;
  let invocation = "";
  let firstRestarts = -1;
  let lastHealth = "";
  for (;;) {
    const p = showUnits(o.runner, [o.unit]).get(o.unit) ?? {};
    const restarts = Number(p.NRestarts ?? "0") || 0;
    if (firstRestarts < 0) firstRestarts = restarts;
    if (p.LoadState && p.LoadState !== "loaded") return { ok: false, reason: `LoadState=${p.LoadState}`, seconds: secs() };
    if (p.ActiveState === "failed") return { ok: false, reason: `failed (${p.Result || "?"}, ${exitWord(p)})`, seconds: secs() };
    // a manual restart may or may not reset NRestarts: any growth after the restart counts
    if (p.SubState === "auto-restart" || restarts > firstRestarts || firstRestarts > beforeRestarts) {
      return { ok: false, reason: `exited (${exitWord(p)}) and was restarted by systemd`, seconds: secs() };
    }
    if (invocation && p.InvocationID && p.InvocationID !== invocation) {
      return { ok: false, reason: `was restarted by systemd (${exitWord(p)})`, seconds: secs() };
    }
    if (p.InvocationID) invocation = p.InvocationID;
    if (p.ActiveState === "inactive") {
      if ((p.Result && p.Result !== "success") || (p.ExecMainStatus && p.ExecMainStatus !== "0")) {
        return { ok: false, reason: `ended (${p.Result || "?"}, ${exitWord(p)})`, seconds: secs() };
      }
      if (!o.health) return { ok: true, reason: "ran to its end with status 0", seconds: secs() };
      return { ok: false, reason: "ended before its health command succeeded", seconds: secs() };
    }
    if (o.health && p.ActiveState === "active") {
      const left = Math.max(1, Math.ceil((deadline - o.now()) / 1000));
      const r = o.runner.run(o.health, { timeoutMs: (left + 5) * 1000 });
      if (r.status === 0) return { ok: true, reason: `health command succeeded after ${secs()} s`, seconds: secs() };
      lastHealth = `${r.status === null ? "timed out" : `exit ${r.status}`}${(r.stderr || r.stdout).trim() ? `: ${(r.stderr || r.stdout).trim().split("\n").at(-1)}` : ""}`;
    }
    if (o.now() >= deadline) {
      if (o.health) return { ok: false, reason: `health command did not succeed within ${o.timeoutSeconds} s (last: ${lastHealth || "not run: the service never became active"})`, seconds: secs() };
      if (p.ActiveState !== "active") return { ok: false, reason: `not active after ${o.timeoutSeconds} s (${p.ActiveState}/${p.SubState})`, seconds: secs() };
      return { ok: true, reason: `stayed active for ${o.timeoutSeconds} s`, seconds: secs() };
    }
    await o.sleep(Math.min(o.pollMs ?? 500, Math.max(0, deadline - o.now())));
  }
}
