/**
 * `ocigen status`: what the generated services are, run and wait for.
 *
 * Read-only and quick: it plans the units the way the generator does
 * (`generate --dry-run`, pins honoured), reads each unit's `current.json`
 * (the manifest its service was last started with) and the store, asks
 * systemd for every unit's state in one `systemctl show` (when systemd runs;
 * else the state is `unknown`), and reads the pins and update records of
 * `ocigen update` (src/generator/update-state.ts). It also lists the extracted trees
 * no unit uses any more (those `gc-extracts` would remove, with their size)
 * and the volumes whose unit is gone (only `ocigen volume rm` deletes them).
 *
 * @module
 */
import * as fs from "node:fs";
import { join } from "node:path";
import type { GeneratorConfig } from "../generator/config.ts";
import { listVolumes } from "../generator/orphans.ts";
import { openStore } from "../store/index.ts";
import { planUnits, runningManifest } from "../update/update.ts";
import { DEFAULT_STATE_DIR, listPins, readRecord, type UpdateEvent } from "../generator/update-state.ts";
import { processRunner, type Runner, showUnits, systemdRunning } from "../update/systemd.ts";

/**
 * One unit's status.
 *
 * @example
 * ```ts
 * const u: UnitStatus = (await gatherStatus({ config })).units[0];
 * ```
 */
export interface UnitStatus {
  unit: string;
  /** Layout name (relative to imagelayoutdir). */
  layout: string;
  tag: string;
  /** `LAYOUT:TAG`. */
  image: string;
  /** The manifest the service runs: the one it was last started with, else the one it would start with. */
  manifest: string;
  /** The manifest the tag names now. */
  tagManifest: string;
  /** The manifest the next start runs (the tag's, or the pinned one). */
  nextManifest: string;
  /** The store holds that manifest's rootfs (published only after every layer was verified). */
  extracted: boolean;
  /** systemd's ActiveState (`active`, `failed`...), or `unknown` without systemd. */
  state: string;
  subState?: string;
  /** Automatic restarts systemd made (`NRestarts`). */
  restarts?: number;
  /** The image's exposed ports (`80/tcp`). */
  ports: string[];
  /** The rollback pin holding the unit on an earlier manifest. */
  pin?: { manifest: string; from: string; at: string; reason: string };
  /** `pending`: the tag names content the service does not run yet (a restart, or `ocigen update`, rolls it out). */
  pending: boolean;
  /** The last `ocigen update` event of this unit. */
  update?: UpdateEvent;
}

/**
 * What {@linkcode gatherStatus} found.
 *
 * @example
 * ```ts
 * const r: StatusReport = await gatherStatus({ config });
 * ```
 */
export interface StatusReport {
  units: UnitStatus[];
  /** Extracted trees no unit uses (`gc-extracts` removes them). */
  unused: Array<{ path: string; manifest: string; unpackedBytes: number }>;
  /** Volume directories whose unit is gone. */
  volumes: Array<{ path: string; unit: string }>;
  /** Whether unit states came from systemd. */
  systemd: boolean;
  errors: string[];
}

/**
 * Options of {@linkcode gatherStatus}.
 *
 * @example
 * ```ts
 * const o: StatusOptions = { config, systemd: false };
 * ```
 */
export interface StatusOptions {
  config: GeneratorConfig;
  /** Runs systemctl (tests: a fake). */
  runner?: Runner;
  /** Whether systemd runs here (default: /run/systemd/system exists). */
  systemd?: boolean;
}

/**
 * Bytes of the regular files (and symlinks) below `dir`, without following links.
 *
 * @example
 * ```ts
 * treeBytes("/var/lib/oci/extracts/.store/sha256/ab…/rootfs"); // 4718592
 * ```
 */
export function treeBytes(dir: string): number {
  let total = 0;
  const stack = [dir];
  while (stack.length > 0) {
    const d = stack.pop()!;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) stack.push(p);
      else {
        try {
          total += fs.lstatSync(p).size;
        } catch { /* gone */ }
      }
    }
  }
  return total;
}

/**
 * Gathers the status (see the module docs).
 *
 * @example
 * ```ts
 * const r = await gatherStatus({ config: loadGeneratorConfig() });
 * for (const u of r.units) console.log(u.unit, u.state, u.manifest);
 * ```
 */
export async function gatherStatus(opts: StatusOptions): Promise<StatusReport> {
  const cfg = opts.config;
  const stateDir = cfg.stateDir ?? DEFAULT_STATE_DIR;
  const booted = opts.systemd ?? systemdRunning();
  const runner = opts.runner ?? processRunner;
  const plan = await planUnits(cfg);
  const errors = [...plan.errors];
  // a pin file that cannot be read is ignored by the generator: say so here
  errors.push(...listPins(stateDir).errors);
  let states = new Map<string, Record<string, string>>();
  if (booted) {
    try {
      states = showUnits(runner, plan.units.map((u) => u.unit), ["Id", "LoadState", "ActiveState", "SubState", "NRestarts"]);
    } catch (e) {
      errors.push((e as Error).message);
    }
  }
  const store = openStore(cfg.extractsDir);
  const units: UnitStatus[] = plan.units.map((u) => {
    const base = u.unit.replace(/\.service$/, "");
    const running = runningManifest(cfg, base);
    const manifest = running ?? u.manifest;
    const st = states.get(u.unit);
    let last: UpdateEvent | undefined;
    try {
      last = readRecord(stateDir, base).history.at(-1);
    } catch (e) {
      errors.push(`${u.unit}: ${(e as Error).message}`);
    }
    return {
      unit: u.unit, layout: u.name, tag: u.tag, image: `${u.name}:${u.tag}`, manifest, tagManifest: u.tagManifest, nextManifest: u.manifest,
      extracted: store.has(manifest),
      state: booted ? (st?.ActiveState || "unknown") : "unknown",
      ...(st?.SubState ? { subState: st.SubState } : {}),
      ...(st?.NRestarts !== undefined && st.NRestarts !== "" && !Number.isNaN(Number(st.NRestarts)) ? { restarts: Number(st.NRestarts) } : {}),
      ports: u.ports,
      ...(u.pin ? { pin: u.pin } : {}),
      pending: running !== undefined && running !== u.manifest,
      ...(last ? { update: last } : {}),
    };
  });

  // extracted trees no unit uses: exactly what gc-extracts would remove from the store
  const unused: StatusReport["unused"] = [];
  try {
    const { gcExtracts } = await import("../generator/gc.ts");
    const gc = await gcExtracts({ config: cfg, dryRun: true });
    const prefix = join(cfg.extractsDir, ".store") + "/";
    for (const p of gc.removed) {
      if (!p.startsWith(prefix)) continue;
      const [alg, hex] = p.slice(prefix.length).split("/");
      const manifest = `${alg}:${hex}`;
      unused.push({ path: p, manifest, unpackedBytes: treeBytes(join(p, "rootfs")) });
    }
    for (const e of gc.errors) if (!errors.includes(e)) errors.push(e);
  } catch (e) {
    errors.push((e as Error).message);
  }

  const volumes: StatusReport["volumes"] = [];
  try {
    for (const v of await listVolumes(cfg)) {
      if (v.orphaned) volumes.push({ path: v.dir, unit: `${v.dir.slice(v.dir.lastIndexOf("/") + 1)}.service` });
    }
  } catch (e) {
    errors.push((e as Error).message);
  }
  return { units, unused, volumes, systemd: booted, errors };
}
