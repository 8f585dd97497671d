/**
 * Where a generated service keeps its state outside the shared store
 * (SPEC 4.4). Every path is a pure function of the unit, so the generator
 * (which writes them into units), `ocigen extract` (which creates them) and
 * tests agree without talking to each other:
 *
 * ```
 * RUNDIR/<name>/root        the service's root: an overlay of the store rootfs (RootDirectory=, runc root.path)
 * RUNDIR/<name>/upper       its writable layer (tmpfs under /run: dropped at stop, gone at reboot)
 * RUNDIR/<name>/work        overlayfs work directory
 * VOLUMESDIR/<name>/<path>  one persistent directory per volume path, kept until removed by hand
 * ```
 * `RUNDIR` is `/run/ocigen`, `VOLUMESDIR` `/var/lib/ocigen/volumes` (config
 * `rundir`, `volumesdir`); both are created 0700 so no other local user can
 * reach an image's setuid binaries or device nodes through them.
 * `<name>` is {@linkcode safeName} of the unit base name and `<path>` that of
 * the volume path inside the container with `/` written as `-`
 * (`/var/lib/mysql` -> `var-lib-mysql`): names made only of `[A-Za-z0-9._-]`,
 * which need no quoting in `BindPaths=` and no escaping in overlayfs options.
 *
 * @module
 */
import { join } from "node:path";

/** Default parent of the services' roots. */
export const DEFAULT_RUN_DIR = "/run/ocigen";
/** Default parent of the services' volumes. */
export const DEFAULT_VOLUMES_DIR = "/var/lib/ocigen/volumes";

const SAFE_AS_IS = /^(?:[A-Za-z0-9-][A-Za-z0-9.-]*)?$/;

/**
 * `s` with every byte outside `[A-Za-z0-9.-]` (and `_` itself) written as
 * `_XX` (hex), and a leading `.` too; injective, so two inputs never share a name.
 *
 * @example
 * ```ts
 * safeName("app.ref.tag\\x2bbuild"); // "app.ref.tag_5cx2bbuild"
 * ```
 */
export function safeName(s: string): string {
  if (SAFE_AS_IS.test(s)) return s; // the usual unit base name: nothing to escape
  let out = "";
  for (const b of new TextEncoder().encode(s)) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9.-]/.test(c) && !(out === "" && c === ".") ? c : "_" + b.toString(16).padStart(2, "0");
  }
  return out;
}

/**
 * The per-service run directory (`RUNDIR/<name>`).
 *
 * @example
 * ```ts
 * serviceRunDir("/run/ocigen", "busybox.ref.latest"); // "/run/ocigen/busybox.ref.latest"
 * ```
 */
export function serviceRunDir(runDir: string, base: string): string {
  return join(runDir, safeName(base));
}

/**
 * The root directory a service runs in (an overlay mount point, a real directory).
 *
 * @example
 * ```ts
 * serviceRoot("/run/ocigen", "busybox.ref.latest"); // "/run/ocigen/busybox.ref.latest/root"
 * ```
 */
export function serviceRoot(runDir: string, base: string): string {
  return join(serviceRunDir(runDir, base), "root");
}

/**
 * The name of a volume path's directory: components joined by `-`, each
 * through {@linkcode safeName} with `-` escaped too.
 *
 * @example
 * ```ts
 * volumeName("/var/lib/my-sql"); // "var-lib-my_2dsql"
 * ```
 */
export function volumeName(path: string): string {
  return path.split("/").filter((c) => c !== "").map((c) => safeName(c).replaceAll("-", "_2d")).join("-");
}

/**
 * The persistent directory of volume `path` of unit `base`.
 *
 * @example
 * ```ts
 * volumeDir("/var/lib/ocigen/volumes", "busybox.ref.latest", "/data"); // "/var/lib/ocigen/volumes/busybox.ref.latest/data"
 * ```
 */
export function volumeDir(volumesDir: string, base: string, path: string): string {
  return join(volumesDir, safeName(base), volumeName(path));
}
