/**
 * The install manifest: what `ocigen install-generator` put under a prefix,
 * so that `ocigen uninstall-generator` removes exactly that and nothing else.
 *
 * On-disk format (`PREFIX/usr/local/lib/ocigen/install-manifest.json`, JSON):
 * ```json
 * {
 *   "format": "ocigen-install-manifest/1",
 *   "version": "0.1.0",
 *   "entries": [
 *     { "path": "usr/local/bin/ocigen", "type": "file", "sha256": "<hex>", "mode": 493 },
 *     { "path": "usr/local/lib/systemd/system-generators/ocigen-generator", "type": "symlink", "target": "../../../bin/ocigen" },
 *     { "path": "etc/oci-generator.conf", "type": "config", "sha256": "<hex>" }
 *   ],
 *   "dirs": ["usr/local/lib/ocigen"]
 * }
 * ```
 * `path` is relative to the prefix. `file`: removed on uninstall when its
 * content still has `sha256`. `symlink`: removed when it still points at
 * `target`. `config`: created by install because none existed; removed only
 * while unchanged. `dirs`: directories install created (parents before
 * children), removed on uninstall when empty.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { OcigenError, wrapIo } from "../errors.ts";

/** The `format` value of manifests this version writes and reads. */
export const MANIFEST_FORMAT = "ocigen-install-manifest/1";

/** One installed path. */
export interface ManifestEntry {
  /** Path relative to the prefix. */
  path: string;
  /** `file` and `config` carry `sha256`; `symlink` carries `target`. */
  type: "file" | "symlink" | "config";
  /** Lower-case hex sha256 of the content written. */
  sha256?: string;
  /** Link target as written. */
  target?: string;
  /** Permission bits written. */
  mode?: number;
}

/** The whole manifest. */
export interface InstallManifest {
  format: typeof MANIFEST_FORMAT;
  /** ocigen version that wrote it. */
  version: string;
  entries: ManifestEntry[];
  /** Directories created by install, relative to the prefix, parents first. */
  dirs: string[];
}

/**
 * Reads and checks a manifest; `undefined` when the file does not exist.
 *
 * @example
 * ```ts
 * const m = readManifest("/usr/local/lib/ocigen/install-manifest.json");
 * if (m) console.log(m.entries.map((e) => e.path));
 * ```
 */
export function readManifest(file: string): InstallManifest | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw wrapIo(e, "read install manifest", file);
  }
  let m: InstallManifest;
  try {
    m = JSON.parse(text) as InstallManifest;
  } catch (e) {
    throw new OcigenError("EINSTALL", `${file}: install manifest is not JSON: ${(e as Error).message}`);
  }
  const bad = (why: string) => new OcigenError("EINSTALL", `${file}: not an ocigen install manifest: ${why}`);
  if (m?.format !== MANIFEST_FORMAT) throw bad(`format is ${JSON.stringify(m?.format)}, expected ${MANIFEST_FORMAT}`);
  if (!Array.isArray(m.entries) || !Array.isArray(m.dirs)) throw bad("entries/dirs missing");
  for (const e of m.entries) {
    if (typeof e?.path !== "string" || !safeRelative(e.path)) throw bad(`bad path ${JSON.stringify(e?.path)}`);
    if (e.type !== "file" && e.type !== "symlink" && e.type !== "config") throw bad(`bad type ${JSON.stringify(e.type)}`);
  }
  for (const d of m.dirs) if (typeof d !== "string" || !safeRelative(d)) throw bad(`bad dir ${JSON.stringify(d)}`);
  return m;
}

/**
 * True for a relative path without `..`, `.` or empty components (so a
 * tampered manifest cannot make uninstall touch anything outside the prefix).
 *
 * @example
 * ```ts
 * safeRelative("usr/local/bin/ocigen"); // true
 * safeRelative("../etc/passwd"); // false
 * ```
 */
export function safeRelative(p: string): boolean {
  if (p === "" || p.startsWith("/")) return false;
  return p.split("/").every((c) => c !== "" && c !== "." && c !== "..");
}

/**
 * Serialises a manifest (stable, pretty, newline-terminated).
 *
 * @example
 * ```ts
 * manifestText({ format: MANIFEST_FORMAT, version: "0.1.0", entries: [], dirs: [] });
 * ```
 */
export function manifestText(m: InstallManifest): string {
  return JSON.stringify(m, null, 2) + "\n";
}
