/**
 * A second thread that creates small regular files: {@linkcode FileWriter}.
 *
 * On a disk filesystem creating an inode costs far more than writing a few
 * KiB into it (on ext4 here 80-700 µs of kernel CPU per `open(O_CREAT)`,
 * against ~10 µs on tmpfs), and a tar stream is one thread's sequence of such
 * creations. Handing part of them to a worker thread spreads that kernel work
 * over a second core.
 *
 * Contract: each submitted job creates one new file exactly as the caller
 * would have (`open(O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW, mode)`, the data,
 * then `fchown`, `fchmod`, `futimes` when asked, `close`), in submission
 * order. It never replaces anything: a name that exists comes back as
 * `EEXIST` and the caller applies that entry itself. {@linkcode FileWriter.drain}
 * blocks until every submitted job is done and returns the failures (job
 * tag, operation, an Error carrying `code`/`errno`), so the caller can keep
 * its ordering guarantees by draining before any operation that could see or
 * touch a pending file. Results travel through shared memory (no message
 * port read on the waiting side); jobs through `postMessage`.
 *
 * @module
 */
import os from "node:os";
import { Worker } from "node:worker_threads";

/** Jobs in flight at most (the caller drains when it reaches it). */
const MAX_JOBS = 256;
/** ctl[0]: jobs done; ctl[1 + i*2]: errno of job i (0 ok), ctl[2 + i*2]: failed operation index. */
const OPS = ["create", "write", "chown", "chmod", "set times", "close"] as const;

const WORKER_SOURCE = `
const fs = require("node:fs");
const { workerData, parentPort } = require("node:worker_threads");
const ctl = new Int32Array(workerData.sab);
const MAX = ${MAX_JOBS};
const FLAGS = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;
parentPort.on("message", (j) => {
  const slot = j.seq % MAX;
  let op = 0, errno = 0, fd = -1;
  try {
    fd = fs.openSync(j.abs, FLAGS, j.mode);
    op = 1;
    const d = j.data; let off = 0;
    while (off < d.length) off += fs.writeSync(fd, d, off, d.length - off, null);
    if (j.uid >= 0) { op = 2; fs.fchownSync(fd, j.uid, j.gid); }
    if (j.chmod >= 0) { op = 3; fs.fchmodSync(fd, j.chmod); }
    op = 4; fs.futimesSync(fd, j.atime, j.mtime);
    op = 5; const c = fd; fd = -1; fs.closeSync(c);
  } catch (e) {
    errno = typeof e.errno === "number" && e.errno !== 0 ? Math.abs(e.errno) : 5;
    if (fd >= 0) try { fs.closeSync(fd); } catch {}
  }
  ctl[1 + slot * 2] = errno;
  ctl[2 + slot * 2] = op;
  Atomics.add(ctl, 0, 1);
  Atomics.notify(ctl, 0);
});
`;

/**
 * One file for {@linkcode FileWriter.submit}.
 *
 * @example
 * ```ts
 * const job: FileJob = { abs: "/r/etc/motd", data: bytes, mode: 0o644, uid: -1, gid: -1, chmod: -1, atime: 0, mtime: 0 };
 * ```
 */
export interface FileJob {
  abs: string;
  data: Uint8Array;
  /** Mode given to `open`. */
  mode: number;
  /** Owner to `fchown` to (-1: leave it). */
  uid: number;
  gid: number;
  /** Mode to `fchmod` after the owner (-1: none). */
  chmod: number;
  atime: number;
  mtime: number;
}

/**
 * A failed job from {@linkcode FileWriter.drain}.
 *
 * @example
 * ```ts
 * for (const f of writer.drain()) if (f.error.code === "EEXIST") redo(f.tag);
 * ```
 */
export interface FileJobFailure {
  tag: number;
  op: (typeof OPS)[number];
  error: NodeJS.ErrnoException;
}

let errnoNames: Map<number, string> | undefined;
function errnoError(errno: number, op: string, abs: string): NodeJS.ErrnoException {
  if (!errnoNames) {
    errnoNames = new Map();
    for (const [k, v] of Object.entries(os.constants.errno ?? {})) errnoNames.set(v as number, k);
  }
  const code = errnoNames.get(errno) ?? "EIO";
  return Object.assign(new Error(`${code}: ${op} failed, '${abs}'`), { code, errno: -errno, path: abs });
}

/**
 * A worker thread creating files submitted by this thread (see the module
 * header for the contract).
 *
 * @example
 * ```ts
 * const w = FileWriter.start();
 * if (w) {
 *   w.submit(job, 7);
 *   for (const f of w.drain()) console.error(f.tag, f.error.code);
 *   w.close();
 * }
 * ```
 */
export class FileWriter {
  private readonly ctl: Int32Array;
  private seq = 0;
  private tags: number[] = [];

  private constructor(private readonly worker: Worker, sab: SharedArrayBuffer) {
    this.ctl = new Int32Array(sab);
  }

  /** A writer, or null when this machine has one core or workers cannot start. */
  static start(): FileWriter | null {
    if ((os.availableParallelism?.() ?? os.cpus().length) < 2) return null;
    try {
      const sab = new SharedArrayBuffer(4 * (1 + 2 * MAX_JOBS));
      const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { sab } });
      worker.unref();
      return new FileWriter(worker, sab);
    } catch {
      return null;
    }
  }

  /** Jobs submitted and not drained yet. */
  get pending(): number {
    return this.tags.length;
  }

  /** True when the caller must {@linkcode drain} before submitting more. */
  get full(): boolean {
    return this.tags.length >= MAX_JOBS;
  }

  /** Queues one file (copies nothing: `job.data` must not be reused by the caller). */
  submit(job: FileJob, tag: number): void {
    if (this.full) throw new Error("FileWriter: drain before submitting more");
    this.tags.push(tag);
    this.worker.postMessage({ ...job, seq: this.seq++ });
  }

  /** Waits until every submitted job is done; returns the failures in submission order. */
  drain(): FileJobFailure[] {
    const n = this.tags.length;
    if (n === 0) return [];
    const first = this.seq - n;
    for (;;) {
      const done = Atomics.load(this.ctl, 0);
      if (done >= this.seq) break;
      Atomics.wait(this.ctl, 0, done, 1000);
    }
    const out: FileJobFailure[] = [];
    for (let i = 0; i < n; i++) {
      const slot = (first + i) % MAX_JOBS;
      const errno = this.ctl[1 + slot * 2];
      if (errno === 0) continue;
      const op = OPS[this.ctl[2 + slot * 2]] ?? "create";
      out.push({ tag: this.tags[i], op, error: errnoError(errno, op, "") });
    }
    this.tags = [];
    return out;
  }

  /** Drains (failures dropped) and stops the thread. */
  close(): void {
    try {
      this.drain();
    } finally {
      void this.worker.terminate();
    }
  }
}
