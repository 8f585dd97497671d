/**
 * Writing the planned units (./plan.ts) into the generator's output
 * directory, or printing them (`generate --dry-run`).
 *
 * Each file is written to a temporary name in the output directory and
 * renamed into place, so systemd never reads a half-written unit; the
 * companion extract unit is written before the service that requires it,
 * then the `.wants/` link (also renamed into place). A unit that cannot be
 * written is reported (naming the unit and the path) and the others are
 * still written.
 *
 * @module
 */
import * as fs from "node:fs";
import { dirname } from "node:path";
import { wrapIo } from "../errors.ts";
import { replaceEntry } from "../fs/atomic.ts";
import type { GeneratedUnit } from "./plan.ts";

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
 * Writes `units` into `outDir` atomically (see the module docs).
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
      for (const [path, text] of [[u.extractUnit.path, u.extractUnit.text], [u.path, u.text]]) {
        replaceEntry(path, (tmp) => fs.writeFileSync(tmp, text, { mode: 0o644 }), outDir);
      }
    } catch (e) {
      errors.push(`unit ${u.unit}: ${wrapIo(e, "write", outDir).message}`);
      continue;
    }
    if (u.wantsLink) {
      try {
        fs.mkdirSync(dirname(u.wantsLink), { recursive: true });
        replaceEntry(u.wantsLink, (tmp) => fs.symlinkSync(`../${u.unit}`, tmp), outDir);
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
