/**
 * What `ocigen update` remembers between runs: pins and update records.
 * It lives with the generator because the generator reads the pins (a unit
 * is generated for its pinned manifest, ./pin.ts); `ocigen update` writes
 * them and `ocigen status` reads the records.
 *
 * On-disk format, under the state directory (`statedir =` in
 * `/etc/oci-generator.conf`, default `/var/lib/ocigen/state`, created 0700):
 * ```
 * STATEDIR/pins/<name>.json     a pin: {"unit","manifest","from","at","reason"}
 * STATEDIR/units/<name>.json    the unit's update record: {"unit","manifest","at","history":[...]}
 * STATEDIR/update.lock          held while `ocigen update` runs (one at a time)
 * ```
 * `<name>` is {@linkcode safeName} of the unit base name (`NAME.ref.TAG`).
 *
 * A pin says: while the tag names manifest `from` (the one that failed),
 * the unit runs manifest `manifest` (the one it ran before). The generator
 * honours it ({@linkcode pinFor}); once the tag names anything else the pin
 * is stale, the generator ignores it and the next `ocigen update` removes
 * it. `ocigen update --unpin UNIT` removes it by hand. The operator's
 * layout is never written.
 *
 * An update record keeps the manifest the last update run rolled out and the
 * last {@linkcode HISTORY_LIMIT} events (`updated`, `rolled-back`,
 * `unpinned`, `failed`), newest last, for `ocigen status`.
 *
 * Files are written atomically (temporary name, rename); a file that cannot
 * be parsed is reported as a problem of that unit, never silently dropped.
 *
 * @module
 */
import * as fs from "node:fs";
import { join } from "node:path";
import { OcigenError, wrapIo } from "../errors.ts";
import { tempPath } from "../fs/atomic.ts";
import { parseDigest } from "../oci/digest.ts";
import { safeName } from "./state.ts";
import type { DirNames } from "../fs/names.ts";

/**
 * Default state directory.
 *
 * @example
 * ```ts
 * pinPath(cfg.stateDir ?? DEFAULT_STATE_DIR, "app.ref.v1");
 * ```
 */
export const DEFAULT_STATE_DIR = "/var/lib/ocigen/state";

/**
 * Events kept per unit.
 *
 * @example
 * ```ts
 * readRecord(dir, "app.ref.v1").history.length <= HISTORY_LIMIT; // true
 * ```
 */
export const HISTORY_LIMIT = 20;

/**
 * A pin (see the module docs).
 *
 * @example
 * ```ts
 * const pin: Pin = { unit: "app.ref.v1.service", manifest: "sha256:…", from: "sha256:…", at: "2026-12-06T22:00:00.000Z", reason: "exited 1" };
 * ```
 */
export interface Pin {
  /** The unit, `NAME.ref.TAG.service`. */
  unit: string;
  /** The manifest the unit runs while pinned (the previous one). */
  manifest: string;
  /** The manifest the tag named when the pin was made (the one that failed). */
  from: string;
  /** ISO time the pin was made. */
  at: string;
  /** Why (one line). */
  reason: string;
}

/**
 * One event of an update record.
 *
 * @example
 * ```ts
 * const e: UpdateEvent = { at: new Date().toISOString(), action: "updated", from: "sha256:…", to: "sha256:…" };
 * ```
 */
export interface UpdateEvent {
  at: string;
  action: "updated" | "rolled-back" | "unpinned" | "failed";
  /** The manifest before. */
  from?: string;
  /** The manifest after (for `rolled-back`: the one that failed). */
  to?: string;
  reason?: string;
}

/**
 * A unit's update record.
 *
 * @example
 * ```ts
 * const r: UpdateRecord = readRecord("/var/lib/ocigen/state", "app.ref.v1");
 * ```
 */
export interface UpdateRecord {
  unit: string;
  /** The manifest the last update run left it on. */
  manifest?: string;
  /** ISO time of the last event. */
  at?: string;
  history: UpdateEvent[];
}

/**
 * The path of the pin file of unit base `base`.
 *
 * @example
 * ```ts
 * pinPath("/var/lib/ocigen/state", "app.ref.v1"); // "/var/lib/ocigen/state/pins/app.ref.v1.json"
 * ```
 */
export function pinPath(stateDir: string, base: string): string {
  return join(stateDir, "pins", `${safeName(base)}.json`);
}

/**
 * The path of the update record of unit base `base`.
 *
 * @example
 * ```ts
 * recordPath("/var/lib/ocigen/state", "app.ref.v1"); // "/var/lib/ocigen/state/units/app.ref.v1.json"
 * ```
 */
export function recordPath(stateDir: string, base: string): string {
  return join(stateDir, "units", `${safeName(base)}.json`);
}

/**
 * The unit base name of a unit argument (`NAME.ref.TAG.service` or `NAME.ref.TAG`).
 *
 * @example
 * ```ts
 * unitBase("app.ref.v1.service"); // "app.ref.v1"
 * ```
 */
export function unitBase(unit: string): string {
  const base = unit.replace(/\.service$/, "");
  if (base === "" || base.includes("/") || base.startsWith(".") || /[\x00-\x1f]/.test(base)) {
    throw new OcigenError("EUPDATE", `Bad unit name ${JSON.stringify(unit)}`);
  }
  return base;
}

function readJson(path: string, names?: DirNames): unknown | null {
  if (names && !names.mayExist(path)) return null;
  let text: string;
  try {
    // Most units have no pin or record: find that out without an exception
    // (the generator asks for every unit at every boot).
    if (!fs.statSync(path, { throwIfNoEntry: false })) return null;
    text = fs.readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return null;
    throw wrapIo(e, "read", path);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new OcigenError("EUPDATE", `${path}: not JSON (${(e as Error).message})`);
  }
}

function isDigest(v: unknown): v is string {
  if (typeof v !== "string") return false;
  try {
    parseDigest(v);
    return true;
  } catch {
    return false;
  }
}

/**
 * The pin of unit base `base`, or null. Throws EUPDATE naming the file when
 * it is not a pin.
 *
 * @example
 * ```ts
 * readPin("/var/lib/ocigen/state", "app.ref.v1"); // { unit, manifest, from, at, reason } or null
 * ```
 */
export function readPin(stateDir: string, base: string, names?: DirNames): Pin | null {
  const path = pinPath(stateDir, base);
  const v = readJson(path, names) as Partial<Pin> | null;
  if (v === null) return null;
  if (typeof v !== "object" || !isDigest(v.manifest) || !isDigest(v.from)) {
    throw new OcigenError("EUPDATE", `${path}: not a pin (needs "manifest" and "from" digests)`);
  }
  return { unit: String(v.unit ?? `${base}.service`), manifest: v.manifest, from: v.from, at: String(v.at ?? ""), reason: String(v.reason ?? "") };
}

function writeJson(path: string, value: unknown): void {
  const dir = path.slice(0, path.lastIndexOf("/"));
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw wrapIo(e, "create directory", dir);
  }
  const tmp = tempPath(dir);
  try {
    fs.writeFileSync(tmp, JSON.stringify(value, null, 2) + "\n", { mode: 0o600 });
    fs.renameSync(tmp, path);
  } catch (e) {
    try {
      fs.rmSync(tmp, { force: true });
    } catch { /* ignore */ }
    throw wrapIo(e, "write", path);
  }
}

/**
 * Writes (replaces) the pin of `pin.unit`.
 *
 * @example
 * ```ts
 * writePin(dir, { unit: "app.ref.v1.service", manifest: old, from: bad, at: new Date().toISOString(), reason: "exited 1" });
 * ```
 */
export function writePin(stateDir: string, pin: Pin): void {
  writeJson(pinPath(stateDir, unitBase(pin.unit)), pin);
}

/**
 * Removes the pin of unit base `base`; true if there was one.
 *
 * @example
 * ```ts
 * removePin("/var/lib/ocigen/state", "app.ref.v1"); // true
 * ```
 */
export function removePin(stateDir: string, base: string): boolean {
  const path = pinPath(stateDir, base);
  try {
    fs.unlinkSync(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw wrapIo(e, "remove", path);
  }
}

/**
 * Every pin in the state directory (unreadable files reported in `errors`).
 *
 * @example
 * ```ts
 * listPins("/var/lib/ocigen/state").pins.map((p) => p.unit);
 * ```
 */
export function listPins(stateDir: string): { pins: Pin[]; errors: string[] } {
  const dir = join(stateDir, "pins");
  const pins: Pin[] = [];
  const errors: string[] = [];
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir).filter((n) => n.endsWith(".json") && !n.startsWith("."));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") errors.push(wrapIo(e, "read directory", dir).message);
  }
  for (const n of names.sort()) {
    try {
      const v = readJson(join(dir, n)) as Partial<Pin> | null;
      if (v && isDigest(v.manifest) && isDigest(v.from) && typeof v.unit === "string") {
        pins.push({ unit: v.unit, manifest: v.manifest, from: v.from, at: String(v.at ?? ""), reason: String(v.reason ?? "") });
      } else errors.push(`${join(dir, n)}: not a pin`);
    } catch (e) {
      errors.push((e as Error).message);
    }
  }
  return { pins, errors };
}

/**
 * The pin the generator honours for unit base `base` whose tag now names
 * `tagManifest`: the pin when it was made against that manifest, else null
 * (no pin, or a stale one: the tag moved again). A broken pin file is
 * ignored here (the generator must not fail a unit over it); `ocigen status`
 * reports it. `names`: the directory listings of one pass (src/fs/names.ts).
 *
 * @example
 * ```ts
 * pinFor(cfgStateDir, "app.ref.v1", img.manifestDescriptor.digest)?.manifest; // the previous manifest while pinned
 * ```
 */
export function pinFor(stateDir: string, base: string, tagManifest: string, names?: DirNames): Pin | null {
  let pin: Pin | null;
  try {
    pin = readPin(stateDir, base, names);
  } catch {
    return null;
  }
  return pin && pin.from === tagManifest && pin.manifest !== tagManifest ? pin : null;
}

/**
 * The update record of unit base `base` (an empty one when none).
 *
 * @example
 * ```ts
 * readRecord("/var/lib/ocigen/state", "app.ref.v1").history.at(-1)?.action; // "updated"
 * ```
 */
export function readRecord(stateDir: string, base: string): UpdateRecord {
  const path = recordPath(stateDir, base);
  const v = readJson(path) as Partial<UpdateRecord> | null;
  if (v === null) return { unit: `${base}.service`, history: [] };
  if (typeof v !== "object" || !Array.isArray(v.history)) throw new OcigenError("EUPDATE", `${path}: not an update record`);
  return { unit: String(v.unit ?? `${base}.service`), manifest: v.manifest, at: v.at, history: v.history as UpdateEvent[] };
}

/**
 * Appends `event` to the record of unit base `base` (keeping the last
 * {@linkcode HISTORY_LIMIT}) and sets its current manifest.
 *
 * @example
 * ```ts
 * recordEvent(dir, "app.ref.v1", { at: new Date().toISOString(), action: "updated", from: a, to: b }, b);
 * ```
 */
export function recordEvent(stateDir: string, base: string, event: UpdateEvent, manifest?: string): UpdateRecord {
  let rec: UpdateRecord;
  try {
    rec = readRecord(stateDir, base);
  } catch {
    rec = { unit: `${base}.service`, history: [] }; // a broken record is replaced, not kept failing every run
  }
  rec.history = [...rec.history, event].slice(-HISTORY_LIMIT);
  rec.at = event.at;
  if (manifest) rec.manifest = manifest;
  writeJson(recordPath(stateDir, base), rec);
  return rec;
}
