/**
 * Writing the planned units (./plan.ts) into the generator's output
 * directory, or printing them (`generate --dry-run`).
 *
 * The companion extract unit is written before the service that requires
 * it, then the `.wants/` link. A unit that cannot be written is reported
 * (naming the unit and the path) and the others are still written.
 *
 * How a file gets its name — systemd never acts on a half-written unit:
 * - systemd runs the generators with fresh, empty output directories and
 *   reads them only after every generator has exited (at boot and at each
 *   daemon-reload alike), so no one reads a unit while it is written.
 * - A unit whose name is free and whose text fits in one page (4096 bytes,
 *   the size the kernel copies before it looks for a pending kill) is
 *   created under its final name with `O_CREAT | O_EXCL` and written with
 *   one `write` from offset 0: one call that writes all of it, or, for a
 *   process killed at that very moment, nothing. A write that fails or
 *   comes up short unlinks the file before the error is reported, so it
 *   cannot remain behind for systemd to find. At worst (a kill between the
 *   open and the write) an empty file remains: a service with no
 *   `ExecStart=`, which systemd refuses to load, never a partial one.
 * - Anything else — a name that exists already (a second run into the same
 *   directory, by hand or by tests), a longer text — is written to a
 *   temporary name (`.ocigen-tmp.*`, not a unit name) and renamed into
 *   place, so the name holds the old file or the complete new one.
 * - The `.wants/` link is created directly (a symlink appears whole), or
 *   renamed into place when the name exists.
 *
 * @module
 */
import * as fs from "node:fs";
import { Buffer } from "node:buffer";
import { dirname } from "node:path";
import { wrapIo } from "../errors.ts";
import { replaceEntry } from "../fs/atomic.ts";
import type { GeneratedUnit } from "./plan.ts";

/** Texts up to this many bytes are written in place with one `write` (see the module docs). */
const ONE_WRITE_MAX = 4096;
const NEW_FILE = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | (fs.constants.O_NOFOLLOW ?? 0);

function errnoOf(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | null)?.code;
}

/** Writes `text` as `path` (a name in `outDir`) as the module docs say. */
function writeUnitFile(path: string, text: string, outDir: string): void {
  const bytes = Buffer.from(text, "utf8");
  if (bytes.length <= ONE_WRITE_MAX) {
    let fd = -1;
    try {
      fd = fs.openSync(path, NEW_FILE, 0o644);
    } catch (e) {
      if (errnoOf(e) !== "EEXIST") throw e;
    }
    if (fd >= 0) {
      try {
        const n = fs.writeSync(fd, bytes, 0, bytes.length, 0);
        if (n !== bytes.length) {
          throw Object.assign(new Error(`short write (${n} of ${bytes.length} bytes): file system full?`), { code: "ENOSPC" });
        }
        const closing = fd;
        fd = -1;
        fs.closeSync(closing);
      } catch (e) {
        if (fd >= 0) {
          try {
            fs.closeSync(fd);
          } catch { /* reported below */ }
        }
        try {
          fs.unlinkSync(path);
        } catch { /* gone */ }
        throw e;
      }
      return;
    }
  }
  replaceEntry(path, (tmp) => fs.writeFileSync(tmp, bytes, { mode: 0o644 }), outDir);
}

/** Creates the symlink `path` -> `target`, replacing an existing entry atomically. */
function linkUnit(path: string, target: string, outDir: string): void {
  try {
    fs.symlinkSync(target, path);
    return;
  } catch (e) {
    if (errnoOf(e) !== "EEXIST") throw e;
  }
  replaceEntry(path, (tmp) => fs.symlinkSync(target, tmp), outDir);
}

/** What {@linkcode writeUnits} did. */
export interface WriteResult {
  /** The units written completely. */
  written: GeneratedUnit[];
  /** One line per failure, naming the unit and the path. */
  errors: string[];
  /** True when the output directory could not be created (nothing was written). */
  noOutDir?: boolean;
}

/**
 * Writes `units` into `outDir`, each file complete or absent (see the module docs).
 *
 * @example
 * ```ts
 * const { written, errors } = writeUnits(plan.units, "/run/systemd/generator");
 * ```
 */
export function writeUnits(units: readonly GeneratedUnit[], outDir: string): WriteResult {
  const written: GeneratedUnit[] = [];
  const errors: string[] = [];
  if (units.length === 0) return { written, errors };
  try {
    fs.mkdirSync(outDir, { recursive: true });
  } catch (e) {
    errors.push(wrapIo(e, "create output directory", outDir).message);
    return { written, errors, noOutDir: true };
  }
  for (const u of units) {
    try {
      // The extract unit first: the service requires it.
      writeUnitFile(u.extractUnit.path, u.extractUnit.text, outDir);
      writeUnitFile(u.path, u.text, outDir);
    } catch (e) {
      errors.push(`unit ${u.unit}: ${wrapIo(e, "write", outDir).message}`);
      continue;
    }
    if (u.wantsLink) {
      try {
        fs.mkdirSync(dirname(u.wantsLink), { recursive: true });
        linkUnit(u.wantsLink, `../${u.unit}`, outDir);
      } catch (e) {
        errors.push(`unit ${u.unit}: ${wrapIo(e, "link", u.wantsLink).message}`);
      }
    }
    written.push(u);
  }
  return { written, errors };
}

/**
 * The `generate --dry-run` text of `units`: `---PATH---` and each file, and
 * `---LINK -> ../UNIT---` for each `.wants/` link.
 *
 * @example
 * ```ts
 * for (const s of formatUnits(plan.units)) process.stdout.write(s);
 * ```
 */
export function formatUnits(units: readonly GeneratedUnit[]): string[] {
  const out: string[] = [];
  for (const u of units) {
    out.push(`---${u.path}---\n${u.text}`);
    out.push(`---${u.extractUnit.path}---\n${u.extractUnit.text}`);
    if (u.wantsLink) out.push(`---${u.wantsLink} -> ../${u.unit}---\n`);
  }
  return out;
}
