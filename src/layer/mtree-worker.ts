/**
 * umoci's mtree of a large unpacked tree, written by a worker thread while
 * this thread writes ocigen's manifest: two `lstat` walks of the same tree
 * on two cores instead of one walk serving both on one (on a 63k-entry tree
 * the single walk took ~0.7 s, each half ~0.4 s). The tree no longer changes
 * by then; each walk sees it whole, and the mtree is byte for byte what the
 * single walk writes. Below {@linkcode MTREE_WORKER_MIN_FILES} files the
 * worker's start costs more than it saves and the caller keeps one walk.
 *
 * @module
 */
import { OcigenError } from "../errors.ts";
import type { Xattrs } from "../bundle/xattr.ts";
import { spawnWorker } from "../compress/worker/spawn.ts";
import type { WrittenDigests, WrittenSnapshot } from "./written.ts";

/**
 * Regular files recorded by the unpack from which the mtree gets its own walk.
 * On Deno never (Infinity): a second Deno isolate and its walk beside this
 * thread's raised the peak RSS of a 2.2 GB layer of 256k files from ~235 to
 * ~350 MiB (the goal is 256), for a few tenths of a second; on Node the
 * worker costs ~60 MiB there (~178 -> 236-250 MiB).
 *
 * @example
 * ```ts
 * if (written.size >= MTREE_WORKER_MIN_FILES) startMtreeWorker(job);
 * ```
 */
export const MTREE_WORKER_MIN_FILES = "Deno" in globalThis ? Infinity : 10000;

/**
 * The worker's heap limits: its walk makes short-lived garbage only, and a
 * young generation of 8 MiB (V8's default grows to 16-32) kept the peak RSS of
 * a 2.2 GB layer of 256k files at ~225 instead of 236-250 MiB.
 */
const MTREE_WORKER_LIMITS = { maxYoungGenerationSizeMb: 8 };

/**
 * What the worker writes (`workerData`).
 *
 * @example
 * ```ts
 * const job: MtreeJob = { bundleDir, rootfs, manifestDigest, treeName, xattrs, written: written.snapshot() };
 * ```
 */
export interface MtreeJob {
  bundleDir: string;
  rootfs: string;
  manifestDigest: string;
  /** What the mtree's `# tree:` comment shows. */
  treeName: string;
  xattrs: Map<string, Xattrs>;
  /** The digests recorded while the files were written (null: every file is read). */
  written: WrittenSnapshot | null;
}

/**
 * What the worker posts when it is done.
 *
 * @example
 * ```ts
 * const r: MtreeJobResult = { ok: true, file: "/b/sha256_ab.mtree" };
 * ```
 */
export type MtreeJobResult = { ok: true; file: string } | { ok: false; code: string; message: string };

/**
 * Starts writing the mtree in a worker thread; resolves when the file is in
 * place, rejects with the walk's own error. Null when no worker can be
 * started (write it in this thread then).
 *
 * @example
 * ```ts
 * const done = startMtreeWorker({ bundleDir: tmp, rootfs, manifestDigest, treeName, xattrs }, state.written);
 * await writeBundleManifests(tmp, rootfs, { ...opts, umoci: done === null });
 * await done;
 * ```
 */
export function startMtreeWorker(job: Omit<MtreeJob, "written">, written: WrittenDigests | null): Promise<void> | null {
  let worker: ReturnType<typeof spawnWorker>;
  try {
    worker = spawnWorker("mtree", { ...job, written: written ? written.snapshot() : null } satisfies MtreeJob, MTREE_WORKER_LIMITS);
  } catch {
    return null;
  }
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    worker.once("message", (r: MtreeJobResult) => {
      settled = true;
      if (r.ok) resolve();
      else reject(new OcigenError(r.code as OcigenError["code"], r.message));
    });
    worker.once("error", (e) => {
      if (settled) return;
      settled = true;
      reject(new OcigenError("EIO", `Cannot write the umoci mtree of ${job.rootfs}: the mtree worker failed: ${(e as Error)?.message ?? e}`));
    });
    worker.once("exit", (code) => {
      if (settled) return;
      settled = true;
      reject(new OcigenError("EIO", `Cannot write the umoci mtree of ${job.rootfs}: the mtree worker exited (${code}) without a result`));
    });
  });
}
