/**
 * An exclusive lock between processes, held as a lock file created with
 * `O_CREAT|O_EXCL`.
 *
 * On-disk format: the lock file holds one line `<pid> <hostname>\n`. A lock
 * whose process no longer exists on this host is stale and is broken (by
 * renaming it away first, so two breakers cannot both win). A lock from
 * another host is never broken. Waiters retry with jittered back-off until
 * the timeout the caller passes ({@linkcode DEFAULT_LOCK_TIMEOUT_MS} when
 * none: this module reads no settings; `ocigen` passes its configured lock
 * timeout down from src/cli).
 *
 * @module
 */
import * as fs from "node:fs";
import process from "node:process";
import { OcigenError, wrapIo } from "../errors.ts";
import { hostName, pidAlive, tempPath } from "./atomic.ts";

/** A held lock; call `release()` exactly once. */
export interface LockHandle {
  readonly path: string;
  release(): void;
}

/** How long {@linkcode acquireLock} waits when the caller names no limit: 60 s. */
export const DEFAULT_LOCK_TIMEOUT_MS = 60_000;

let configuredDefault = DEFAULT_LOCK_TIMEOUT_MS;

/**
 * Sets the wait limit {@linkcode acquireLock} uses when its caller names
 * none (the layout lock): the command line passes the configured lock
 * timeout here once (`undefined` restores 60 s).
 *
 * @example
 * ```ts
 * configureLockTimeout(5_000);
 * ```
 */
export function configureLockTimeout(ms: number | undefined): void {
  configuredDefault = ms ?? DEFAULT_LOCK_TIMEOUT_MS;
}

/**
 * A handle whose first `release()` runs `stop` and then removes `path` while
 * `ours()` says the file there is still this holder's (later calls do nothing).
 */
function handle(path: string, ours: () => boolean, stop: () => void = () => {}): LockHandle {
  let released = false;
  return {
    path,
    release() {
      if (released) return;
      released = true;
      stop();
      try {
        if (ours()) fs.unlinkSync(path);
      } catch { /* already gone */ }
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function readOwner(path: string): { pid: number; host: string; raw: string } | null {
  try {
    const raw = fs.readFileSync(path, "utf8");
    const [pid, host] = raw.trim().split(" ");
    return { pid: Number(pid), host: host ?? "", raw };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
}

/** Tries to break a stale lock; returns true if the lock path is free now (or may be). */
function breakStale(path: string, raw: string): boolean {
  const aside = tempPath(path.slice(0, path.lastIndexOf("/")) || ".");
  try {
    fs.renameSync(path, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return true; // someone else broke it
    throw e;
  }
  let got = "";
  try {
    got = fs.readFileSync(aside, "utf8");
  } catch { /* vanished */ }
  if (got !== raw) {
    // We moved a fresh lock taken after our check: put it back if the path is still free.
    try {
      fs.linkSync(aside, path);
    } catch { /* a newer lock exists: the moved one's owner will fail on release, harmlessly */ }
  }
  try {
    fs.unlinkSync(aside);
  } catch { /* ignore */ }
  return true;
}

/**
 * The lock held as an empty file (its owner line did not fit on a full disk).
 * Waiters take a lock file without a complete owner line as stale once its
 * mtime is 10 s old, so the mtime is refreshed every 2 s while it is held
 * (utimes needs no space); release removes it only while it is still ours.
 */
function holdEmptyLock(path: string): LockHandle {
  let ino = -1;
  try {
    ino = fs.statSync(path).ino;
  } catch { /* vanished: release is a no-op */ }
  const timer = setInterval(() => {
    try {
      const now = new Date();
      fs.utimesSync(path, now, now);
    } catch { /* ignore */ }
  }, 2000);
  (timer as { unref?: () => void }).unref?.();
  return handle(path, () => {
    const st = fs.statSync(path);
    return st.ino === ino && st.size === 0;
  }, () => clearInterval(timer));
}

/**
 * Takes the lock file `path`, waiting while another live process holds it
 * for at most `timeoutMs` (default {@linkcode DEFAULT_LOCK_TIMEOUT_MS}, or what {@linkcode configureLockTimeout} set; 0:
 * one try). Throws ELOCK on timeout, EIO (naming the path) on a file-system
 * failure such as a read-only layout.
 *
 * @example
 * ```ts
 * const lock = await acquireLock("/l/.ocigen.lock", "layout /l");
 * try { /* write *\/ } finally { lock.release(); }
 * ```
 */
export async function acquireLock(path: string, what: string, timeoutMs: number = configuredDefault): Promise<LockHandle> {
  const limit = timeoutMs;
  const start = Date.now();
  const me = `${process.pid} ${hostName()}\n`;
  let delay = 5;
  for (;;) {
    let fd: number | undefined;
    try {
      fd = fs.openSync(path, "wx", 0o644);
      try {
        fs.writeSync(fd, me);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== "ENOSPC" && code !== "EDQUOT") throw e;
        // A full disk: the lock file exists (an inode, no data) but the owner line
        // does not fit. Hold it anyway, so that `gc` and `rm` can free space.
        fs.closeSync(fd);
        fd = undefined;
        return holdEmptyLock(path);
      }
      fs.closeSync(fd);
      return handle(path, () => fs.readFileSync(path, "utf8") === me);
    } catch (e) {
      if (fd !== undefined) {
        try {
          fs.closeSync(fd);
          fs.unlinkSync(path);
        } catch { /* ignore */ }
        throw wrapIo(e, "write lock file", path);
      }
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === "EACCES" || code === "EROFS" || code === "EPERM") {
          throw new OcigenError("EIO", `Cannot lock ${what}: not writable (${code})`, { cause: e });
        }
        throw wrapIo(e, "create lock file", path);
      }
    }
    const owner = readOwner(path);
    if (owner === null) continue; // released meanwhile
    if (owner.host === hostName() && owner.raw.endsWith("\n") && !pidAlive(owner.pid)) {
      breakStale(path, owner.raw);
      continue;
    }
    if (!owner.raw.endsWith("\n")) {
      // Being written right now, or its writer died mid-write: stale after 10 s.
      try {
        if (Date.now() - fs.statSync(path).mtimeMs > 10_000) {
          breakStale(path, owner.raw);
          continue;
        }
      } catch { /* gone */ }
    }
    if (Date.now() - start > limit) {
      // An empty or partial owner line (a full disk, or a writer that died mid-write) names nobody.
      const known = /^[1-9][0-9]* \S+\n$/.test(owner.raw);
      const who = known ? `process ${owner.pid} on ${owner.host}` : "an unknown holder (the lock file has no owner line)";
      throw new OcigenError("ELOCK", `Cannot lock ${what}: held by ${who} (${path})`);
    }
    await sleep(delay + Math.random() * delay);
    delay = Math.min(delay * 2, 200);
  }
}
