/**
 * What happens to a service whose tag or layout was removed.
 *
 * The generator only writes unit files (systemd.generator(7): it must not
 * talk to the service manager while it reloads), so after the next
 * `daemon-reload` a removed tag's unit file is gone: `systemctl cat` and
 * `systemctl start` no longer know it. systemd keeps a unit that is still
 * running after its file vanished (LoadState=not-found, ActiveState=active)
 * until it is stopped, and it no longer knows its companion's `ExecStop=`
 * (which releases the service's overlay root).
 *
 * `ocigen gc-extracts` therefore first stops such orphans: every loaded
 * `*.ref.*.service` and `ocigen-extract@*.service` unit whose file is gone
 * ({@linkcode findOrphans}) is stopped with `systemctl stop` (its stop signal
 * and timeout are the ones systemd still holds), then the service's root is
 * unmounted and its writable layer dropped; only then does gc collect the
 * extracted trees no unit uses.
 *
 * Volumes (`VOLUMESDIR/<unit>/`) are never deleted by gc or uninstall:
 * {@linkcode orphanVolumes} lists those whose unit no tag produces any more,
 * and only {@linkcode removeVolumes} (`ocigen volume rm UNIT`) deletes one.
 *
 * @module
 */
import * as fs from "node:fs";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { OcigenError, wrapIo } from "../errors.ts";
import { Layout } from "../oci/layout.ts";
import type { GeneratorConfig } from "./config.ts";
import { discoverLayouts } from "./discover.ts";
import { unitBaseName } from "./naming.ts";
import { releaseServiceRoot } from "./serviceroot.ts";
import { DEFAULT_RUN_DIR, DEFAULT_VOLUMES_DIR, safeName, serviceRunDir } from "./state.ts";

/**
 * A loaded unit as `systemctl list-units` shows it.
 *
 * @example
 * ```ts
 * const u: LoadedUnit = { unit: "busybox.ref.old.service", load: "not-found", active: "active" };
 * ```
 */
export interface LoadedUnit {
  unit: string;
  load: string;
  active: string;
}

/**
 * How orphans are found and stopped (replaceable in tests).
 *
 * @example
 * ```ts
 * const m: ServiceManager = { list: () => [], stop: () => {} };
 * ```
 */
export interface ServiceManager {
  /** Loaded `*.ref.*.service` and `ocigen-extract@*.service` units. */
  list(): LoadedUnit[];
  /** `systemctl stop UNITS`. */
  stop(units: string[]): void;
}

/**
 * The real {@linkcode ServiceManager}: `systemctl`.
 *
 * @example
 * ```ts
 * systemctlManager.list(); // [{ unit: "busybox.ref.old.service", load: "not-found", active: "active" }]
 * ```
 */
export const systemctlManager: ServiceManager = {
  list() {
    const r = spawnSync("systemctl", ["list-units", "--all", "--plain", "--no-legend", "--no-pager", "--type=service", "*.ref.*.service", "ocigen-extract@*.service"], { encoding: "utf8" });
    if (r.error || r.status !== 0) throw new OcigenError("EIO", `systemctl list-units failed: ${(r.stderr || r.error?.message || "").trim()}`);
    return parseListUnits(r.stdout);
  },
  stop(units) {
    const r = spawnSync("systemctl", ["stop", "--", ...units], { encoding: "utf8" });
    if (r.error || r.status !== 0) throw new OcigenError("EIO", `systemctl stop ${units.join(" ")} failed: ${(r.stderr || r.error?.message || "").trim()}`);
  },
};

/**
 * True when this machine runs systemd as its service manager (sd_booted(3)):
 * only then are there units to stop.
 *
 * @example
 * ```ts
 * if (systemdBooted()) stopOrphans(cfg);
 * ```
 */
export function systemdBooted(): boolean {
  return fs.existsSync("/run/systemd/system");
}

/**
 * Parses `systemctl list-units --plain --no-legend` output (UNIT LOAD ACTIVE SUB DESCRIPTION).
 *
 * @example
 * ```ts
 * parseListUnits("a.ref.b.service not-found active running a.ref.b.service\n"); // [{ unit: "a.ref.b.service", load: "not-found", active: "active" }]
 * ```
 */
export function parseListUnits(text: string): LoadedUnit[] {
  const out: LoadedUnit[] = [];
  for (const line of text.split("\n")) {
    // U+25CF (the bullet systemctl marks failed units with), escaped: the
    // bundled program must stay ASCII (see .ci/code-cache.mjs)
    const [unit, load, active] = line.replace(/^[\u25cf*]\s*/, "").trim().split(/\s+/);
    if (unit && load && active) out.push({ unit, load, active });
  }
  return out;
}

/**
 * The running units whose file is gone: LoadState not-found (or the unit
 * knows no file any more) and not inactive.
 *
 * @example
 * ```ts
 * findOrphans(systemctlManager.list()); // ["busybox.ref.old.service", "ocigen-extract@busybox.ref.old.service"]
 * ```
 */
export function findOrphans(units: LoadedUnit[]): string[] {
  return units.filter((u) => u.load === "not-found" && u.active !== "inactive").map((u) => u.unit).sort();
}

/**
 * What {@linkcode stopOrphans} did.
 *
 * @example
 * ```ts
 * const r: OrphanResult = { stopped: ["busybox.ref.old.service"], errors: [] };
 * ```
 */
export interface OrphanResult {
  /** Units stopped (or, dry-run, that would be). */
  stopped: string[];
  /** Problems met. */
  errors: string[];
}

/**
 * Stops the running units whose tag or layout is gone and releases their
 * roots (see the module docs).
 *
 * @example
 * ```ts
 * const { stopped } = stopOrphans(loadGeneratorConfig());
 * ```
 */
export function stopOrphans(cfg: GeneratorConfig, opts: { dryRun?: boolean; manager?: ServiceManager } = {}): OrphanResult {
  const manager = opts.manager ?? systemctlManager;
  const errors: string[] = [];
  let orphans: string[];
  try {
    orphans = findOrphans(manager.list());
  } catch (e) {
    return { stopped: [], errors: [(e as Error).message] };
  }
  if (orphans.length === 0 || opts.dryRun) return { stopped: orphans, errors };
  // services first, then their companions (the companion's stop would stop the service too, without its ExecStop)
  const services = orphans.filter((u) => !u.startsWith("ocigen-extract@"));
  const companions = orphans.filter((u) => u.startsWith("ocigen-extract@"));
  for (const group of [services, companions]) {
    if (group.length === 0) continue;
    try {
      manager.stop(group);
    } catch (e) {
      errors.push((e as Error).message);
    }
  }
  const bases = new Set(orphans.map((u) => u.replace(/^ocigen-extract@/, "").replace(/\.service$/, "")));
  for (const base of bases) {
    try {
      releaseServiceRoot(cfg.runDir ?? DEFAULT_RUN_DIR, base);
    } catch (e) {
      errors.push(`${base}.service: ${(e as Error).message}`);
    }
  }
  return { stopped: orphans, errors };
}

/**
 * The unit bases (`NAME.ref.TAG`) the current layouts produce (every tag,
 * whether or not settings make it a unit: a volume is kept while its tag
 * exists). `complete` is false when a layout could not be read.
 *
 * @example
 * ```ts
 * const { bases } = await currentUnitBases(cfg);
 * ```
 */
export async function currentUnitBases(cfg: GeneratorConfig): Promise<{ bases: Set<string>; complete: boolean }> {
  const bases = new Set<string>();
  const disc = await discoverLayouts(cfg.imageLayoutDir);
  let complete = disc.errors.length === 0;
  for (const { name, dir } of disc.layouts) {
    try {
      for (const tag of await (await Layout.open(dir)).listTags()) bases.add(safeName(unitBaseName(name, tag)));
    } catch {
      complete = false;
    }
  }
  return { bases, complete };
}

/**
 * Volume directories (`VOLUMESDIR/<unit>`) whose unit no current tag
 * produces: reported, never removed here. Empty when the layouts could not
 * all be read (nothing is called orphaned on a guess).
 *
 * @example
 * ```ts
 * await orphanVolumes(cfg); // ["/var/lib/ocigen/volumes/busybox.ref.old"]
 * ```
 */
export async function orphanVolumes(cfg: GeneratorConfig): Promise<string[]> {
  return (await listVolumes(cfg)).filter((v) => v.orphaned).map((v) => v.dir);
}

/**
 * Every service's volume directory, orphaned or not (orphaned only when all
 * layouts could be read).
 *
 * @example
 * ```ts
 * await listVolumes(cfg); // [{ dir: "/var/lib/ocigen/volumes/busybox.ref.old", orphaned: true }]
 * ```
 */
export async function listVolumes(cfg: GeneratorConfig): Promise<{ dir: string; orphaned: boolean }[]> {
  const dir = cfg.volumesDir ?? DEFAULT_VOLUMES_DIR;
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => !n.startsWith("."));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw wrapIo(e, "read directory", dir);
  }
  const { bases, complete } = await currentUnitBases(cfg);
  return names.sort().map((n) => ({ dir: join(dir, n), orphaned: complete && !bases.has(n) }));
}

/**
 * Deletes the volumes of `unit` (a unit name or its base): the explicit
 * command, refused while that unit's service root is mounted (it runs).
 * Returns the removed directory.
 *
 * @example
 * ```ts
 * removeVolumes(cfg, "busybox.ref.old.service"); // "/var/lib/ocigen/volumes/busybox.ref.old"
 * ```
 */
export function removeVolumes(cfg: GeneratorConfig, unit: string): string {
  const base = unit.replace(/\.service$/, "");
  if (base === "" || base.includes("/") || base.startsWith(".")) throw new OcigenError("EVOLUME", `Bad unit name ${JSON.stringify(unit)}`);
  const dir = join(cfg.volumesDir ?? DEFAULT_VOLUMES_DIR, safeName(base));
  if (!fs.existsSync(dir)) throw new OcigenError("EVOLUME", `${base}.service has no volumes (${dir} does not exist)`);
  const root = serviceRunDir(cfg.runDir ?? DEFAULT_RUN_DIR, base);
  if (fs.existsSync(root)) throw new OcigenError("EVOLUME", `${base}.service is running (its root ${root} exists); stop it first`);
  try {
    fs.rmSync(dir, { recursive: true });
  } catch (e) {
    throw wrapIo(e, "remove", dir);
  }
  return dir;
}
