/**
 * How `ocigen status` and `ocigen update` talk to the service manager: by
 * running `systemctl` and `systemd-run` through a {@linkcode Runner}, which
 * tests replace with a fake service manager. Nothing here parses unit files;
 * state comes from `systemctl show`.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { OcigenError } from "../errors.ts";

/**
 * What a command run gave.
 *
 * @example
 * ```ts
 * const r: RunResult = processRunner.run(["systemctl", "--version"]);
 * ```
 */
export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command (argv form) to its end.
 *
 * @example
 * ```ts
 * const fake: Runner = { run: () => ({ status: 0, stdout: "ActiveState=active\n", stderr: "" }) };
 * ```
 */
export interface Runner {
  run(argv: readonly string[], opts?: { timeoutMs?: number }): RunResult;
}

/**
 * The real {@linkcode Runner}: `spawnSync`, stdin from /dev/null.
 *
 * @example
 * ```ts
 * processRunner.run(["systemctl", "is-system-running"]).stdout; // "running\n"
 * ```
 */
export const processRunner: Runner = {
  run(argv, opts = {}) {
    const r = spawnSync(argv[0], argv.slice(1), { encoding: "utf8", timeout: opts.timeoutMs ?? 120_000, stdio: ["ignore", "pipe", "pipe"], maxBuffer: 16 << 20 });
    return { status: r.status, stdout: r.stdout ?? "", stderr: (r.stderr ?? "") + (r.error ? `${r.error.message}\n` : "") };
  },
};

/**
 * True when this machine runs systemd as its service manager (sd_booted(3)).
 *
 * @example
 * ```ts
 * if (!systemdRunning()) console.log("state unknown");
 * ```
 */
export function systemdRunning(): boolean {
  return fs.existsSync("/run/systemd/system");
}

/**
 * The properties status and update read of each unit.
 *
 * @example
 * ```ts
 * showUnits(processRunner, ["app.ref.v1.service"], SHOW_PROPERTIES);
 * ```
 */
export const SHOW_PROPERTIES = ["Id", "LoadState", "ActiveState", "SubState", "Result", "NRestarts", "ExecMainStatus", "ExecMainCode", "InvocationID", "MainPID"] as const;

/**
 * One unit's `systemctl show` properties.
 *
 * @example
 * ```ts
 * const p: UnitProps = { ActiveState: "active", NRestarts: "0" };
 * ```
 */
export type UnitProps = Record<string, string>;

/**
 * Parses `systemctl show` output of one or more units (blocks separated by
 * an empty line).
 *
 * @example
 * ```ts
 * parseShow("Id=a.service\nActiveState=active\n\nId=b.service\nActiveState=failed\n"); // [{ Id: "a.service", ActiveState: "active" }, ...]
 * ```
 */
export function parseShow(text: string): UnitProps[] {
  const out: UnitProps[] = [];
  for (const block of text.split(/\n\s*\n/)) {
    const rec: UnitProps = {};
    for (const line of block.split("\n")) {
      const i = line.indexOf("=");
      if (i > 0) rec[line.slice(0, i)] = line.slice(i + 1);
    }
    if (Object.keys(rec).length > 0) out.push(rec);
  }
  return out;
}

/**
 * `systemctl show` of `units` (one call), by unit name. Throws EIO when systemctl fails.
 *
 * @example
 * ```ts
 * showUnits(processRunner, ["app.ref.v1.service"]).get("app.ref.v1.service")?.ActiveState; // "active"
 * ```
 */
export function showUnits(runner: Runner, units: readonly string[], props: readonly string[] = SHOW_PROPERTIES): Map<string, UnitProps> {
  const map = new Map<string, UnitProps>();
  if (units.length === 0) return map;
  const want = props.includes("Id") ? props : ["Id", ...props];
  const r = runner.run(["systemctl", "show", ...want.map((p) => `--property=${p}`), "--", ...units]);
  if (r.status !== 0) throw new OcigenError("EIO", `systemctl show failed: ${r.stderr.trim() || `exit ${r.status}`}`);
  const blocks = parseShow(r.stdout);
  // systemctl prints the blocks in argument order; Id names the unit (an alias would differ: use the order)
  units.forEach((u, i) => map.set(u, blocks[i] ?? {}));
  return map;
}

/**
 * Runs `systemctl ARGS`; throws EUPDATE with systemctl's message on failure.
 *
 * @example
 * ```ts
 * systemctl(processRunner, ["daemon-reload"]);
 * ```
 */
export function systemctl(runner: Runner, args: readonly string[], timeoutMs = 300_000): void {
  const r = runner.run(["systemctl", ...args], { timeoutMs });
  if (r.status !== 0) {
    throw new OcigenError("EUPDATE", `systemctl ${args.join(" ")} failed: ${(r.stderr.trim() || r.stdout.trim() || `exit ${r.status}`).split("\n")[0]}`);
  }
}
