/**
 * The caller's side of inflate worker jobs, as synchronous stages:
 *  - {@linkcode WorkerGunzip}: a {@linkcode ByteSink} like `WasmGunzip`; the
 *    caller copies compressed bytes into the input ring and drains the output
 *    ring into its sink (copies: any consumer may keep them);
 *  - {@linkcode FileGunzip}: the worker reads, size-checks and hashes a whole
 *    file itself; the caller only drains the output ring, handing the sink
 *    views of the shared ring (valid during the call, as the ByteSink contract
 *    says; Node's and Deno's fs and TextDecoder accept views of shared
 *    memory), which are freed for the worker after the call.
 *    A `FileGunzip` started with `tarRecords` has the worker parse the tar
 *    stream too: {@linkcode FileGunzip.pumpEntries} replays its records
 *    (entry headers, content views, holes, entry ends) to a `TarHandler`.
 * Both end by waiting for `STATUS` = `DONE` with an empty output ring; a
 * `FAILED` job, a sink that throws or an abandoned job terminates the worker.
 *
 * @module
 */
import { OcigenError } from "../../errors.ts";
import type { ByteSink } from "../../stream/sink.ts";
import type { TarHandler } from "../../tar/parser.ts";
import { describeInflateError } from "../inflate-wasm.ts";
import { acquireSlot, killSlot, releaseSlot, type Slot, startJob } from "./pool.ts";
import { recordBytes } from "./channel.ts";
import { replayEvents } from "./events.ts";
import { FileFinisher, type FinishResult } from "./finish.ts";
import { workersShareDescriptors } from "./spawn.ts";
import { Ctl, ERRNO_NAMES, HashFlag, Layout, OutputKind, RecordKind, Source, Status, WorkerError } from "./protocol.ts";

/** The control words of finish requests. */
const FINISH_WORDS = { IN_W: Ctl.IN_W, IN_R: Ctl.IN_R, FIN_DONE: Ctl.FIN_DONE, MAIN_SEQ: Ctl.MAIN_SEQ, STATUS: Ctl.STATUS, failed: Status.FAILED };

/**
 * How long a job given up with finish requests in flight waits for its
 * worker to stop before the descriptors it did not take are closed (the
 * worker notices an abort within one inflate step; this bounds a worker
 * stuck in a system call).
 */
const ABANDON_WAIT_MS = 2000;

/** FileGunzip hands the ring over in views of at most this size. */
const DRAIN_CHUNK = 512 * 1024;

/** What both job kinds share: the slot, draining, waiting for the end, failing. */
abstract class WorkerJob {
  protected slot: Slot | null = null;

  /** `scratch`: copy output out of shared memory before the sink sees it (null: hand views). */
  protected constructor(protected readonly name: string, private readonly scratch: Uint8Array | null) {}

  /** Gives the job up (if still running) and terminates its worker. */
  destroy(): void {
    const s = this.slot;
    if (!s) return;
    this.slot = null;
    killSlot(s);
  }

  /** Hands every available output byte to `sink`. */
  protected drain(s: Slot, sink: ByteSink): void {
    const out = s.ch.output;
    for (let v = out.peek(this.scratch?.length ?? DRAIN_CHUNK); v; v = out.peek(this.scratch?.length ?? DRAIN_CHUNK)) {
      const n = v.length;
      try {
        if (this.scratch) {
          this.scratch.set(v);
          out.consume(n);
          s.ch.wakeWorker();
          sink.write(this.scratch.subarray(0, n));
        } else {
          sink.write(v); // the worker cannot reuse these bytes before they are consumed, after the call
          out.consume(n);
          s.ch.wakeWorker();
        }
      } catch (e) {
        this.destroy();
        throw e;
      }
    }
  }

  /** Drains into `sink` until the worker finished and the ring is empty; `onTick` runs after every drain. */
  protected runToEnd(s: Slot, sink: ByteSink, onTick?: () => void): void {
    for (;;) {
      const seen = s.ch.get(Ctl.MAIN_SEQ);
      this.drain(s, sink);
      onTick?.();
      const st = s.ch.get(Ctl.STATUS);
      if (st === Status.FAILED) this.fail(s);
      if (st === Status.DONE && s.ch.output.readable() === 0) return;
      s.ch.wait(Ctl.MAIN_SEQ, seen);
    }
  }

  /** Hands a cleanly finished worker back to the pool. */
  protected release(s: Slot): void {
    this.slot = null;
    releaseSlot(s);
  }

  /** The error for a failure code that is not about the compressed content (null: it is). */
  protected sourceError(_code: number, _s: Slot): OcigenError | null {
    return null;
  }

  /** Throws the job's failure (the worker is terminated). */
  protected fail(s: Slot): never {
    const code = s.ch.get(Ctl.ERR_CODE);
    const at = s.ch.get(Ctl.ERR_AT) >>> 0;
    const msg = describeInflateError(code, s.ch.get(Ctl.ERR_A) >>> 0, s.ch.get(Ctl.ERR_B) >>> 0);
    const e = this.sourceError(code, s);
    this.destroy();
    throw e ?? new OcigenError("EDECOMPRESS", `Cannot decompress ${this.name}: ${msg} near compressed byte ${at}`);
  }
}

/**
 * Streaming gzip decoder whose inflate runs in a worker thread (same
 * contract and errors as `WasmGunzip`; gzip framing only).
 *
 * @example
 * ```ts
 * import { CollectSink } from "../../stream/sink.ts";
 * const out = new CollectSink();
 * const gz = new WorkerGunzip(out, { name: "layer sha256:ab.." });
 * gz.write(compressedBytes);
 * gz.end();
 * ```
 */
export class WorkerGunzip extends WorkerJob implements ByteSink {
  private digest: string | undefined;
  private readonly hashing: boolean;

  constructor(private readonly sink: ByteSink, opts: { name?: string; hashOutput?: boolean } = {}) {
    super(opts.name ?? "gzip stream", new Uint8Array(256 * 1024));
    this.hashing = Boolean(opts.hashOutput);
    const s = acquireSlot();
    s.ch.set(Ctl.SOURCE, Source.RING);
    s.ch.set(Ctl.HASH, this.hashing ? HashFlag.OUTPUT : 0);
    startJob(s);
    this.slot = s;
  }

  write(chunk: Uint8Array): void {
    const s = this.live();
    let off = 0;
    while (off < chunk.length) {
      this.drain(s, this.sink);
      const seen = s.ch.get(Ctl.MAIN_SEQ);
      const n = s.ch.input.put(chunk.subarray(off));
      if (n > 0) {
        s.ch.wakeWorker();
        off += n;
        continue;
      }
      if (s.ch.get(Ctl.STATUS) === Status.FAILED) this.fail(s);
      s.ch.wait(Ctl.MAIN_SEQ, seen);
    }
    this.drain(s, this.sink);
  }

  end(): void {
    const s = this.live();
    s.ch.set(Ctl.INPUT_ENDED, 1);
    s.ch.wakeWorker();
    this.runToEnd(s, this.sink);
    if (this.hashing) this.digest = s.ch.readDigest(Layout.DIGEST_AT);
    this.release(s);
    this.sink.end();
  }

  /** `sha256:<hex>` of the decompressed bytes, after `end()` (with `hashOutput`). */
  outputDigest(): string | undefined {
    return this.digest;
  }

  private live(): Slot {
    if (!this.slot) throw new OcigenError("EDECOMPRESS", `Cannot decompress ${this.name}: write after end or after an error`);
    return this.slot;
  }
}

/**
 * A failure of a {@linkcode FileGunzip} job that is about the compressed file
 * itself (cannot open or read it, or it is longer or shorter than expected),
 * not its content. Callers holding a descriptor re-verify the blob to report it
 * in their own terms.
 *
 * @example
 * ```ts
 * try { job.pump(sink); } catch (e) { if (e instanceof BlobReadError) await layout.verifyBlob(desc); }
 * ```
 */
export class BlobReadError extends OcigenError {}

/**
 * gzip decompression of a whole file in a worker thread that reads the file
 * itself: it hashes the compressed bytes (the blob digest), checks their
 * count, inflates them on the WASM kernel, hashes the output (the diff_id) and
 * hands it over through a bounded shared ring (16 MiB). The caller's thread
 * only drains the ring into its sink ({@linkcode FileGunzip.pump}). A job
 * starts working as soon as it is created, so creating the next layer's job
 * before pumping the current one overlaps their decompression (at most a
 * ring's worth of output is held). Call {@linkcode FileGunzip.destroy} for a
 * job that will not be pumped to its end.
 *
 * @example
 * ```ts
 * const job = new FileGunzip("/l/blobs/sha256/ab..", { name: "layer sha256:ab..", size: 1234 });
 * job.pump(tarParser); // pushes all output, then tarParser.end()
 * job.inputDigest(); // "sha256:…" of the file
 * job.outputDigest(); // "sha256:…" of the decompressed bytes
 * ```
 */
export class FileGunzip extends WorkerJob {
  private inDigest: string | undefined;
  private outDigest: string | undefined;
  private readonly tarRecords: boolean;
  #finisher: FileFinisher<unknown> | null = null;
  /** The worker hashes each regular file's content (`pumpEntries` hands the digests on). */
  readonly entryDigests: boolean;
  /** {@linkcode FileGunzip.finisher} can be used: a tar records job, on a runtime whose workers share descriptors. */
  readonly finishesFiles: boolean;

  /**
   * `tarRecords`: the worker parses the tar stream too (use {@linkcode FileGunzip.pumpEntries});
   * `entryDigests` (with `tarRecords`): it also hashes each regular file's
   * content, handed to `TarHandler.contentDigest` before the entry ends.
   */
  constructor(file: string, opts: { name?: string; size?: number; tarRecords?: boolean; entryDigests?: boolean } = {}) {
    super(opts.name ?? file, null);
    const s = acquireSlot();
    if (!s.ch.writePath(file)) {
      releaseSlot(s);
      throw new OcigenError("EDECOMPRESS", `Cannot decompress ${this.name}: file name too long`);
    }
    s.ch.sizes.set([opts.size ?? -1, 0]);
    this.tarRecords = Boolean(opts.tarRecords);
    this.entryDigests = this.tarRecords && Boolean(opts.entryDigests);
    this.finishesFiles = this.tarRecords && workersShareDescriptors();
    s.ch.set(Ctl.HASH, HashFlag.OUTPUT | HashFlag.INPUT | (this.entryDigests ? HashFlag.ENTRIES : 0));
    s.ch.set(Ctl.SOURCE, Source.FILE);
    s.ch.set(Ctl.OUTPUT, this.tarRecords ? OutputKind.TAR_RECORDS : OutputKind.BYTES);
    startJob(s);
    this.slot = s;
  }

  /**
   * Gives the job up and terminates its worker; with finish requests, first
   * lets the worker stop (it is told to abort and waited for, at most
   * {@linkcode ABANDON_WAIT_MS}) and closes the descriptors it did not take.
   */
  override destroy(): void {
    const s = this.slot;
    const fin = this.#finisher;
    this.#finisher = null;
    if (s && fin) {
      if (s.ch.get(Ctl.STATUS) === Status.RUNNING) {
        s.ch.set(Ctl.ABORT, 1);
        s.ch.wakeWorker();
        const deadline = Date.now() + ABANDON_WAIT_MS;
        for (;;) {
          const seen = s.ch.get(Ctl.MAIN_SEQ);
          if (s.ch.get(Ctl.STATUS) !== Status.RUNNING) break;
          const left = deadline - Date.now();
          if (left <= 0) break;
          s.ch.wait(Ctl.MAIN_SEQ, seen, left);
        }
      }
      // a worker still running after the wait may yet close them: those few stay open then
      if (s.ch.get(Ctl.STATUS) !== Status.RUNNING) fin.abandon();
    }
    super.destroy();
  }

  /**
   * Pushes the whole decompressed stream into `sink`, then calls `sink.end()`;
   * throws on any failure (the job is then gone). `onInput` hears how many
   * more compressed bytes were read (progress).
   */
  pump(sink: ByteSink, onInput?: (bytes: number) => void): void {
    const s = this.slot;
    if (!s) throw new OcigenError("EDECOMPRESS", `Cannot decompress ${this.name}: the job was already used or destroyed`);
    if (this.tarRecords) throw new OcigenError("EDECOMPRESS", `Cannot decompress ${this.name}: a tar records job is read with pumpEntries`);
    let reported = 0;
    const report = () => {
      const now = s.ch.sizes[1]; // read once: the worker moves it concurrently
      if (onInput && now > reported) {
        onInput(now - reported);
        reported = now;
      }
    };
    this.runToEnd(s, sink, report);
    report(); // what was read after the last report
    this.outDigest = s.ch.readDigest(Layout.DIGEST_AT);
    this.inDigest = s.ch.readDigest(Layout.IN_DIGEST_AT);
    this.release(s);
    sink.end();
  }

  /**
   * For a job started with `tarRecords`: replays the worker's tar events to
   * `handler` (`entry`, `data` views of the shared ring valid during the call,
   * `hole` or zero `data`, `contentDigest` with `entryDigests`, `entryEnd`), then calls `handler.end()`; a bad tar
   * stream throws the same `ETAR` message as an in-thread parser with context
   * the job's name, after the events before the error. `onInput` as for
   * {@linkcode FileGunzip.pump}.
   *
   * @example
   * ```ts
   * const job = new FileGunzip(file, { name: "layer sha256:ab..", size, tarRecords: true });
   * job.pumpEntries(new LayerApplier(state, "layer sha256:ab.."));
   * ```
   */
  pumpEntries(handler: TarHandler, onInput?: (bytes: number) => void): void {
    const s = this.slot;
    if (!s) throw new OcigenError("EDECOMPRESS", `Cannot decompress ${this.name}: the job was already used or destroyed`);
    if (!this.tarRecords) throw new OcigenError("EDECOMPRESS", `Cannot decompress ${this.name}: not a tar records job`);
    let reported = 0;
    const report = () => {
      const now = s.ch.sizes[1];
      if (onInput && now > reported) {
        onInput(now - reported);
        reported = now;
      }
    };
    let ended = false;
    for (;;) {
      const seen = s.ch.get(Ctl.MAIN_SEQ);
      const st = s.ch.get(Ctl.STATUS); // before replaying: a failed job's records are all written by then
      if (!ended && this.replay(s, handler)) {
        ended = true;
        // every finish request is written (the last entry ended before the END record)
        s.ch.set(Ctl.INPUT_ENDED, 1);
        s.ch.wakeWorker();
      }
      try {
        this.#finisher?.collect();
      } catch (e) {
        this.destroy();
        throw e;
      }
      report();
      if (st === Status.FAILED) this.fail(s);
      if (st === Status.DONE && s.ch.output.readable() === 0) break;
      s.ch.wakeWorker(); // the ring is empty: a worker waiting for room must not wait on
      s.ch.wait(Ctl.MAIN_SEQ, seen);
    }
    report();
    try {
      this.#finisher?.collect(0); // the worker did them all before DONE: the results of the last ones
    } catch (e) {
      this.destroy();
      throw e;
    }
    this.#finisher = null;
    this.outDigest = s.ch.readDigest(Layout.DIGEST_AT);
    this.inDigest = s.ch.readDigest(Layout.IN_DIGEST_AT);
    this.release(s);
    if (!ended) throw new OcigenError("ETAR", `Cannot unpack ${this.name}: the tar worker ended without the end of the archive`);
    handler.end();
  }

  /**
   * The finish requests of this job (see finish.ts): descriptors of files
   * the handler wrote, closed by the worker after their last system calls;
   * `onResult` hears each result during {@linkcode FileGunzip.pumpEntries}
   * (at the latest before it returns) and may throw that file's error. One
   * per job, made before `pumpEntries`.
   *
   * @example
   * ```ts
   * const fin = job.finisher<string>((rel, r) => { if (r.status) throw new Error(rel); });
   * job.pumpEntries(handlerPostingTo(fin));
   * ```
   */
  finisher<T>(onResult: (token: T, r: FinishResult) => void): FileFinisher<T> {
    const s = this.slot;
    if (!s || !this.finishesFiles || this.#finisher) throw new OcigenError("EDECOMPRESS", `Cannot decompress ${this.name}: no tar records job to finish files on`);
    const fin = new FileFinisher<T>(s.ch, FINISH_WORDS, onResult);
    this.#finisher = fin as FileFinisher<unknown>;
    return fin;
  }

  /** Replays every readable record to `handler`; true when the `END` record was among them. */
  private replay(s: Slot, handler: TarHandler): boolean {
    const out = s.ch.output;
    // a worker waiting for room is woken once a quarter of the ring is free,
    // not after every record (each wake-up is a context switch on both sides)
    const wakeAt = out.bytes.length - (out.bytes.length >> 2);
    let ended = false;
    for (let r = out.nextRecord(); r; r = out.nextRecord()) {
      try {
        if (r.kind === RecordKind.DATA) handler.data(r.payload);
        else if (r.kind === RecordKind.EVENTS) replayEvents(r.payload, handler);
        else if (r.kind === RecordKind.END) ended = true;
        else throw new OcigenError("ETAR", `Cannot unpack ${this.name}: bad record ${r.kind} from the tar worker`);
      } catch (e) {
        this.destroy();
        throw e;
      }
      out.consume(recordBytes(r.payload.length)); // after the call: the worker cannot reuse the bytes before
      if (out.readable() <= wakeAt) s.ch.wakeWorker();
    }
    return ended;
  }

  /** `sha256:<hex>` of the compressed file, after a successful `pump()`. */
  inputDigest(): string | undefined {
    return this.inDigest;
  }

  /** `sha256:<hex>` of the decompressed bytes, after a successful `pump()`. */
  outputDigest(): string | undefined {
    return this.outDigest;
  }

  protected override sourceError(code: number, s: Slot): OcigenError | null {
    const errno = s.ch.get(Ctl.ERR_ERRNO);
    const read = s.ch.sizes[1];
    const ioName = errno >= 0 ? ERRNO_NAMES[errno] : "I/O error";
    switch (code) {
      case WorkerError.TAR:
        return new OcigenError("ETAR", `Cannot unpack ${this.name}: ${s.ch.readMessage()}`);
      case WorkerError.OPEN:
        return new BlobReadError("EIO", `Cannot read ${this.name}: open failed (${ioName})`);
      case WorkerError.READ:
        return new BlobReadError("EIO", `Cannot read ${this.name}: read failed after ${read} bytes (${ioName})`);
      case WorkerError.TOO_LONG:
        return new BlobReadError("ESIZE", `Cannot read ${this.name}: longer than its expected size`);
      case WorkerError.TOO_SHORT:
        return new BlobReadError("ESIZE", `Cannot read ${this.name}: ${read} bytes, shorter than its expected size`);
    }
    return null;
  }
}
