/**
 * Finishing written files in the layer's worker thread.
 *
 * Once a regular file's bytes are written, what is left is a fixed sequence
 * of system calls on its descriptor: `fchown` (when its owner must change),
 * `fchmod` (when `open` could not give the final mode), `futimes`, `fstat`
 * (when its digest is recorded) and `close`. On a layer of small files that
 * is a third of the applying thread's system calls, while the inflate worker
 * of the same layer mostly waits for room in its output ring. A
 * `TAR_RECORDS` file job therefore also takes *finish requests* from the
 * caller and runs them between its own work.
 *
 * Format (the job's input ring, unused by file jobs, as an array of
 * {@linkcode FINISH_SLOT}-byte slots; counters in bytes, as the ring's):
 *  - the caller fills the slot at `IN_W` and advances `IN_W`:
 *    Int32 `[0]` fd, `[1]` {@linkcode FinishFlag} bits, `[2]` uid, `[3]` gid,
 *    `[4]` mode; Float64 `[3]` atime, `[4]` mtime (seconds);
 *  - the worker runs the slot at `FIN_DONE`, writes its result into the same
 *    slot and advances `FIN_DONE`: Int32 `[10]` 0, or 1 + the index in
 *    {@linkcode FINISH_OPS} of the call that failed; Float64 `[6]` dev, `[7]`
 *    ino, `[8]` size (with `STAT`); bytes 72..87 the errno name, 88..127 the
 *    error's text (ASCII, NUL-padded);
 *  - the caller reads results from `IN_R` up to `FIN_DONE` and advances
 *    `IN_R` (that frees the slots).
 * The descriptor is closed in every case, also after a failed call; the
 * caller must not touch it once the request is written. The worker keeps
 * taking requests after the tar stream ends, until the caller sets
 * `INPUT_ENDED` and every request is done; only then is the job `DONE`.
 * A job that fails or is given up leaves requests not taken (a failed
 * worker stops taking them, and the caller may post more before it sees the
 * failure): once the worker's `STATUS` is no longer running, the caller
 * closes their descriptors ({@linkcode FileFinisher.abandon}).
 *
 * @module
 */
import fs from "node:fs";

/**
 * Bytes per finish slot (divides the input ring's size).
 *
 * @example
 * ```ts
 * const next = (at + FINISH_SLOT) % ringBytes;
 * ```
 */
export const FINISH_SLOT = 128;

/**
 * Bits of a finish request.
 *
 * @example
 * ```ts
 * const flags = FinishFlag.CHOWN | FinishFlag.STAT;
 * ```
 */
export const FinishFlag = { CHOWN: 1, CHMOD: 2, STAT: 4 } as const;

/**
 * The calls of a finish request in the order they run (`wrapIo` operation names).
 *
 * @example
 * ```ts
 * const op = FINISH_OPS[status - 1]; // "chown"
 * ```
 */
export const FINISH_OPS: readonly string[] = ["chown", "chmod", "set times", "fstat", "close"];

/**
 * What a finish request came to.
 *
 * @example
 * ```ts
 * const r: FinishResult = slots.result(at);
 * if (r.status) throw new Error(`${FINISH_OPS[r.status - 1]}: ${r.code}`);
 * ```
 */
export interface FinishResult {
  /** 0, or 1 + the index in {@linkcode FINISH_OPS} of the failed call. */
  status: number;
  dev: number;
  ino: number;
  size: number;
  /** errno name of a failure ("EPERM"). */
  code: string;
  /** Its text ("operation not permitted"). */
  message: string;
}

const ascii = new TextDecoder();

/**
 * Typed views of the finish slots in a ring's bytes (both sides use one).
 *
 * @example
 * ```ts
 * const slots = new FinishSlots(ch.input.bytes);
 * slots.request(0, fd, FinishFlag.STAT, 0, 0, 0o644, 0, 1700000000);
 * slots.run(0); // in the worker
 * slots.result(0).ino;
 * ```
 */
export class FinishSlots {
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;

  constructor(private readonly bytes: Uint8Array) {
    this.i32 = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.length >> 2);
    this.f64 = new Float64Array(bytes.buffer, bytes.byteOffset, bytes.length >> 3);
  }

  /** Writes a request into the slot at byte offset `at`. */
  request(at: number, fd: number, flags: number, uid: number, gid: number, mode: number, atime: number, mtime: number): void {
    const i = at >> 2, d = at >> 3;
    this.i32[i] = fd;
    this.i32[i + 1] = flags;
    this.i32[i + 2] = uid;
    this.i32[i + 3] = gid;
    this.i32[i + 4] = mode;
    this.f64[d + 3] = atime;
    this.f64[d + 4] = mtime;
  }

  /** Runs the request at `at` (worker side) and writes its result there. */
  run(at: number): void {
    const i = at >> 2, d = at >> 3;
    const fd = this.i32[i], flags = this.i32[i + 1];
    let op = 0;
    try {
      if (flags & FinishFlag.CHOWN) fs.fchownSync(fd, this.i32[i + 2], this.i32[i + 3]);
      op = 1;
      if (flags & FinishFlag.CHMOD) fs.fchmodSync(fd, this.i32[i + 4] & 0o7777);
      op = 2;
      fs.futimesSync(fd, this.f64[d + 3], this.f64[d + 4]);
      op = 3;
      if (flags & FinishFlag.STAT) {
        const st = fs.fstatSync(fd);
        this.f64[d + 6] = st.dev;
        this.f64[d + 7] = st.ino;
        this.f64[d + 8] = st.size;
      }
      op = 4;
      fs.closeSync(fd);
      this.i32[i + 10] = 0;
    } catch (e) {
      if (op < 4) {
        try {
          fs.closeSync(fd);
        } catch { /* the first failure is the one reported */ }
      }
      this.fail(at, op, e);
    }
  }

  private fail(at: number, op: number, e: unknown): void {
    this.i32[(at >> 2) + 10] = op + 1;
    const err = e as { code?: unknown; message?: unknown };
    const code = typeof err?.code === "string" ? err.code : "EIO";
    // node: "EPERM: operation not permitted, fchown" -> "operation not permitted"
    const msg = String(err?.message ?? "");
    const m = /^[A-Z0-9]+: ([^,]+)/.exec(msg);
    this.text(at + 72, 16, code);
    this.text(at + 88, 40, m ? m[1] : msg);
  }

  private text(at: number, cap: number, s: string): void {
    this.bytes.fill(0, at, at + cap);
    for (let k = 0; k < s.length && k < cap; k++) this.bytes[at + k] = s.charCodeAt(k) & 0x7f;
  }

  private readText(at: number, cap: number): string {
    const v = this.bytes.subarray(at, at + cap);
    const end = v.indexOf(0);
    return ascii.decode(v.slice(0, end < 0 ? cap : end));
  }

  /** The descriptor of the request at `at`. */
  fd(at: number): number {
    return this.i32[at >> 2];
  }

  /** The result of the request at `at` (caller side, once the worker passed it). */
  result(at: number): FinishResult {
    const i = at >> 2, d = at >> 3;
    const status = this.i32[i + 10];
    return {
      status,
      dev: this.f64[d + 6],
      ino: this.f64[d + 7],
      size: this.f64[d + 8],
      code: status ? this.readText(at + 72, 16) : "",
      message: status ? this.readText(at + 88, 40) : "",
    };
  }
}

/** Finish requests in flight at most (each holds a descriptor open). */
const MAX_IN_FLIGHT = 256;
/** The worker is woken after this many new requests (and whenever the caller waits). */
const WAKE_BATCH = 32;

/**
 * The control words and ring a {@linkcode FileFinisher} works on (a job's channel).
 *
 * @example
 * ```ts
 * const fc: FinishChannel = slot.ch;
 * ```
 */
export interface FinishChannel {
  readonly ctl: Int32Array;
  readonly input: { readonly bytes: Uint8Array };
  wakeWorker(): void;
  wait(word: number, seen: number, ms?: number): void;
}

/**
 * Where a written file's descriptor goes for its last system calls (a
 * {@linkcode FileFinisher}, or a stand-in in tests).
 *
 * @example
 * ```ts
 * const q: FinishQueue<string> = job.finisher<string>(onResult);
 * q.post("etc/motd", fd, FinishFlag.STAT, 0, 0, 0o644, 0, 0);
 * ```
 */
export interface FinishQueue<T> {
  /** Hands `fd` over (the caller must not use it afterwards, even when this throws: then it was not taken). */
  post(token: T, fd: number, flags: number, uid: number, gid: number, mode: number, atime: number, mtime: number): void;
  /** Hands the results available to the owner's callback; waits while more than `until` are in flight. */
  collect(until?: number): void;
}

/**
 * The caller's side of finish requests on a running `TAR_RECORDS` file job
 * (see the module header): {@linkcode FileFinisher.post} hands a written
 * file's descriptor over, {@linkcode FileFinisher.collect} hands results back
 * to `onResult` in request order (which may throw: the error of that file).
 *
 * @example
 * ```ts
 * const fin = job.finisher<string>((rel, r) => { if (r.status) throw new Error(`${rel}: ${FINISH_OPS[r.status - 1]}`); });
 * fin.post("etc/motd", fd, 0, 0, 0, 0o644, 1700000000, 1700000000);
 * fin.collect(0); // every request done
 * ```
 */
export class FileFinisher<T> implements FinishQueue<T> {
  readonly #slots: FinishSlots;
  readonly #cap: number;
  #tokens: (T | undefined)[] = [];
  #head = 0;
  #sinceWake = 0;

  constructor(
    private readonly ch: FinishChannel,
    private readonly words: { IN_W: number; IN_R: number; FIN_DONE: number; MAIN_SEQ: number; STATUS: number; failed: number },
    private readonly onResult: (token: T, r: FinishResult) => void,
  ) {
    this.#slots = new FinishSlots(ch.input.bytes);
    this.#cap = ch.input.bytes.length;
  }

  /** Requests in flight. */
  get pending(): number {
    return this.#tokens.length - this.#head;
  }

  /** Hands `fd` over (do not use it afterwards unless this throws); `token` comes back with its result. */
  post(token: T, fd: number, flags: number, uid: number, gid: number, mode: number, atime: number, mtime: number): void {
    if (this.pending >= MAX_IN_FLIGHT) this.collect(MAX_IN_FLIGHT >> 1);
    const w = Atomics.load(this.ch.ctl, this.words.IN_W);
    this.#slots.request((w >>> 0) % this.#cap, fd, flags, uid, gid, mode, atime, mtime);
    this.#tokens.push(token);
    Atomics.store(this.ch.ctl, this.words.IN_W, (w + FINISH_SLOT) | 0);
    if (++this.#sinceWake >= WAKE_BATCH) {
      this.#sinceWake = 0;
      this.ch.wakeWorker();
    }
  }

  /**
   * For a job that failed or was given up, once its worker stopped (`STATUS`
   * not running: from then on nothing else touches the requests): closes the
   * descriptors of the requests the worker did not take. Their results never
   * come; the finisher is not used again.
   */
  abandon(): void {
    const w = Atomics.load(this.ch.ctl, this.words.IN_W);
    for (let r = Atomics.load(this.ch.ctl, this.words.FIN_DONE); r !== w; r = (r + FINISH_SLOT) | 0) {
      try {
        fs.closeSync(this.#slots.fd((r >>> 0) % this.#cap));
      } catch { /* nothing to report on a job that already failed */ }
    }
  }

  /**
   * Hands every result available to `onResult`; then, while more than
   * `until` requests are in flight, waits for the worker (returns early when
   * the job failed: its own error is reported by whoever runs the job).
   */
  collect(until = Infinity): void {
    const ctl = this.ch.ctl;
    for (;;) {
      const seen = Atomics.load(ctl, this.words.MAIN_SEQ);
      const done = Atomics.load(ctl, this.words.FIN_DONE);
      let r = Atomics.load(ctl, this.words.IN_R);
      while (r !== done) {
        const res = this.#slots.result((r >>> 0) % this.#cap);
        r = (r + FINISH_SLOT) | 0;
        Atomics.store(ctl, this.words.IN_R, r);
        const token = this.#tokens[this.#head] as T;
        this.#tokens[this.#head++] = undefined;
        if (this.#head === this.#tokens.length) {
          this.#tokens = [];
          this.#head = 0;
        }
        this.onResult(token, res);
      }
      if (this.pending <= until || Atomics.load(ctl, this.words.STATUS) === this.words.failed) return;
      this.#sinceWake = 0;
      this.ch.wakeWorker();
      this.ch.wait(this.words.MAIN_SEQ, seen);
    }
  }
}
