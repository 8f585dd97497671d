/**
 * Typed views of an inflate worker's shared buffer ({@linkcode Layout} in
 * `protocol.ts`), used by both sides: the control words, the two byte rings
 * and the digest / file-name / counter fields, and the two wake-up signals.
 *
 * Ring counters are Int32 words that wrap: the fill level is
 * `(write - read) | 0`, the position `(counter >>> 0) % capacity`. A ring hands
 * out contiguous pieces only (up to its end), so a caller loops.
 *
 * The output ring of a `TAR_RECORDS` job carries records instead of bytes
 * ({@linkcode Ring.reserveRecord} / {@linkcode Ring.commit} on the worker's
 * side, {@linkcode Ring.nextRecord} on the caller's): a record is written
 * whole before the write counter moves, and never wraps the ring's end.
 *
 * @module
 */
import { Ctl, Layout, RECORD_HEADER_BYTES, RecordKind } from "./protocol.ts";

/**
 * One byte ring of the shared buffer (the input or the output ring).
 *
 * @example
 * ```ts
 * const n = ring.put(chunk); // producer: copies what fits (0 when full)
 * const v = ring.peek(65536); // consumer: a view of readable bytes, or null
 * if (v) { use(v); ring.consume(v.length); }
 * ```
 */
export class Ring {
  constructor(
    private readonly ctl: Int32Array,
    /** The ring's bytes. */
    readonly bytes: Uint8Array,
    private readonly writeWord: number,
    private readonly readWord: number,
  ) {}

  private words: Int32Array | null = null;

  /** Bytes written and not yet consumed. */
  readable(): number {
    return (Atomics.load(this.ctl, this.writeWord) - Atomics.load(this.ctl, this.readWord)) | 0;
  }

  /** Copies as much of `src` as fits in one contiguous piece; returns the bytes copied (0: full). */
  put(src: Uint8Array): number {
    const cap = this.bytes.length;
    const w = Atomics.load(this.ctl, this.writeWord);
    const space = cap - ((w - Atomics.load(this.ctl, this.readWord)) | 0);
    if (space <= 0) return 0;
    const at = (w >>> 0) % cap;
    const k = Math.min(src.length, space, cap - at);
    this.bytes.set(src.subarray(0, k), at);
    Atomics.store(this.ctl, this.writeWord, (w + k) | 0);
    return k;
  }

  /** A view of at most `max` readable bytes in one contiguous piece, or null when empty. */
  peek(max: number): Uint8Array | null {
    const cap = this.bytes.length;
    const r = Atomics.load(this.ctl, this.readWord);
    const avail = (Atomics.load(this.ctl, this.writeWord) - r) | 0;
    if (avail <= 0) return null;
    const at = (r >>> 0) % cap;
    return this.bytes.subarray(at, at + Math.min(avail, cap - at, max));
  }

  /** Marks `n` bytes (from a {@linkcode Ring.peek} view) as consumed: the producer may reuse them. */
  consume(n: number): void {
    Atomics.store(this.ctl, this.readWord, (Atomics.load(this.ctl, this.readWord) + n) | 0);
  }

  private i32(): Int32Array {
    return this.words ??= new Int32Array(this.bytes.buffer, this.bytes.byteOffset, this.bytes.length >> 2);
  }

  /**
   * Producer: where a record with a `len`-byte payload can be written whole
   * (its header written), or -1 when the ring has no room for it yet. A record
   * that would cross the ring's end gets a `PAD` record over the tail first.
   * Publish it with {@linkcode Ring.commit}`(recordBytes(len))`.
   */
  reserveRecord(kind: number, len: number): number {
    const need = recordBytes(len);
    const cap = this.bytes.length;
    if (need > cap) throw new RangeError(`record of ${len} bytes does not fit the ring`);
    const w = Atomics.load(this.ctl, this.writeWord);
    const free = cap - ((w - Atomics.load(this.ctl, this.readWord)) | 0);
    const at = (w >>> 0) % cap;
    const tail = cap - at;
    if (tail < need) {
      if (free < tail + need) return -1;
      this.i32().set([RecordKind.PAD, tail - RECORD_HEADER_BYTES], at >> 2);
      this.commit(tail);
      return this.reserveRecord(kind, len);
    }
    if (free < need) return -1;
    this.i32().set([kind, len], at >> 2);
    return at;
  }

  /** Producer: publishes `n` bytes written at the write position. */
  commit(n: number): void {
    Atomics.store(this.ctl, this.writeWord, (Atomics.load(this.ctl, this.writeWord) + n) | 0);
  }

  /**
   * Consumer: the next record (`PAD` records skipped), or null when none is
   * readable. Its payload is a view of the ring: call
   * {@linkcode Ring.consume}`(recordBytes(payload.length))` when done with it.
   */
  nextRecord(): { kind: number; payload: Uint8Array } | null {
    const cap = this.bytes.length;
    for (;;) {
      if (this.readable() < RECORD_HEADER_BYTES) return null;
      const at = (Atomics.load(this.ctl, this.readWord) >>> 0) % cap;
      const w = this.i32();
      const kind = w[at >> 2];
      const len = w[(at >> 2) + 1];
      if (kind === RecordKind.PAD) {
        this.consume(recordBytes(len));
        continue;
      }
      const p = at + RECORD_HEADER_BYTES;
      return { kind, payload: this.bytes.subarray(p, p + len) };
    }
  }
}

/**
 * Bytes a record with a `len`-byte payload takes in the ring (header, payload
 * padded to 8).
 *
 * @example
 * ```ts
 * recordBytes(5); // 16
 * ```
 */
export function recordBytes(len: number): number {
  return RECORD_HEADER_BYTES + ((len + 7) & ~7);
}

/**
 * The views of one shared buffer.
 *
 * @example
 * ```ts
 * const ch = new Channel(new SharedArrayBuffer(Layout.TOTAL));
 * ch.set(Ctl.ABORT, 1);
 * ch.wakeWorker();
 * ```
 */
export class Channel {
  /** The control words. */
  readonly ctl: Int32Array;
  /** Caller -> worker compressed bytes. */
  readonly input: Ring;
  /** Worker -> caller output. */
  readonly output: Ring;
  /** [expected input size or -1, input bytes read]. */
  readonly sizes: Float64Array;

  constructor(readonly sab: SharedArrayBuffer) {
    this.ctl = new Int32Array(sab, 0, Layout.CTL_WORDS);
    this.input = new Ring(this.ctl, new Uint8Array(sab, Layout.CTL_BYTES, Layout.IN_CAP), Ctl.IN_W, Ctl.IN_R);
    this.output = new Ring(this.ctl, new Uint8Array(sab, Layout.CTL_BYTES + Layout.IN_CAP, Layout.OUT_CAP), Ctl.OUT_W, Ctl.OUT_R);
    this.sizes = new Float64Array(sab, Layout.F64_AT, 2);
  }

  /** Reads a control word. */
  get(word: number): number {
    return Atomics.load(this.ctl, word);
  }

  /** Writes a control word. */
  set(word: number, value: number): void {
    Atomics.store(this.ctl, word, value);
  }

  /**
   * Tells the caller something changed (it waits on `MAIN_SEQ`). The futex
   * wake-up (a system call, and a context switch for the sleeper) is made only
   * when the caller sleeps: one per tar record cost ~0.1-0.6 s of a 92k-entry
   * unpack. No wake-up is lost: the sleeper raises its flag before `Atomics.wait`
   * compares the counter, and the waker bumps the counter before it reads the
   * flag (both sequentially consistent).
   */
  wakeMain(): void {
    Atomics.add(this.ctl, Ctl.MAIN_SEQ, 1);
    if (Atomics.load(this.ctl, Ctl.MAIN_SLEEPING) !== 0) Atomics.notify(this.ctl, Ctl.MAIN_SEQ);
  }

  /** Tells the worker something changed (it waits on `WORK_SEQ`); see {@linkcode Channel.wakeMain}. */
  wakeWorker(): void {
    Atomics.add(this.ctl, Ctl.WORK_SEQ, 1);
    if (Atomics.load(this.ctl, Ctl.WORK_SLEEPING) !== 0) Atomics.notify(this.ctl, Ctl.WORK_SEQ);
  }

  /** Whether the worker sleeps on `WORK_SEQ` now. */
  workerSleeping(): boolean {
    return Atomics.load(this.ctl, Ctl.WORK_SLEEPING) !== 0;
  }

  /** Whether the caller sleeps on `MAIN_SEQ` now. */
  mainSleeping(): boolean {
    return Atomics.load(this.ctl, Ctl.MAIN_SLEEPING) !== 0;
  }

  /**
   * Sleeps until `word` differs from `seen` (or `ms` pass); returns at once if
   * it already does. Waits on `MAIN_SEQ` and `WORK_SEQ` raise their sleeper's
   * flag for the time of the wait (one sleeper per word).
   */
  wait(word: number, seen: number, ms = 1000): void {
    const flag = word === Ctl.MAIN_SEQ ? Ctl.MAIN_SLEEPING : word === Ctl.WORK_SEQ ? Ctl.WORK_SLEEPING : -1;
    if (flag < 0) {
      Atomics.wait(this.ctl, word, seen, ms);
      return;
    }
    Atomics.store(this.ctl, flag, 1);
    Atomics.wait(this.ctl, word, seen, ms);
    Atomics.store(this.ctl, flag, 0);
  }

  /** Writes 64 hex digits at `at` (`Layout.DIGEST_AT` or `Layout.IN_DIGEST_AT`). */
  writeHex(at: number, hex: string): void {
    new Uint8Array(this.sab, at, 64).set(new TextEncoder().encode(hex));
  }

  /** `sha256:` and the 64 hex digits at `at`. */
  readDigest(at: number): string {
    return "sha256:" + new TextDecoder().decode(new Uint8Array(this.sab, at, 64).slice());
  }

  /** Stores a file name for a file job; false when it is too long. */
  writePath(file: string): boolean {
    const bytes = new TextEncoder().encode(file);
    if (bytes.length > Layout.PATH_CAP) return false;
    new Uint8Array(this.sab, Layout.PATH_AT, Layout.PATH_CAP).set(bytes);
    this.set(Ctl.PATH_LEN, bytes.length);
    return true;
  }

  /** Stores a tar error's text (cut to `Layout.MSG_CAP` bytes). */
  writeMessage(text: string): void {
    const dst = new Uint8Array(this.sab, Layout.MSG_AT, Layout.MSG_CAP);
    const { written } = new TextEncoder().encodeInto(text, dst);
    this.set(Ctl.MSG_LEN, written ?? 0);
  }

  /** The tar error text of the current job. */
  readMessage(): string {
    return new TextDecoder().decode(new Uint8Array(this.sab, Layout.MSG_AT, this.get(Ctl.MSG_LEN)).slice());
  }

  /** The file name of the current file job. */
  readPath(): string {
    return new TextDecoder().decode(new Uint8Array(this.sab, Layout.PATH_AT, this.get(Ctl.PATH_LEN)).slice());
  }
}
