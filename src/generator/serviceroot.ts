/**
 * A service's own root: an overlayfs mount at `RUNDIR/<name>/root` whose
 * lower layer is the shared, read-only store rootfs and whose upper layer
 * `RUNDIR/<name>/upper` (on /run, a tmpfs) takes every write of the service
 * and the mount points systemd or runc create (dev/, proc/, sys/, volume
 * paths...). The store is never written: overlayfs copies a file up before
 * changing it. {@linkcode releaseServiceRoot} unmounts it and removes the
 * upper layer, so the next start begins from the image's content again.
 *
 * Safety: the run directory is created 0700 (the merged tree holds the
 * image's setuid binaries and device nodes); nothing under a mount point is
 * ever removed recursively — the upper and work directories are removed only
 * once the root is no longer mounted, the mount point itself with rmdir.
 *
 * @module
 */
import * as fs from "node:fs";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { OcigenError, wrapIo } from "../errors.ts";
import { serviceRoot, serviceRunDir } from "./state.ts";

/**
 * True if `path` is a mount point in this mount namespace (from /proc/self/mountinfo).
 *
 * @example
 * ```ts
 * isMountPoint("/run/ocigen/busybox.ref.latest/root"); // true while the service runs
 * ```
 */
export function isMountPoint(path: string): boolean {
  let text: string;
  try {
    text = fs.readFileSync("/proc/self/mountinfo", "utf8");
  } catch {
    return false;
  }
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
  return text.split("\n").some((l) => unescape(l.split(" ")[4] ?? "") === path);
}

/**
 * The lower directories of every overlay mounted in this mount namespace
 * (the store rootfs that running services use).
 *
 * @example
 * ```ts
 * mountedLowerDirs(); // ["/var/lib/oci/extracts/.store/sha256/ab…/rootfs"]
 * ```
 */
export function mountedLowerDirs(): string[] {
  let text = "";
  try {
    text = fs.readFileSync("/proc/self/mountinfo", "utf8");
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const l of text.split("\n")) {
    const sep = l.indexOf(" - ");
    if (sep < 0) continue;
    const [fstype, , opts] = l.slice(sep + 3).split(" ");
    if (fstype !== "overlay") continue;
    for (const o of (opts ?? "").split(",")) if (o.startsWith("lowerdir=")) out.push(...o.slice(9).split(":"));
  }
  return out;
}

/**
 * Creates `dir` (and parents) and makes it 0700 root-only if this call
 * created it or it is ours (mode differs).
 *
 * @example
 * ```ts
 * mkdirPrivate("/run/ocigen/app.ref.latest");
 * ```
 */
export function mkdirPrivate(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = fs.statSync(dir);
    if ((st.mode & 0o777) !== 0o700) fs.chmodSync(dir, 0o700);
  } catch (e) {
    throw wrapIo(e, "create directory", dir);
  }
}

function run(argv: string[], what: string): void {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  if (r.error) throw new OcigenError("EIO", `${what}: cannot run ${argv[0]}: ${r.error.message}`);
  if (r.status !== 0) throw new OcigenError("EIO", `${what}: ${argv[0]} failed: ${(r.stderr || r.stdout || `exit ${r.status}`).trim()}`);
}

/**
 * Mounts a fresh root for unit `base` over `lower` (a store rootfs), after
 * releasing whatever an earlier start left. Returns the mount point.
 *
 * @example
 * ```ts
 * mountServiceRoot("/run/ocigen", "busybox.ref.latest", "/var/lib/oci/extracts/.store/sha256/ab…/rootfs");
 * ```
 */
export function mountServiceRoot(runDir: string, base: string, lower: string): string {
  if (/[,:\\]/.test(lower)) {
    throw new OcigenError("EIO", `Cannot use ${lower} as an overlay layer: the path holds ",", ":" or "\\" (choose another extractsdir)`);
  }
  releaseServiceRoot(runDir, base);
  mkdirPrivate(runDir);
  const rdir = serviceRunDir(runDir, base);
  mkdirPrivate(rdir);
  const root = serviceRoot(runDir, base);
  const upper = join(rdir, "upper");
  const work = join(rdir, "work");
  let lst: fs.Stats;
  try {
    lst = fs.statSync(lower);
    for (const d of [upper, work, root]) fs.mkdirSync(d, { mode: 0o755 });
    // the merged root directory takes the upper directory's owner and mode: the image's
    fs.chownSync(upper, lst.uid, lst.gid);
    fs.chmodSync(upper, lst.mode & 0o7777);
  } catch (e) {
    throw wrapIo(e, "prepare the service root", rdir);
  }
  run(["mount", "-t", "overlay", "overlay", "-o", `lowerdir=${lower},upperdir=${upper},workdir=${work}`, root], `mount the root of ${base}`);
  return root;
}

/**
 * Unmounts the root of unit `base` (if mounted) and removes its writable
 * layer. A no-op when there is nothing.
 *
 * @example
 * ```ts
 * releaseServiceRoot("/run/ocigen", "busybox.ref.latest");
 * ```
 */
export function releaseServiceRoot(runDir: string, base: string): void {
  const rdir = serviceRunDir(runDir, base);
  const root = serviceRoot(runDir, base);
  if (!fs.existsSync(rdir)) return;
  for (let i = 0; i < 8 && isMountPoint(root); i++) {
    const r = spawnSync("umount", i < 3 ? [root] : ["-l", root], { encoding: "utf8" });
    if (r.status !== 0 && i === 7) throw new OcigenError("EIO", `Cannot unmount ${root}: ${(r.stderr ?? "").trim()}`);
  }
  if (isMountPoint(root)) throw new OcigenError("EIO", `Cannot unmount ${root}: still mounted`);
  try {
    for (const d of ["upper", "work"]) fs.rmSync(join(rdir, d), { recursive: true, force: true });
    if (fs.existsSync(root)) fs.rmdirSync(root);
    fs.rmdirSync(rdir);
  } catch (e) {
    throw wrapIo(e, "remove the writable layer", rdir);
  }
}
