/**
 * Temporary trees: the directories ocigen builds content in before renaming
 * it into place (unpack and raw unpack targets, store entries, bulk chain
 * trees, repack/insert staging, recipe-build scratch).
 *
 * Two guarantees:
 *
 * 1. Closed to other users from the start. {@linkcode makeTempTree} creates
 *    the directory with mode 0700 (and chmods it, whatever the umask) before
 *    anything goes in, so no other local user can reach a setuid-root binary
 *    or a device node of an image while it is being written, even through a
 *    path they guessed. Trees that must end up with another mode (a rootfs,
 *    0755) are built one level down, inside such a closed directory, and
 *    only that inner directory is renamed into place.
 * 2. Removed when the run ends early. Every live tree is registered; on
 *    SIGINT, SIGTERM or SIGHUP (and on a normal exit that left one behind)
 *    the registered trees are removed before the process goes, through the
 *    `signal-exit` package (which then lets the signal end the process with
 *    the usual status, 128 + signal). A run killed with SIGKILL cannot clean
 *    up: its trees carry its pid in their names and the next run into the
 *    same directory (or `ocigen gc` for a layout) removes those whose process
 *    is gone (see each caller's stale-temp sweep and {@linkcode isDeadRunTree}).
 *
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { onExit } from "signal-exit";
import { pidAlive } from "./atomic.ts";

const live = new Set<string>();
let hooked = false;

function removeNow(p: string): void {
  try {
    fs.rmSync(p, { recursive: true, force: true, maxRetries: 2 });
  } catch {
    // very deep trees can exceed what a recursive rmSync handles
    spawnSync("rm", ["-rf", "--", p], { stdio: "ignore" });
  }
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  onExit(() => {
    for (const p of live) removeNow(p);
    live.clear();
  });
}

/**
 * Creates `dir` (which must not exist) with mode 0700 whatever the umask,
 * and registers it for removal if the process is interrupted. Call the
 * returned `release()` once the tree was renamed into place or removed.
 *
 * @example
 * ```ts
 * const t = makeTempTree("/srv/.bundle.tmp-123-ab12cd34");
 * try { build(t.path); fs.renameSync(t.path, "/srv/bundle"); } finally { t.release(); }
 * ```
 */
export function makeTempTree(dir: string): { path: string; release(): void } {
  fs.mkdirSync(dir, 0o700);
  registerTempTree(dir);
  fs.chmodSync(dir, 0o700);
  return { path: dir, release: () => void live.delete(dir) };
}

/**
 * Registers an existing temporary tree (created closed by the caller, e.g.
 * with `mkdtemp`) for removal on SIGINT/SIGTERM/SIGHUP or exit; returns the
 * function that unregisters it.
 *
 * @example
 * ```ts
 * const work = fs.mkdtempSync("/tmp/ocigen-build-");
 * const release = registerTempTree(work);
 * try { ... } finally { fs.rmSync(work, { recursive: true }); release(); }
 * ```
 */
export function registerTempTree(dir: string): () => void {
  hook();
  live.add(dir);
  return () => void live.delete(dir);
}

/**
 * Removes `dir` now and unregisters it.
 *
 * @example
 * ```ts
 * removeTempTree(t.path);
 * ```
 */
export function removeTempTree(dir: string): void {
  removeNow(dir);
  live.delete(dir);
}

/**
 * True if `name` is a temporary tree of ocigen's form `….tmp-<pid>-<hex>`
 * whose process is gone (a run killed with SIGKILL): safe to remove.
 *
 * @example
 * ```ts
 * isDeadRunTree(".bundle.tmp-999999-ab12cd34"); // true when pid 999999 does not exist
 * ```
 */
export function isDeadRunTree(name: string): boolean {
  const pid = runTreePid(name);
  return pid !== null && !pidAlive(pid);
}

/**
 * The paths of the entries of `dir` left by runs whose process is gone:
 * `pidOf` reads the owning pid from an entry's name (`null` for entries that
 * are not run trees). An unreadable or missing `dir` has none. Each caller
 * names its own trees, and removes what this returns its own way.
 *
 * @example
 * ```ts
 * for (const p of deadRunEntries(dir, (n) => (n.startsWith("ocigen-build-") ? runTreePid(n) : null))) removeTempTree(p);
 * ```
 */
export function deadRunEntries(dir: string, pidOf: (name: string) => number | null): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const n of names) {
    const pid = pidOf(n);
    if (pid !== null && !pidAlive(pid)) out.push(path.join(dir, n));
  }
  return out;
}

/**
 * The pid in a temporary tree name of ocigen's form `….tmp-<pid>-<hex>`, or
 * `null` for another name.
 *
 * @example
 * ```ts
 * runTreePid(".bundle.tmp-123-ab12cd34"); // 123
 * ```
 */
export function runTreePid(name: string): number | null {
  const m = /\.tmp-([0-9]+)-[0-9a-f]{8}$/.exec(name);
  return m ? Number(m[1]) : null;
}
