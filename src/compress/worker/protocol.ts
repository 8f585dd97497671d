/**
 * The protocol between the caller's thread and an inflate worker
 * (`inflate-worker-main.ts`): one SharedArrayBuffer per worker, laid out as
 *
 * | bytes               | what                                                        |
 * |---------------------|-------------------------------------------------------------|
 * | 0 .. 128            | Int32 control words, indices in {@linkcode Ctl}             |
 * | 128 .. 192          | sha256 of the output, 64 ASCII hex digits                   |
 * | 192 .. 256          | sha256 of the input (file jobs), 64 ASCII hex digits        |
 * | 256 .. 272          | Float64 [expected input size or -1, input bytes read]      |
 * | 512 .. 1024         | UTF-8 text of a tar error (`TAR_RECORDS` jobs)              |
 * | 1024 .. 8192        | UTF-8 name of the file to read (file jobs)                  |
 * | 8192 ..             | input ring (1 MiB), then output ring (16 MiB)               |
 *
 * A ring is a byte buffer with a write counter and a read counter (Int32
 * control words that wrap; their difference is the fill level): only its
 * producer moves the write counter, only its consumer the read counter.
 * Each side sleeps with `Atomics.wait` on its own sequence word
 * (`MAIN_SEQ` for the caller, `WORK_SEQ` for the worker), which the other
 * side increments and notifies after every change, so neither can sleep
 * through progress.
 *
 * A job: the caller resets the per-job words, sets `SOURCE` (bytes through
 * the input ring, or a file the worker opens itself), `HASH` flags and
 * `OUTPUT`, then increments `JOB`. The worker reports `STATUS` `DONE` (the
 * output ring still has to be drained) or `FAILED` (with `ERR_*` words); the
 * caller sets `ABORT` to give a job up.
 *
 * Output kinds: `OUTPUT` = {@linkcode OutputKind}.BYTES puts the decompressed
 * stream itself in the output ring. With {@linkcode OutputKind}.TAR_RECORDS
 * the worker also parses the tar stream (on the WASM tar kernel, compiled once
 * in the caller and handed over as `tarModule`): the output ring then
 * carries records ({@linkcode RecordKind}), each an 8-byte header (Int32 kind,
 * Int32 payload length) and its payload padded to 8 bytes; a record never
 * wraps around the ring's end (the writer fills the rest of the ring with a
 * `PAD` record and starts again at 0), so the reader always gets one
 * contiguous view per record. `EVENTS` carries a batch of the tar parser's
 * events other than content (entry headers, entry ends, holes of sparse
 * files, in stream order), `DATA` the bytes of the current entry's content
 * between them, `END` closes the archive. An `EVENTS` payload holds entry
 * headers, entry ends and holes in the binary form of events.ts; with
 * `HashFlag.ENTRIES` the end of a regular file's entry carries the sha256 of its
 * content (data and holes as zero bytes, in stream order). A tar error fails the job
 * with {@linkcode WorkerError}.TAR and its text at `Layout.MSG_AT`
 * (`Ctl.MSG_LEN` bytes), after the records of every event before it.
 * A `TAR_RECORDS` job from a file also runs the caller's *finish requests*
 * for the files it wrote (the last system calls on each descriptor), written
 * into the otherwise unused input ring: see finish.ts; such a job is `DONE`
 * only after the caller set `INPUT_ENDED` (it does on the `END` record) and
 * every request is done.
 * A worker that does not know an output kind fails the job with
 * {@linkcode WorkerError}.UNSUPPORTED.
 *
 * @module
 */

/**
 * Indices of the Int32 control words at the start of the shared buffer.
 *
 * @example
 * ```ts
 * Atomics.store(ctl, Ctl.ABORT, 1);
 * ```
 */
export const Ctl = {
  /** Incremented by the worker after every change; the caller waits on it. */
  MAIN_SEQ: 0,
  /** Incremented by the caller after every change; the worker waits on it. */
  WORK_SEQ: 1,
  /** Input ring write counter (caller). */
  IN_W: 2,
  /** Input ring read counter (worker). */
  IN_R: 3,
  /** Output ring write counter (worker). */
  OUT_W: 4,
  /** Output ring read counter (caller). */
  OUT_R: 5,
  /** Caller: 1 = no more input will come through the input ring. */
  INPUT_ENDED: 6,
  /** Worker: a {@linkcode Status}. */
  STATUS: 7,
  /** Worker: the kernel's (negative) error code, or a {@linkcode WorkerError}. */
  ERR_CODE: 8,
  /** Worker: the compressed byte offset of the error. */
  ERR_AT: 9,
  /** Worker: the kernel's first error detail number. */
  ERR_A: 10,
  /** Worker: the kernel's second error detail number. */
  ERR_B: 11,
  /** Caller: incremented to start a job. */
  JOB: 12,
  /** Caller: 1 = give up the current job. */
  ABORT: 13,
  /** Caller: {@linkcode HashFlag} bits. */
  HASH: 14,
  /** Caller: a {@linkcode Source}. */
  SOURCE: 15,
  /** Caller: UTF-8 length of the file name at `Layout.PATH_AT` (file jobs). */
  PATH_LEN: 16,
  /** Worker: index into {@linkcode ERRNO_NAMES} of a file job's I/O failure, or -1. */
  ERR_ERRNO: 17,
  /** Caller: an {@linkcode OutputKind}. */
  OUTPUT: 18,
  /** Worker: UTF-8 length of the tar error text at `Layout.MSG_AT`. */
  MSG_LEN: 19,
  /** 1 while the caller sleeps on `MAIN_SEQ` (`wakeMain` notifies only then). */
  MAIN_SLEEPING: 20,
  /** 1 while the worker sleeps on `WORK_SEQ` (`wakeWorker` notifies only then). */
  WORK_SLEEPING: 21,
  /** Worker: bytes of finish requests done (`TAR_RECORDS` file jobs; see finish.ts). */
  FIN_DONE: 22,
} as const;

/**
 * Words a caller resets before starting a job.
 *
 * @example
 * ```ts
 * for (const i of JOB_WORDS) Atomics.store(ctl, i, 0);
 * ```
 */
export const JOB_WORDS: readonly number[] = [
  Ctl.IN_W, Ctl.IN_R, Ctl.OUT_W, Ctl.OUT_R, Ctl.INPUT_ENDED, Ctl.STATUS, Ctl.ERR_CODE, Ctl.ERR_AT,
  Ctl.ABORT, Ctl.SOURCE, Ctl.ERR_ERRNO, Ctl.OUTPUT, Ctl.MSG_LEN, Ctl.FIN_DONE,
];

/**
 * Values of `Ctl.STATUS`. `ABORTED`: the worker gave the job up after the
 * caller set `ABORT`. Once it is not `RUNNING`, the worker no longer touches
 * the job's rings or finish requests.
 *
 * @example
 * ```ts
 * if (Atomics.load(ctl, Ctl.STATUS) === Status.FAILED) fail();
 * ```
 */
export const Status = { RUNNING: 0, DONE: 1, FAILED: 2, ABORTED: 3 } as const;

/**
 * Values of `Ctl.SOURCE`: where the worker takes the compressed bytes from.
 *
 * @example
 * ```ts
 * Atomics.store(ctl, Ctl.SOURCE, Source.FILE);
 * ```
 */
export const Source = { RING: 0, FILE: 1 } as const;

/**
 * Bits of `Ctl.HASH`: what the worker digests (sha256, hex at
 * `Layout.DIGEST_AT` / `Layout.IN_DIGEST_AT`; `ENTRIES`: the content of each
 * regular file of a `TAR_RECORDS` job, in its entry-end event).
 *
 * @example
 * ```ts
 * Atomics.store(ctl, Ctl.HASH, HashFlag.OUTPUT | HashFlag.INPUT);
 * ```
 */
export const HashFlag = { OUTPUT: 1, INPUT: 2, ENTRIES: 4 } as const;

/**
 * Values of `Ctl.OUTPUT`: what the output ring carries (see the module
 * comment).
 *
 * @example
 * ```ts
 * Atomics.store(ctl, Ctl.OUTPUT, OutputKind.BYTES);
 * ```
 */
export const OutputKind = { BYTES: 0, TAR_RECORDS: 1 } as const;

/**
 * Record kinds of the `TAR_RECORDS` output (see the module comment).
 *
 * @example
 * ```ts
 * if (kind === RecordKind.EVENTS) replayEvents(payload, handler);
 * ```
 */
export const RecordKind = { PAD: 0, EVENTS: 1, DATA: 2, END: 3 } as const;

/**
 * Bytes of a record header in the `TAR_RECORDS` output (kind, length).
 *
 * @example
 * ```ts
 * const payloadAt = at + RECORD_HEADER_BYTES;
 * ```
 */
export const RECORD_HEADER_BYTES = 8;

/**
 * Error codes the worker reports beyond the kernel's own (negative, from -1).
 *
 * @example
 * ```ts
 * if (code === WorkerError.TOO_LONG) throw new Error("longer than expected");
 * ```
 */
export const WorkerError = {
  /** The stream ended in the middle (the kernel's "truncated" code). */
  TRUNCATED: -13,
  /** The worker threw something unexpected. */
  INTERNAL: -18,
  /** The file could not be opened (or is not a regular file). */
  OPEN: -100,
  /** Reading the file failed. */
  READ: -101,
  /** The file is longer than its expected size. */
  TOO_LONG: -102,
  /** The file is shorter than its expected size. */
  TOO_SHORT: -103,
  /** The job asked for an output kind this worker does not produce. */
  UNSUPPORTED: -104,
  /** The tar stream is bad (`TAR_RECORDS` jobs); the text is at `Layout.MSG_AT`. */
  TAR: -105,
} as const;

/**
 * The errno names a file job's I/O failure can carry (`Ctl.ERR_ERRNO` indexes this).
 *
 * @example
 * ```ts
 * const name = ERRNO_NAMES[Atomics.load(ctl, Ctl.ERR_ERRNO)] ?? "I/O error";
 * ```
 */
export const ERRNO_NAMES: readonly string[] = ["ENOENT", "EACCES", "EISDIR", "EIO", "EMFILE", "ENFILE", "ENOTDIR", "ELOOP", "EINVAL"];

/**
 * Byte offsets and sizes of the shared buffer (see the table above).
 *
 * @example
 * ```ts
 * const sab = new SharedArrayBuffer(Layout.TOTAL);
 * const outDigest = new Uint8Array(sab, Layout.DIGEST_AT, 64);
 * ```
 */
export const Layout = {
  /** Number of Int32 control words (room to grow). */
  CTL_WORDS: 32,
  /** The output digest (64 ASCII hex digits). */
  DIGEST_AT: 128,
  /** The input digest (64 ASCII hex digits). */
  IN_DIGEST_AT: 192,
  /** Two Float64 numbers: expected input size (-1: unchecked), input bytes read. */
  F64_AT: 256,
  /** A tar error's text (`TAR_RECORDS` jobs). */
  MSG_AT: 512,
  /** Largest tar error text in bytes. */
  MSG_CAP: 512,
  /** The file name (file jobs). */
  PATH_AT: 1024,
  /** Largest UTF-8 file name length. */
  PATH_CAP: 7168,
  /** Bytes before the rings. */
  CTL_BYTES: 8192,
  /** Input ring size. */
  IN_CAP: 1 << 20,
  /** Output ring size (bounds how far the worker runs ahead of the caller). */
  OUT_CAP: 16 << 20,
  /** Total size of a worker's shared buffer. */
  TOTAL: 8192 + (1 << 20) + (16 << 20),
} as const;

/**
 * What a worker is started with (`workerData`).
 *
 * @example
 * ```ts
 * const data: WorkerData = { sab: new SharedArrayBuffer(Layout.TOTAL), module: kernelModule("inflate", wasmBase64), tarModule: kernelModule("tar", tarBase64) };
 * ```
 */
export interface WorkerData {
  /** The shared buffer laid out as above. */
  sab: SharedArrayBuffer;
  /** The compiled inflate kernel (compiled once in the caller's thread). */
  module: WebAssembly.Module;
  /** The compiled tar kernel (for `TAR_RECORDS` jobs). */
  tarModule: WebAssembly.Module;
}
