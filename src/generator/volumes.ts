/**
 * A service's persistent volumes (SPEC 4.4): one directory per volume path
 * under `VOLUMESDIR/<name>/` (state.ts), bound at that path by the unit.
 *
 * On first creation a volume receives the image's content at that path
 * (resolved in the store rootfs as chroot would), owner, mode, timestamps,
 * symlinks and hard links kept, as Docker's named volumes do; with nothing
 * there it is an empty directory owned by the service's uid:gid. It is
 * built under a temporary name beside its place and renamed into it, so a
 * failed or interrupted seed leaves no half volume (a stale temporary is
 * removed by the next attempt). An existing volume is never touched again:
 * it survives restarts, image updates and removal of the image; only an
 * explicit command removes it. `VOLUMESDIR` and each unit's directory are
 * 0700: seeded content may hold setuid binaries.
 *
 * @module
 */
import * as fs from "node:fs";
import { spawnSync } from "node:child_process";
import { basename, dirname, join } from "node:path";
import { OcigenError, wrapIo } from "../errors.ts";
import { resolveInRoot } from "../rootfs/read.ts";
import { mkdirPrivate } from "./serviceroot.ts";

/**
 * What {@linkcode ensureVolume} did.
 *
 * @example
 * ```ts
 * const a: VolumeAction = "seeded";
 * ```
 */
export type VolumeAction = "kept" | "seeded" | "created";

/**
 * Makes sure volume directory `dir` exists for container path `path` of the
 * image rooted at `rootfs` (see the module docs).
 *
 * @example
 * ```ts
 * ensureVolume(storeRootfs, "/var/lib/ocigen/volumes/app.ref.latest/data", "/data", 1000, 1000); // "seeded"
 * ```
 */
export function ensureVolume(rootfs: string, dir: string, path: string, uid: number, gid: number): VolumeAction {
  const st = fs.lstatSync(dir, { throwIfNoEntry: false });
  if (st) {
    if (!st.isDirectory()) throw new OcigenError("EIO", `Volume ${path}: ${dir} exists and is not a directory`);
    return "kept";
  }
  mkdirPrivate(dirname(dirname(dir)));
  mkdirPrivate(dirname(dir));
  const tmp = join(dirname(dir), `.${basename(dir)}.tmp`);
  fs.rmSync(tmp, { recursive: true, force: true });
  const src = resolveInRoot(rootfs, path);
  const sst = src === null ? null : fs.statSync(src, { throwIfNoEntry: false });
  if (sst && !sst.isDirectory()) throw new OcigenError("EIO", `Volume ${path}: the image has a non-directory there`);
  try {
    fs.mkdirSync(tmp, { mode: 0o700 });
    if (sst) {
      const r = spawnSync("cp", ["-a", "--", `${src}/.`, `${tmp}/`], { encoding: "utf8", stdio: ["ignore", "ignore", "pipe"] });
      if (r.error || r.status !== 0) {
        throw new OcigenError("EIO", `Volume ${path}: cannot copy the image's content into ${tmp}: ${(r.stderr || r.error?.message || "").trim()}`);
      }
      fs.chownSync(tmp, sst.uid, sst.gid);
      fs.chmodSync(tmp, sst.mode & 0o7777);
      fs.utimesSync(tmp, sst.atime, sst.mtime);
    } else {
      fs.chownSync(tmp, uid, gid);
      fs.chmodSync(tmp, 0o755);
    }
    fs.renameSync(tmp, dir);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e instanceof OcigenError ? e : wrapIo(e, `create volume ${path}`, dir);
  }
  return sst ? "seeded" : "created";
}
