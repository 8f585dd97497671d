/**
 * gzip decompression on the WASM inflate kernel in a worker thread, behind the
 * same synchronous {@linkcode ByteSink} interface as {@linkcode WasmGunzip}:
 * the caller's thread only copies bytes in and out of two shared ring
 * buffers, so inflate + CRC32 run on another core while the caller parses tar
 * and writes files.
 *
 * Protocol (one SharedArrayBuffer, Int32 control words, byte counters that wrap):
 *  - input ring: the caller writes compressed bytes, the worker consumes them;
 *  - output ring: the worker writes decompressed bytes, the caller drains them
 *    into its sink (`WorkerGunzip` copies them out of shared memory first, for
 *    any consumer; `FileGunzip`, used by the unpack engine, hands views of the
 *    ring to the tar parser and frees the bytes after the call);
 *  - each side waits with `Atomics.wait` on its own sequence word, which the
 *    other side bumps after every change, so neither can sleep through progress;
 *  - file jobs (`SOURCE` = 1, {@linkcode FileGunzip}): no input ring, the
 *    worker reads the file named in shared memory itself, checks its size
 *    against the expected one and hashes it (`HASH` bit 2) as well as the
 *    output (bit 1); both hex digests come back in shared memory.
 * A stream that fails or is abandoned terminates its worker; cleanly finished
 * workers are kept for the next stream (at most two idle).
 *
 * @module
 */
import os from "node:os";
import { createHash } from "node:crypto";
import { Worker } from "node:worker_threads";
import { OcigenError } from "../errors.ts";
import type { ByteSink } from "../stream/sink.ts";
import { wasmBase64 } from "../wasm/generated/inflate.ts";
import { decodeBase64 } from "../wasm/instance.ts";
import { describeInflateError, WasmGunzip, wasmGunzipSync } from "./inflate-wasm.ts";
import { GzipDecoder } from "./gzip.ts";

// control words
const MAIN_SEQ = 0; // bumped by the worker, waited on by the caller
const WORK_SEQ = 1; // bumped by the caller, waited on by the worker
const IN_W = 2;
const IN_R = 3;
const OUT_W = 4;
const OUT_R = 5;
const INPUT_ENDED = 6; // caller: no more input
const STATUS = 7; // worker: 0 running, 1 done, 2 error, 3 idle (between jobs)
const ERR_CODE = 8;
const ERR_AT = 9;
const ERR_A = 10;
const ERR_B = 11;
const JOB = 12; // caller bumps to start a job
const ABORT = 13; // caller: give up the current job
const HASH = 14; // caller: bit 1 = sha256 the decompressed output (hex at DIGEST_AT), bit 2 = the compressed input (hex at IN_DIGEST_AT)
const SOURCE = 15; // caller: 0 = input through the input ring, 1 = the worker reads the file named at PATH_AT itself
const PATH_LEN = 16; // caller: UTF-8 length of the file name at PATH_AT
const ERR_ERRNO = 17; // worker: file job I/O failure, -errno-ish code index into ERRNO_NAMES (or -1)

const CTL_WORDS = 32;
const DIGEST_AT = 128; // 64 ASCII hex digits
const IN_DIGEST_AT = 192; // 64 ASCII hex digits
const F64_AT = 256; // Float64: [0] expected input size (file jobs, -1 = unchecked), [1] input bytes read
const PATH_AT = 1024;
const PATH_CAP = 7168;
const CTL_BYTES = 8192;
const IN_CAP = 1 << 20;
const OUT_CAP = 16 << 20;

// worker error codes beyond the kernel's
const ERR_OPEN = -100;
const ERR_READ = -101;
const ERR_TOO_LONG = -102;
const ERR_TOO_SHORT = -103;
const DRAIN_CHUNK = 512 * 1024; // FileGunzip hands the ring over in views of at most this size
const ERRNO_LIST = ["ENOENT", "EACCES", "EISDIR", "EIO", "EMFILE", "ENFILE", "ENOTDIR", "ELOOP", "EINVAL"];

const WORKER_SOURCE = `
const { workerData } = require("node:worker_threads");
const { sab, bytes, inCap, outCap } = workerData;
const ctl = new Int32Array(sab, 0, ${CTL_WORDS});
const f64 = new Float64Array(sab, ${F64_AT}, 2);
const pathBytes = new Uint8Array(sab, ${PATH_AT}, ${PATH_CAP});
const fs = require("node:fs");
const inRing = new Uint8Array(sab, ${CTL_BYTES}, inCap);
const outRing = new Uint8Array(sab, ${CTL_BYTES} + inCap, outCap);
const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { abort() { throw new Error("kernel abort"); } } });
const ex = inst.exports;
const crypto = require("node:crypto");
const digestOut = new Uint8Array(sab, ${DIGEST_AT}, 64);
const inDigestOut = new Uint8Array(sab, ${IN_DIGEST_AT}, 64);
let hash = null;
ex.init(0);
const kIn = ex.inPtr(), kCap = ex.inCapacity();
let mem = new Uint8Array(ex.memory.buffer);
const bump = () => { Atomics.add(ctl, ${MAIN_SEQ}, 1); Atomics.notify(ctl, ${MAIN_SEQ}); };
class Abort {}
function waitWork(seq) {
  if (Atomics.load(ctl, ${ABORT})) throw new Abort();
  Atomics.wait(ctl, ${WORK_SEQ}, seq, 1000);
  if (Atomics.load(ctl, ${ABORT})) throw new Abort();
}
function emit(p, n) {
  if (hash) hash.update(mem.subarray(p, p + n));
  while (n > 0) {
    const seq = Atomics.load(ctl, ${WORK_SEQ});
    const w = Atomics.load(ctl, ${OUT_W}), r = Atomics.load(ctl, ${OUT_R});
    const space = outCap - ((w - r) | 0);
    if (space === 0) { waitWork(seq); continue; }
    const at = (w >>> 0) % outCap;
    const k = Math.min(n, space, outCap - at);
    outRing.set(mem.subarray(p, p + k), at);
    Atomics.store(ctl, ${OUT_W}, (w + k) | 0);
    bump();
    p += k; n -= k;
  }
}
function finish() {
  if (hash) { digestOut.set(new TextEncoder().encode(hash.digest("hex"))); hash = null; }
  Atomics.store(ctl, ${STATUS}, 1); bump();
}
// Compressed bytes of the current job the kernel has consumed and shifted out.
let consumed = 0;
// Runs the kernel over the inLen input bytes buffered in its memory (final:
// no more input will come), handing output over as it appears. Returns the
// bytes still buffered once the kernel needs more input, or -1 when the job
// is over: finished (after onDone) or failed.
function drain(inLen, final, onDone) {
  for (;;) {
    const st = ex.run(inLen, final ? 1 : 0);
    const n = ex.outLength();
    if (n) emit(ex.outPtr(), n);
    if (st === 1) continue;
    if (st === 0) {
      if (final) { fail(-13, consumed + ex.inputConsumed()); return -1; }
      const used = ex.inputConsumed();
      inLen = ex.shiftInput(inLen);
      consumed += used;
      return inLen;
    }
    if (st === 2) { if (onDone) onDone(); finish(); return -1; }
    fail(st, consumed + ex.inputConsumed());
    return -1;
  }
}
// File job: read the compressed file here (and hash it), inflate, hand the output over.
function fileJob() {
  ex.reset();
  const flags = Atomics.load(ctl, ${HASH});
  hash = flags & 1 ? crypto.createHash("sha256") : null;
  const inHash = flags & 2 ? crypto.createHash("sha256") : null;
  const want = f64[0];
  const file = new TextDecoder().decode(pathBytes.slice(0, Atomics.load(ctl, ${PATH_LEN})));
  let fd;
  // never a FIFO, device or symlink (the caller checked the path; this holds if it was swapped since)
  try { fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | (fs.constants.O_NONBLOCK || 0)); } catch (e) { failIo(${ERR_OPEN}, e); return; }
  try { if (!fs.fstatSync(fd).isFile()) { fs.closeSync(fd); failIo(${ERR_OPEN}, { code: "EINVAL" }); return; } } catch (e) { fs.closeSync(fd); failIo(${ERR_OPEN}, e); return; }
  try {
    let inLen = 0, total = 0, eof = false;
    consumed = 0;
    f64[1] = 0;
    for (;;) {
      if (Atomics.load(ctl, ${ABORT})) throw new Abort();
      if (mem.buffer !== ex.memory.buffer) mem = new Uint8Array(ex.memory.buffer);
      while (!eof && inLen < kCap) {
        let n;
        try { n = fs.readSync(fd, mem, kIn + inLen, kCap - inLen, null); } catch (e) { failIo(${ERR_READ}, e); return; }
        if (n === 0) { eof = true; break; }
        if (inHash) inHash.update(mem.subarray(kIn + inLen, kIn + inLen + n));
        inLen += n; total += n; f64[1] = total;
        if (want >= 0 && total > want) { fail(${ERR_TOO_LONG}, total); return; }
      }
      if (eof && want >= 0 && total !== want) { fail(${ERR_TOO_SHORT}, total); return; }
      inLen = drain(inLen, eof, () => {
        if (inHash) inDigestOut.set(new TextEncoder().encode(inHash.digest("hex")));
      });
      if (inLen < 0) return;
    }
  } finally {
    fs.closeSync(fd);
  }
}
function failIo(code, e) {
  Atomics.store(ctl, ${ERR_ERRNO}, ERRNO_NAMES.indexOf(e && e.code));
  fail(code, 0);
}
const ERRNO_NAMES = ${JSON.stringify(ERRNO_LIST)};
function job() {
  if (Atomics.load(ctl, ${SOURCE}) === 1) { fileJob(); return; }
  ex.reset();
  hash = Atomics.load(ctl, ${HASH}) & 1 ? crypto.createHash("sha256") : null;
  let inLen = 0;
  consumed = 0;
  for (;;) {
    const seq = Atomics.load(ctl, ${WORK_SEQ});
    const ended = Atomics.load(ctl, ${INPUT_ENDED});
    const w = Atomics.load(ctl, ${IN_W}), r = Atomics.load(ctl, ${IN_R});
    let avail = (w - r) | 0;
    if (mem.buffer !== ex.memory.buffer) mem = new Uint8Array(ex.memory.buffer);
    let took = 0;
    while (avail > 0 && inLen < kCap) {
      const at = ((r + took) >>> 0) % inCap;
      const k = Math.min(avail, kCap - inLen, inCap - at);
      mem.set(inRing.subarray(at, at + k), kIn + inLen);
      inLen += k; took += k; avail -= k;
    }
    if (took) { Atomics.store(ctl, ${IN_R}, (r + took) | 0); bump(); }
    const final = ended === 1 && avail === 0;
    if (!took && !final) { waitWork(seq); continue; }
    inLen = drain(inLen, final);
    if (inLen < 0) return;
  }
}
function fail(code, at) {
  Atomics.store(ctl, ${ERR_CODE}, code);
  Atomics.store(ctl, ${ERR_AT}, at);
  Atomics.store(ctl, ${ERR_A}, ex.errorDetailA() | 0);
  Atomics.store(ctl, ${ERR_B}, ex.errorDetailB() | 0);
  Atomics.store(ctl, ${STATUS}, 2);
  bump();
}
let seenJob = 0;
for (;;) {
  while (Atomics.load(ctl, ${JOB}) === seenJob) Atomics.wait(ctl, ${JOB}, seenJob);
  seenJob = Atomics.load(ctl, ${JOB});
  try { job(); } catch (e) {
    if (!(e instanceof Abort)) { Atomics.store(ctl, ${ERR_CODE}, -18); Atomics.store(ctl, ${STATUS}, 2); bump(); }
  }
}
`;

interface Slot {
  worker: Worker;
  sab: SharedArrayBuffer;
  ctl: Int32Array;
  inRing: Uint8Array;
  outRing: Uint8Array;
}
const idle: Slot[] = [];
let kernelBytes: Uint8Array | null = null;

function startSlot(): Slot {
  if (!kernelBytes) kernelBytes = decodeBase64(wasmBase64);
  const sab = new SharedArrayBuffer(CTL_BYTES + IN_CAP + OUT_CAP);
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { sab, bytes: kernelBytes, inCap: IN_CAP, outCap: OUT_CAP } });
  worker.unref();
  return {
    worker, sab, ctl: new Int32Array(sab, 0, CTL_WORDS),
    inRing: new Uint8Array(sab, CTL_BYTES, IN_CAP), outRing: new Uint8Array(sab, CTL_BYTES + IN_CAP, OUT_CAP),
  };
}

/**
 * Streaming gzip decoder whose inflate runs in a worker thread (same
 * contract and errors as {@linkcode WasmGunzip}; gzip framing only).
 *
 * @example
 * ```ts
 * import { CollectSink } from "../stream/sink.ts";
 * const out = new CollectSink();
 * const gz = new WorkerGunzip(out, { name: "layer sha256:ab.." });
 * gz.write(compressedBytes);
 * gz.end();
 * ```
 */
export class WorkerGunzip implements ByteSink {
  private slot: Slot | null;
  private readonly name: string;
  private scratch = new Uint8Array(256 * 1024);

  private digest: string | undefined;
  private readonly hashing: boolean;

  constructor(private readonly sink: ByteSink, opts: { name?: string; hashOutput?: boolean } = {}) {
    this.name = opts.name ?? "gzip stream";
    this.hashing = Boolean(opts.hashOutput);
    const s = idle.pop() ?? startSlot();
    const c = s.ctl;
    for (const i of [IN_W, IN_R, OUT_W, OUT_R, INPUT_ENDED, STATUS, ERR_CODE, ABORT, SOURCE]) Atomics.store(c, i, 0);
    Atomics.store(c, HASH, this.hashing ? 1 : 0);
    Atomics.add(c, JOB, 1);
    Atomics.notify(c, JOB);
    this.slot = s;
  }

  write(chunk: Uint8Array): void {
    const s = this.live();
    const c = s.ctl;
    let off = 0;
    while (off < chunk.length) {
      this.drain(s);
      const seq = Atomics.load(c, MAIN_SEQ);
      const w = Atomics.load(c, IN_W);
      const space = IN_CAP - ((w - Atomics.load(c, IN_R)) | 0);
      if (space > 0) {
        const at = (w >>> 0) % IN_CAP;
        const k = Math.min(chunk.length - off, space, IN_CAP - at);
        s.inRing.set(chunk.subarray(off, off + k), at);
        Atomics.store(c, IN_W, (w + k) | 0);
        this.bumpWorker(c);
        off += k;
        continue;
      }
      if (Atomics.load(c, STATUS) === 2) this.fail(s);
      Atomics.wait(c, MAIN_SEQ, seq, 1000);
    }
    this.drain(s);
  }

  end(): void {
    const s = this.live();
    const c = s.ctl;
    Atomics.store(c, INPUT_ENDED, 1);
    this.bumpWorker(c);
    for (;;) {
      const seq = Atomics.load(c, MAIN_SEQ);
      this.drain(s);
      const st = Atomics.load(c, STATUS);
      if (st === 2) this.fail(s);
      if (st === 1 && Atomics.load(c, OUT_W) === Atomics.load(c, OUT_R)) break;
      Atomics.wait(c, MAIN_SEQ, seq, 1000);
    }
    if (this.hashing) this.digest = "sha256:" + new TextDecoder().decode(new Uint8Array(s.sab, DIGEST_AT, 64).slice());
    this.slot = null;
    if (idle.length < 2) idle.push(s);
    else void s.worker.terminate();
    this.sink.end();
  }

  /** Gives up the stream (e.g. the producer failed before `end()`): stops and drops the worker. */
  destroy(): void {
    if (this.slot) this.abandon(this.slot);
  }

  /** `sha256:<hex>` of the decompressed bytes, after `end()` (with `hashOutput`). */
  outputDigest(): string | undefined {
    return this.digest;
  }

  private live(): Slot {
    if (!this.slot) throw new OcigenError("EDECOMPRESS", `Cannot decompress ${this.name}: write after end or after an error`);
    return this.slot;
  }

  private bumpWorker(c: Int32Array): void {
    Atomics.add(c, WORK_SEQ, 1);
    Atomics.notify(c, WORK_SEQ);
  }

  /** Hands every available output byte to the sink. */
  private drain(s: Slot): void {
    const c = s.ctl;
    for (;;) {
      const w = Atomics.load(c, OUT_W);
      const r = Atomics.load(c, OUT_R);
      const avail = (w - r) | 0;
      if (avail <= 0) return;
      const at = (r >>> 0) % OUT_CAP;
      const k = Math.min(avail, OUT_CAP - at, this.scratch.length);
      this.scratch.set(s.outRing.subarray(at, at + k));
      Atomics.store(c, OUT_R, (r + k) | 0);
      this.bumpWorker(c);
      try {
        this.sink.write(this.scratch.subarray(0, k));
      } catch (e) {
        this.abandon(s);
        throw e;
      }
    }
  }

  private abandon(s: Slot): void {
    Atomics.store(s.ctl, ABORT, 1);
    this.bumpWorker(s.ctl);
    this.slot = null;
    void s.worker.terminate();
  }

  private fail(s: Slot): never {
    const c = s.ctl;
    const code = Atomics.load(c, ERR_CODE);
    const msg = describeInflateError(code, Atomics.load(c, ERR_A) >>> 0, Atomics.load(c, ERR_B) >>> 0);
    const at = Atomics.load(c, ERR_AT) >>> 0;
    this.abandon(s);
    throw new OcigenError("EDECOMPRESS", `Cannot decompress ${this.name}: ${msg} near compressed byte ${at}`);
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
 * Only for runtimes that can start workers: use {@linkcode startFileGunzip},
 * which returns `null` otherwise.
 *
 * @example
 * ```ts
 * const job = startFileGunzip("/l/blobs/sha256/ab..", { name: "layer sha256:ab..", size: 1234 });
 * if (job) {
 *   job.pump(tarParser); // pushes all output, then tarParser.end()
 *   job.inputDigest(); // "sha256:…" of the file
 *   job.outputDigest(); // "sha256:…" of the decompressed bytes
 * }
 * ```
 */
/**
 * Time the caller's thread spent waiting for {@linkcode FileGunzip} output
 * (the worker was the bottleneck then), summed over all jobs; for profiling.
 *
 * @example
 * ```ts
 * fileGunzipStats.waitMs = 0; // ... unpack ...
 * console.log(`waited ${fileGunzipStats.waitMs.toFixed(0)} ms for inflate`);
 * ```
 */
export const fileGunzipStats = { waitMs: 0 };

export class FileGunzip {
  private slot: Slot | null;
  private readonly name: string;
  private inDigest: string | undefined;
  private outDigest: string | undefined;

  constructor(file: string, opts: { name?: string; size?: number } = {}) {
    this.name = opts.name ?? file;
    const path = new TextEncoder().encode(file);
    if (path.length > PATH_CAP) throw new OcigenError("EDECOMPRESS", `Cannot decompress ${this.name}: file name too long`);
    const s = idle.pop() ?? startSlot();
    const c = s.ctl;
    for (const i of [IN_W, IN_R, OUT_W, OUT_R, INPUT_ENDED, STATUS, ERR_CODE, ABORT, ERR_ERRNO]) Atomics.store(c, i, 0);
    new Uint8Array(s.sab, PATH_AT, PATH_CAP).set(path);
    new Float64Array(s.sab, F64_AT, 2).set([opts.size ?? -1, 0]);
    Atomics.store(c, PATH_LEN, path.length);
    Atomics.store(c, HASH, 3);
    Atomics.store(c, SOURCE, 1);
    Atomics.add(c, JOB, 1);
    Atomics.notify(c, JOB);
    this.slot = s;
  }

  /**
   * Pushes the whole decompressed stream into `sink`, then calls `sink.end()`;
   * throws on any failure (the job is then gone). `onInput` hears how many
   * more compressed bytes were read (progress).
   */
  pump(sink: ByteSink, onInput?: (bytes: number) => void): void {
    const s = this.slot;
    if (!s) throw new OcigenError("EDECOMPRESS", `Cannot decompress ${this.name}: the job was already used or destroyed`);
    const c = s.ctl;
    const read = new Float64Array(s.sab, F64_AT, 2);
    let reported = 0;
    for (;;) {
      const seq = Atomics.load(c, MAIN_SEQ);
      this.drain(s, sink);
      const now = read[1]; // read once: the worker moves it concurrently
      if (onInput && now > reported) {
        onInput(now - reported);
        reported = now;
      }
      const st = Atomics.load(c, STATUS);
      if (st === 2) this.fail(s);
      if (st === 1 && Atomics.load(c, OUT_W) === Atomics.load(c, OUT_R)) break;
      const t0 = performance.now();
      Atomics.wait(c, MAIN_SEQ, seq, 1000);
      fileGunzipStats.waitMs += performance.now() - t0;
    }
    const last = read[1];
    if (onInput && last > reported) onInput(last - reported); // what was read after the last report
    const td = new TextDecoder();
    this.outDigest = "sha256:" + td.decode(new Uint8Array(s.sab, DIGEST_AT, 64).slice());
    this.inDigest = "sha256:" + td.decode(new Uint8Array(s.sab, IN_DIGEST_AT, 64).slice());
    this.slot = null;
    if (idle.length < 2) idle.push(s);
    else void s.worker.terminate();
    sink.end();
  }

  /** `sha256:<hex>` of the compressed file, after a successful `pump()`. */
  inputDigest(): string | undefined {
    return this.inDigest;
  }

  /** `sha256:<hex>` of the decompressed bytes, after a successful `pump()`. */
  outputDigest(): string | undefined {
    return this.outDigest;
  }

  /** Stops the job (if still running) and drops its worker. */
  destroy(): void {
    const s = this.slot;
    if (!s) return;
    this.slot = null;
    Atomics.store(s.ctl, ABORT, 1);
    Atomics.add(s.ctl, WORK_SEQ, 1);
    Atomics.notify(s.ctl, WORK_SEQ);
    void s.worker.terminate();
  }

  private drain(s: Slot, sink: ByteSink): void {
    const c = s.ctl;
    for (;;) {
      const w = Atomics.load(c, OUT_W);
      const r = Atomics.load(c, OUT_R);
      const avail = (w - r) | 0;
      if (avail <= 0) return;
      const at = (r >>> 0) % OUT_CAP;
      const k = Math.min(avail, OUT_CAP - at, DRAIN_CHUNK);
      // Zero-copy: the sink gets a view of the shared ring (valid during the call,
      // as the ByteSink contract says); the worker cannot reuse those bytes until
      // OUT_R moves past them, after the call. (Node's and Deno's fs and
      // TextDecoder accept views of shared memory.)
      try {
        sink.write(s.outRing.subarray(at, at + k));
      } catch (e) {
        this.destroy();
        throw e;
      }
      Atomics.store(c, OUT_R, (r + k) | 0);
      Atomics.add(c, WORK_SEQ, 1);
      Atomics.notify(c, WORK_SEQ);
    }
  }

  private fail(s: Slot): never {
    const c = s.ctl;
    const code = Atomics.load(c, ERR_CODE);
    const at = Atomics.load(c, ERR_AT) >>> 0;
    const errno = Atomics.load(c, ERR_ERRNO);
    const read = new Float64Array(s.sab, F64_AT, 2)[1];
    const msg = describeInflateError(code, Atomics.load(c, ERR_A) >>> 0, Atomics.load(c, ERR_B) >>> 0);
    this.destroy();
    const ioName = errno >= 0 ? ERRNO_LIST[errno] : "I/O error";
    switch (code) {
      case ERR_OPEN:
        throw new BlobReadError("EIO", `Cannot read ${this.name}: open failed (${ioName})`);
      case ERR_READ:
        throw new BlobReadError("EIO", `Cannot read ${this.name}: read failed after ${read} bytes (${ioName})`);
      case ERR_TOO_LONG:
        throw new BlobReadError("ESIZE", `Cannot read ${this.name}: longer than its expected size`);
      case ERR_TOO_SHORT:
        throw new BlobReadError("ESIZE", `Cannot read ${this.name}: ${read} bytes, shorter than its expected size`);
    }
    throw new OcigenError("EDECOMPRESS", `Cannot decompress ${this.name}: ${msg} near compressed byte ${at}`);
  }
}

/**
 * Starts a {@linkcode FileGunzip} job when this runtime can run the kernel in
 * a worker thread (WebAssembly available, workers start, a second core, not
 * forced off by `OCIGEN_INFLATE=wasm|js`) and `size` is at least `minSize`
 * (`OCIGEN_INFLATE=worker` ignores both); `null` otherwise (decode in this
 * thread then).
 *
 * @example
 * ```ts
 * const job = startFileGunzip(layout.blobPath(desc), { name: "layer sha256:ab..", size: desc.size });
 * ```
 */
export function startFileGunzip(file: string, opts: { name?: string; size?: number; minSize?: number } = {}): FileGunzip | null {
  const mode = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.OCIGEN_INFLATE;
  if (mode === "js" || mode === "wasm" || workersBroken) return null;
  if (mode !== "worker" && ((opts.size ?? Infinity) < (opts.minSize ?? 0) || !spareCore())) return null;
  if (!wasmUsable()) return null;
  try {
    return new FileGunzip(file, opts);
  } catch (e) {
    if (e instanceof OcigenError) throw e;
    workersBroken = true;
    return null;
  }
}

/**
 * Compressed size from which {@linkcode createGunzip} inflates in a worker thread.
 *
 * @example
 * ```ts
 * const worker = desc.size >= WORKER_MIN_BYTES;
 * ```
 */
export const WORKER_MIN_BYTES = 16 << 20;

/**
 * The gzip decoder stage ocigen uses: the WASM kernel in a worker thread for
 * large streams (`sizeHint` >= {@linkcode WORKER_MIN_BYTES}) when the machine
 * has a spare core, otherwise in this thread. On the 444 MB bench image this
 * took `ocigen unpack` from 4.8 s to 4.2 s (2 CPUs); for small layers the
 * worker's start-up and hand-over cost more than they save.
 * `OCIGEN_INFLATE=wasm|worker|js` forces a choice (`js`: the previous
 * fflate-based decoder).
 *
 * @example
 * ```ts
 * const d = createGunzip(tarParser, "layer sha256:ab..", desc.size);
 * ```
 */
export function createGunzip(sink: ByteSink, name?: string, sizeHint?: number): ByteSink {
  const mode = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.OCIGEN_INFLATE;
  if (mode === "js" || !wasmUsable()) return new GzipDecoder(sink, name);
  if (mode === "worker" || (mode !== "wasm" && sizeHint !== undefined && sizeHint >= WORKER_MIN_BYTES && spareCore())) {
    const w = tryWorker(sink, name, false);
    if (w) return w;
  }
  return new WasmGunzip(sink, { name });
}

let workersBroken = false;
/** A WorkerGunzip, or null when this runtime cannot start workers (then the caller decodes in-thread). */
function tryWorker(sink: ByteSink, name: string | undefined, hashOutput: boolean): WorkerGunzip | null {
  if (workersBroken) return null;
  try {
    return new WorkerGunzip(sink, { name, hashOutput });
  } catch {
    workersBroken = true;
    return null;
  }
}

let usable: boolean | undefined;
/** False when this runtime cannot run the kernel (no WebAssembly, e.g. `--jitless`): the JS decoder is used instead. */
function wasmUsable(): boolean {
  if (usable === undefined) {
    try {
      wasmGunzipSync(Uint8Array.of(0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0));
      usable = true;
    } catch {
      usable = false;
    }
  }
  return usable;
}

/**
 * A gzip decoder stage that also digests what it outputs.
 *
 * @example
 * ```ts
 * const d: HashingDecoder = createHashingGunzip(sink);
 * ```
 */
export interface HashingDecoder extends ByteSink {
  /** `sha256:<hex>` of the decompressed bytes; available after `end()`. */
  outputDigest(): string | undefined;
  /** Releases resources when the stream is abandoned before `end()` (no-op otherwise). */
  destroy(): void;
}

/**
 * Like {@linkcode createGunzip}, but the decoder also computes the sha256 of
 * its output (the layer's diff_id) — in the worker thread when it runs there,
 * so verification costs the caller's thread nothing.
 *
 * @example
 * ```ts
 * const d = createHashingGunzip(tarParser, "layer sha256:ab..", desc.size);
 * // ... write, end ...
 * if (d.outputDigest() !== diffId) throw new Error("diff_id mismatch");
 * ```
 */
export function createHashingGunzip(sink: ByteSink, name?: string, sizeHint?: number): HashingDecoder {
  const mode = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.OCIGEN_INFLATE;
  const js = mode === "js" || !wasmUsable();
  const worker = !js && (mode === "worker" || (mode !== "wasm" && sizeHint !== undefined && sizeHint >= WORKER_MIN_BYTES && spareCore()));
  const w = worker ? tryWorker(sink, name, true) : null;
  if (w) return w;
  const h = createHash("sha256");
  const tee: ByteSink = { write: (c) => { h.update(c); sink.write(c); }, end: () => sink.end() };
  const inner = js ? new GzipDecoder(tee, name) : new WasmGunzip(tee, { name });
  let digest: string | undefined;
  return {
    write: (c) => inner.write(c),
    end() {
      inner.end();
      digest = "sha256:" + h.digest("hex");
    },
    outputDigest: () => digest,
    destroy() {},
  };
}

function spareCore(): boolean {
  try {
    return (typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length) >= 2;
  } catch {
    return false;
  }
}

/**
 * Terminates the idle pooled workers (tests, or before exit in embedders).
 *
 * @example
 * ```ts
 * await closeIdleWorkers();
 * ```
 */
export async function closeIdleWorkers(): Promise<void> {
  const all = idle.splice(0);
  await Promise.all(all.map((s) => s.worker.terminate()));
}
