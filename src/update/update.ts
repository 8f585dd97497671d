/**
 * `ocigen update`: roll out moved tags to running services, and roll back
 * what does not come up.
 *
 * One run (under `STATEDIR/update.lock`, one run at a time):
 * 1. Plan with the generator (`generate --dry-run`, pins honoured): each
 *    unit's manifest now, against the manifest its running service was
 *    started with (`EXTRACTS/<unit>/current.json`, written by the companion
 *    at every start). A unit whose tag moved is affected; a pin whose tag
 *    moved again is stale and removed (the tag's new content is then rolled
 *    out like any other); a pin whose tag still names the failed manifest
 *    keeps the unit where it is. `AutoUpdate=no` images are left alone.
 * 2. Extract the new content of every affected unit into the store first
 *    (verified, atomic; a failure here restarts nothing).
 * 3. `systemctl daemon-reload` (the generator writes the units for the new
 *    manifests), then restart the affected units that were running, and
 *    only those; one that was stopped runs the new content at its next start.
 * 4. Watch each restarted service for its health window (./health.ts).
 * 5. A service that fails its window is rolled back: a pin to the manifest
 *    it ran before (src/generator/update-state.ts; the operator's layout is never written),
 *    `daemon-reload` (the generator serves the pinned manifest),
 *    `reset-failed` and a restart, and a check that the old content runs.
 * Every outcome is recorded in the unit's update record for `ocigen status`.
 * The services' volumes are untouched throughout (they survive updates).
 *
 * @module
 */
import * as fs from "node:fs";
import { join } from "node:path";
import { OcigenError, shortDigest, wrapIo } from "../errors.ts";
import { acquireLock } from "../fs/lock.ts";
import { log } from "../log.ts";
import type { GeneratorConfig } from "../generator/config.ts";
import { generate, type GeneratedUnit } from "../generator/generate.ts";
import { settingsForTag } from "../generator/settings.ts";
import type { Reporter } from "../generator/report.ts";
import { unitDir } from "../store/paths.ts";
import { healthRunArgv, type Verdict, watchService } from "./health.ts";
import { DEFAULT_HEALTH_TIMEOUT } from "../generator/update-settings.ts";
import { DEFAULT_STATE_DIR, listPins, type Pin, readPin, recordEvent, removePin, unitBase, writePin } from "../generator/update-state.ts";
import { processRunner, type Runner, showUnits, systemctl, systemdRunning, type UnitProps } from "./systemd.ts";

/**
 * What happened to one unit.
 *
 * @example
 * ```ts
 * const u: UnitUpdate = { unit: "app.ref.v1.service", layout: "app", tag: "v1", to: "sha256:…", status: "updated" };
 * ```
 */
export interface UnitUpdate {
  unit: string;
  /** Layout name (relative to imagelayoutdir). */
  layout: string;
  tag: string;
  /** The manifest before. */
  from?: string;
  /** The tag's manifest (the new content). */
  to: string;
  /**
   * `updated` (restarted and good, or not running: new content at its next start), `rolled-back` (pinned to
   * `from` and restarted), `pinned` (still pinned, nothing to do), `failed` (could not update or roll back),
   * `skipped` (`AutoUpdate=no`), `would-update` (dry run).
   */
  status: "updated" | "rolled-back" | "pinned" | "failed" | "skipped" | "would-update";
  reason?: string;
  seconds?: number;
}

/**
 * What {@linkcode update} did.
 *
 * @example
 * ```ts
 * const r: UpdateResult = await update({ config });
 * ```
 */
export interface UpdateResult {
  units: UnitUpdate[];
  /** Pins removed (stale, or by `unpin`). */
  unpinned: string[];
  /** True when systemd was reloaded. */
  reloaded: boolean;
  errors: string[];
}

/**
 * Options of {@linkcode update}.
 *
 * @example
 * ```ts
 * const o: UpdateOptions = { config, units: ["app.ref.v1.service"], timeoutSeconds: 30 };
 * ```
 */
export interface UpdateOptions {
  config: GeneratorConfig;
  /** Only these units (names or bases); default every unit. */
  units?: string[];
  /** Remove these units' pins first (then roll out their tag like any other). */
  unpin?: string[];
  /** Say what would be done; change nothing. */
  dryRun?: boolean;
  /** Health window for every unit, overriding `HealthTimeout=`. */
  timeoutSeconds?: number;
  /** Runs systemctl/systemd-run (tests: a fake service manager). */
  runner?: Runner;
  /** Whether systemd runs here (default: /run/systemd/system exists). */
  systemd?: boolean;
  /** Extracts `manifest` of `name:tag` into the store (default: the store's verified, locked extraction). */
  prefetch?: (cfg: GeneratorConfig, name: string, tag: string, manifest: string) => Promise<void>;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  /** Poll interval while watching (ms). */
  pollMs?: number;
}

const quietReporter = (errors: string[]): Reporter => ({
  kmsg: false,
  error: (m: string) => errors.push(m),
  warn: (m: string) => log.info(m),
  info: (m: string) => log.debug(m),
  notice: (m: string) => log.debug(m),
});

/**
 * The generator's plan for the current config (pins honoured), written
 * nowhere. Problems of single layouts are returned, not thrown.
 *
 * @example
 * ```ts
 * const { units } = await planUnits(cfg);
 * units.map((u) => `${u.unit} ${u.manifest}`);
 * ```
 */
export async function planUnits(cfg: GeneratorConfig): Promise<{ units: GeneratedUnit[]; errors: string[] }> {
  const errors: string[] = [];
  const r = await generate({ config: cfg, outDir: "/nonexistent-ocigen-plan", dryRun: true, print: () => {}, reporter: quietReporter(errors), ocigen: ["/ocigen"] });
  return { units: r.units, errors };
}

/**
 * The manifest unit `base` was last started with (`EXTRACTS/<base>/current.json`), or undefined.
 *
 * @example
 * ```ts
 * runningManifest(cfg, "app.ref.v1"); // "sha256:…"
 * ```
 */
export function runningManifest(cfg: GeneratorConfig, base: string): string | undefined {
  try {
    const m = (JSON.parse(fs.readFileSync(join(unitDir(cfg.extractsDir, base), "current.json"), "utf8")) as { manifest?: unknown }).manifest;
    return typeof m === "string" ? m : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The default prefetch: the store entry of `manifest` made the way the
 * companion makes it (`ocigen extract`'s locked, verified extraction),
 * without touching the unit's own directory.
 */
async function storePrefetch(cfg: GeneratorConfig, name: string, tag: string, manifest: string): Promise<void> {
  const { prefetchManifest } = await import("./prefetch.ts");
  await prefetchManifest(cfg, name, tag, manifest);
}

const ACTIVE = new Set(["active", "activating", "reloading"]);

/**
 * One `ocigen update` run (see the module docs).
 *
 * @example
 * ```ts
 * const r = await update({ config: loadGeneratorConfig() });
 * for (const u of r.units) console.log(u.unit, u.status, u.reason ?? "");
 * ```
 */
export async function update(opts: UpdateOptions): Promise<UpdateResult> {
  const cfg = opts.config;
  const stateDir = cfg.stateDir ?? DEFAULT_STATE_DIR;
  const runner = opts.runner ?? processRunner;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const now = opts.now ?? Date.now;
  const booted = opts.systemd ?? systemdRunning();
  const result: UpdateResult = { units: [], unpinned: [], reloaded: false, errors: [] };
  if (!booted && !opts.dryRun) throw new OcigenError("EUPDATE", "systemd is not running here: nothing to restart (try --dry-run)");
  const only = opts.units?.length ? new Set(opts.units.map(unitBase)) : null;

  let lock;
  if (!opts.dryRun) {
    try {
      fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw wrapIo(e, "create state directory", stateDir);
    }
    lock = await acquireLock(join(stateDir, "update.lock"), "ocigen update", 0).catch((e) => {
      throw new OcigenError("EUPDATE", `another ocigen update is running (${(e as Error).message})`);
    });
  }
  try {
    const stamp = () => new Date(now()).toISOString();
    for (const u of opts.unpin ?? []) {
      const base = unitBase(u);
      if (!readPin(stateDir, base)) throw new OcigenError("EUPDATE", `${base}.service is not pinned`);
      if (!opts.dryRun) {
        removePin(stateDir, base);
        recordEvent(stateDir, base, { at: stamp(), action: "unpinned", reason: "ocigen update --unpin" });
      }
      result.unpinned.push(`${base}.service`);
    }

    const plan = await planUnits(cfg);
    result.errors.push(...plan.errors);
    const byBase = new Map(plan.units.map((u) => [u.unit.replace(/\.service$/, ""), u]));
    // stale pins: the tag moved again (the generator already ignores them)
    const { pins, errors: pinErrors } = listPins(stateDir);
    result.errors.push(...pinErrors);
    for (const pin of pins) {
      const base = unitBase(pin.unit);
      const u = byBase.get(base);
      if (!u || u.pin || (only && !only.has(base))) continue;
      if (!opts.dryRun) {
        removePin(stateDir, base);
        recordEvent(stateDir, base, { at: stamp(), action: "unpinned", reason: `the tag moved to ${shortDigest(u.tagManifest)}` });
      }
      result.unpinned.push(pin.unit);
    }

    // affected units: the tag names other content than the service was started with
    interface Job {
      u: GeneratedUnit;
      base: string;
      from: string;
      before?: UnitProps;
      healthCmd?: string[];
      timeout: number;
      verdict?: Verdict;
    }
    const jobs: Job[] = [];
    for (const u of plan.units) {
      const base = u.unit.replace(/\.service$/, "");
      if (only && !only.has(base)) continue;
      if (u.pin) {
        result.units.push({ unit: u.unit, layout: u.name, tag: u.tag, from: u.pin.manifest, to: u.tagManifest, status: "pinned", reason: u.pin.reason });
        continue;
      }
      const from = runningManifest(cfg, base);
      if (!from || from === u.manifest) continue;
      let settings;
      try {
        settings = settingsForTag(cfg, u.name, u.tag).update ?? {};
      } catch (e) {
        result.errors.push(`${u.unit}: ${(e as Error).message}`);
        continue;
      }
      if (settings.autoUpdate === false) {
        result.units.push({ unit: u.unit, layout: u.name, tag: u.tag, from, to: u.manifest, status: "skipped", reason: "AutoUpdate=no" });
        continue;
      }
      jobs.push({ u, base, from, healthCmd: settings.healthCmd ?? undefined, timeout: opts.timeoutSeconds ?? settings.healthTimeout ?? DEFAULT_HEALTH_TIMEOUT });
    }
    if (opts.dryRun) {
      for (const j of jobs) result.units.push({ unit: j.u.unit, layout: j.u.name, tag: j.u.tag, from: j.from, to: j.u.manifest, status: "would-update" });
      return result;
    }
    if (jobs.length === 0 && result.unpinned.length === 0) return result;

    // 2. new content into the store first
    const ready: Job[] = [];
    for (const j of jobs) {
      try {
        await (opts.prefetch ?? storePrefetch)(cfg, j.u.name, j.u.tag, j.u.manifest);
        ready.push(j);
      } catch (e) {
        const reason = `extracting ${shortDigest(j.u.manifest)} failed: ${(e as Error).message}`;
        result.units.push({ unit: j.u.unit, layout: j.u.name, tag: j.u.tag, from: j.from, to: j.u.manifest, status: "failed", reason });
        recordEvent(stateDir, j.base, { at: stamp(), action: "failed", from: j.from, to: j.u.manifest, reason });
      }
    }

    if (ready.length === 0 && result.unpinned.length === 0) return result;
    // 3. reload, restart the running ones
    const state = showUnits(runner, ready.map((j) => j.u.unit));
    systemctl(runner, ["daemon-reload"]);
    result.reloaded = true;
    const watched: Job[] = [];
    for (const j of ready) {
      const st = state.get(j.u.unit) ?? {};
      if (!ACTIVE.has(st.ActiveState ?? "")) {
        const reason = "not running: the new content runs at its next start";
        result.units.push({ unit: j.u.unit, layout: j.u.name, tag: j.u.tag, from: j.from, to: j.u.manifest, status: "updated", reason });
        recordEvent(stateDir, j.base, { at: stamp(), action: "updated", from: j.from, to: j.u.manifest, reason }, j.u.manifest);
        continue;
      }
      j.before = st;
      const r = runner.run(["systemctl", "restart", "--", j.u.unit], { timeoutMs: 600_000 });
      if (r.status !== 0) j.verdict = { ok: false, reason: `did not start: ${(r.stderr.trim() || `systemctl restart exited ${r.status}`).split("\n")[0]}`, seconds: 0 };
      watched.push(j);
    }

    // 4. watch them together
    await Promise.all(watched.filter((j) => !j.verdict).map(async (j) => {
      j.verdict = await watchService({
        runner, unit: j.u.unit, before: j.before!, timeoutSeconds: j.timeout, sleep, now, pollMs: opts.pollMs,
        health: j.healthCmd ? healthRunArgv(j.u.text, j.healthCmd, j.timeout) : undefined,
      });
    }));

    // 5. roll back what failed
    const failed = watched.filter((j) => !j.verdict!.ok);
    for (const j of watched.filter((j) => j.verdict!.ok)) {
      result.units.push({ unit: j.u.unit, layout: j.u.name, tag: j.u.tag, from: j.from, to: j.u.manifest, status: "updated", reason: j.verdict!.reason, seconds: j.verdict!.seconds });
      recordEvent(stateDir, j.base, { at: stamp(), action: "updated", from: j.from, to: j.u.manifest, reason: j.verdict!.reason }, j.u.manifest);
    }
    if (failed.length === 0) return result;
    for (const j of failed) {
      const pin: Pin = { unit: j.u.unit, manifest: j.from, from: j.u.manifest, at: stamp(), reason: j.verdict!.reason };
      writePin(stateDir, pin);
      log.warn(`${j.u.unit}: ${shortDigest(j.u.manifest)} ${j.verdict!.reason}; rolling back to ${shortDigest(j.from)}`);
    }
    systemctl(runner, ["daemon-reload"]);
    for (const j of failed) {
      const rb = await rollBack(runner, j.u.unit, sleep, now, opts.pollMs);
      const reason = `${j.verdict!.reason}; ${rb.ok ? "the previous content runs again" : `rollback failed too: ${rb.reason}`}`;
      result.units.push({
        unit: j.u.unit, layout: j.u.name, tag: j.u.tag, from: j.from, to: j.u.manifest, status: rb.ok ? "rolled-back" : "failed", reason,
        seconds: j.verdict!.seconds,
      });
      recordEvent(stateDir, j.base, { at: stamp(), action: rb.ok ? "rolled-back" : "failed", from: j.from, to: j.u.manifest, reason }, j.from);
    }
    return result;
  } finally {
    lock?.release();
  }
}

/** Restarts `unit` on its pinned content and checks it comes up (a short window, no health command). */
async function rollBack(runner: Runner, unit: string, sleep: (ms: number) => Promise<void>, now: () => number, pollMs?: number): Promise<Verdict> {
  runner.run(["systemctl", "reset-failed", "--", unit]);
  const before = showUnits(runner, [unit]).get(unit) ?? {};
  const r = runner.run(["systemctl", "restart", "--", unit], { timeoutMs: 600_000 });
  if (r.status !== 0) return { ok: false, reason: `did not start: ${(r.stderr.trim() || `exit ${r.status}`).split("\n")[0]}`, seconds: 0 };
  return await watchService({ runner, unit, before, timeoutSeconds: 3, sleep, now, pollMs });
}
