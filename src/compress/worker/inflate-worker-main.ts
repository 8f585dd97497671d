/**
 * The inflate worker program (runs in a worker thread started by
 * `pool.ts`; the protocol is in `protocol.ts`).
 *
 * It instantiates the inflate kernel from the compiled module it is handed,
 * then serves jobs forever, one at a time:
 *  - ring jobs (`Source.RING`): compressed bytes arrive through the input
 *    ring; `INPUT_ENDED` says no more will come;
 *  - file jobs (`Source.FILE`): the worker opens the named file itself (never
 *    following a symlink, refusing anything but a regular file, in case it
 *    was swapped after the caller checked it), reads it straight into the
 *    kernel's input buffer, checks its length against the expected size and
 *    hashes it.
 * Either way the output goes into the output ring (hashed too when asked),
 * waiting while the ring is full, and the job ends with `STATUS` = `DONE` or
 * `FAILED`. A `TAR_RECORDS` job feeds the (hashed) output to the WASM tar
 * kernel instead and writes its events as records: non-content events
 * batched into one `EVENTS` record, content as `DATA` records, `END` at the
 * end of the archive (with `HashFlag.ENTRIES`, each regular file's entry
 * end carries the sha256 of its content); a tar error fails the job with its text. A caller that gives a job up sets `ABORT`; the worker notices
 * whenever it would wait, and the caller terminates it anyway.
 *
 * @module
 */
import fs from "node:fs";
import * as nodeCrypto from "node:crypto";
import { createHash, type Hash } from "node:crypto";
import { workerData } from "node:worker_threads";
import { OcigenError } from "../../errors.ts";
import { noteHashObject } from "../../digest/release.ts";
import type { TarEntryHeader } from "../../tar/header.ts";
import { FINISH_SLOT, FinishSlots } from "./finish.ts";
import { TarKernelParser } from "../../tar/kernel.ts";
import type { InflateExports } from "../inflate-wasm.ts";
import { instantiateModule, MemoryView } from "../../wasm/instance.ts";
import { KERNEL_DONE, KERNEL_NEED_INPUT, KernelInput, pumpKernel, type StreamKernel } from "../../wasm/stream-kernel.ts";
import { Channel, recordBytes } from "./channel.ts";
import { EventWriter } from "./events.ts";
import { Ctl, ERRNO_NAMES, HashFlag, Layout, OutputKind, RECORD_HEADER_BYTES, RecordKind, Source, Status, type WorkerData, WorkerError } from "./protocol.ts";

/** Thrown out of a job the caller gave up. */
class Abort {}

const data = workerData as WorkerData;
const ch = new Channel(data.sab);
/** The kernel instance, made when the first job starts (so a failure to make it fails that job, not silently the worker). */
let kernel!: StreamKernel<InflateExports>;
let ex!: InflateExports;
const input = new KernelInput();
/** sha256 of the current job's output, when asked for. */
let outHash: Hash | null = null;

/** The current job's tar parser (`TAR_RECORDS` jobs), else null. */
let tar: TarKernelParser | null = null;
/** Non-content tar events not yet written (an `EVENTS` payload: events.ts). */
const events = new EventWriter();
/** sha256 of the current regular file's content (`HashFlag.ENTRIES` jobs), else null. */
let entryHash: Hash | null = null;
/** Whether the current job hashes each regular file's content. */
let hashEntries = false;
const ZEROS = new Uint8Array(64 << 10);
/** A batch is written once it holds this many events, whatever comes next. */
const BATCH_MAX = 512;
/** ... or this many bytes. */
const BATCH_BYTES = 256 << 10;
/** Content pieces up to this size travel inside an event batch. */
const INLINE_MAX = 16 << 10;
/** A `TAR_RECORDS` caller waiting for records is woken once the ring holds this much. */
const WAKE_MAIN_BYTES = 256 << 10;
/** Largest `DATA` record payload. */
const DATA_MAX = 1 << 20;

/** Sleeps until the caller changes something (`seen`: `WORK_SEQ` before looking); throws Abort if it gave the job up. */
function waitCaller(seen: number): void {
  if (ch.get(Ctl.ABORT)) throw new Abort();
  ch.wakeMain(); // what is in the ring now is all the caller gets until this worker goes on
  ch.wait(Ctl.WORK_SEQ, seen);
  if (ch.get(Ctl.ABORT)) throw new Abort();
}

/** The finish requests of the current job (a `TAR_RECORDS` file job), else null. */
let finishing: FinishSlots | null = null;
let finishSlots: FinishSlots | null = null;

/** Runs the caller's finish requests written so far (see finish.ts). */
function finishFiles(): void {
  if (!finishing) return;
  const w = ch.get(Ctl.IN_W);
  let done = ch.get(Ctl.FIN_DONE);
  if (done === w) return;
  while (done !== w) {
    finishing.run((done >>> 0) % Layout.IN_CAP);
    done = (done + FINISH_SLOT) | 0;
    ch.set(Ctl.FIN_DONE, done);
  }
  ch.wakeMain();
}

/** After the archive's end: finish requests until the caller says no more will come. */
function finishRemaining(): void {
  if (!finishing) return;
  for (;;) {
    const seen = ch.get(Ctl.WORK_SEQ);
    const ended = ch.get(Ctl.INPUT_ENDED) === 1; // before looking: every request is written by then
    finishFiles();
    if (ended && ch.get(Ctl.FIN_DONE) === ch.get(Ctl.IN_W)) return;
    waitCaller(seen);
  }
}

/** Writes one record (`payload` may be any length up to a ring), waiting for room. */
function putRecord(kind: number, payload: Uint8Array): void {
  const ring = ch.output;
  for (;;) {
    const seen = ch.get(Ctl.WORK_SEQ);
    finishFiles();
    const at = ring.reserveRecord(kind, payload.length);
    if (at < 0) {
      waitCaller(seen);
      continue;
    }
    ring.bytes.set(payload, at + RECORD_HEADER_BYTES);
    ring.commit(recordBytes(payload.length));
    // a sleeping caller is woken once it has a batch to work on, not per record
    // (each wake-up is a context switch on both sides); `waitCaller` and the
    // end of the job wake it whatever the ring holds
    if (ring.readable() >= WAKE_MAIN_BYTES) ch.wakeMain();
    return;
  }
}

/** Writes the pending non-content events as one `EVENTS` record. */
function flushEvents(): void {
  if (events.count === 0) return;
  putRecord(RecordKind.EVENTS, events.bytes());
  events.clear();
}

/** Flushes a full batch of events. */
function batchDone(): void {
  if (events.count >= BATCH_MAX || events.bytes().length >= BATCH_BYTES) flushEvents();
}

/** Whether the current entry's content is hashed. */
let hashing = false;
/** The content's size when it may come whole in one piece (not sparse), else -1. */
let entryWhole = -1;
/** The digest of content that came whole in one piece (a one-shot hash: no Hash object per small file). */
let entryHex: string | null = null;
const oneShot = (nodeCrypto as { hash?: (alg: string, data: Uint8Array, enc: "hex") => string }).hash;

/** Adds `v` to the current entry's content digest. */
function hashContent(v: Uint8Array): void {
  if (entryHash === null && entryHex === null && v.length === entryWhole && oneShot) {
    noteHashObject(); // one per file: see digest/release.ts
    entryHex = oneShot("sha256", v, "hex");
    return;
  }
  if (entryHex !== null) {
    // more than the whole content: cannot be, but then the digest must not be claimed
    hashing = false;
    return;
  }
  (entryHash ??= newEntryHash()).update(v);
}

/** A hash object for one entry's content (counted: see digest/release.ts). */
function newEntryHash(): Hash {
  noteHashObject();
  return createHash("sha256");
}

/** The tar parser of a `TAR_RECORDS` job, writing its events as records. */
function tarParser(): TarKernelParser {
  return new TarKernelParser({
    entry: (h: TarEntryHeader) => {
      hashing = hashEntries && h.type === "file";
      entryHash = null;
      entryHex = null;
      entryWhole = hashing && !h.sparse ? h.size : -1;
      events.entry(h);
      batchDone();
    },
    data: (v: Uint8Array) => {
      if (hashing) hashContent(v);
      if (v.length <= INLINE_MAX) {
        // small content rides in the batch: one record for many small files
        events.data(v);
        batchDone();
        return;
      }
      flushEvents();
      for (let off = 0; off < v.length; off += DATA_MAX) putRecord(RecordKind.DATA, v.subarray(off, off + DATA_MAX));
    },
    hole: (n: number) => {
      if (hashing) {
        for (let left = n; left > 0; left -= ZEROS.length) hashContent(left >= ZEROS.length ? ZEROS : ZEROS.subarray(0, left));
      }
      events.hole(n);
      batchDone();
    },
    entryEnd: () => {
      events.end(hashing ? (entryHex ?? (entryHash ?? newEntryHash()).digest("hex")) : undefined);
      batchDone();
      hashing = false;
      entryHash = null;
      entryHex = null;
    },
    end: () => {
      flushEvents();
      putRecord(RecordKind.END, new Uint8Array(0));
    },
  }, { module: data.tarModule });
}

/** Hands kernel output over through the output ring, waiting for room (or to the tar parser). */
function emit(out: Uint8Array): void {
  outHash?.update(out);
  if (tar) {
    tar.write(out);
    flushEvents();
    return;
  }
  let off = 0;
  while (off < out.length) {
    const seen = ch.get(Ctl.WORK_SEQ);
    const n = ch.output.put(out.subarray(off));
    if (n === 0) {
      waitCaller(seen);
      continue;
    }
    off += n;
    ch.wakeMain();
  }
}

function fail(code: number, at: number): void {
  ch.set(Ctl.ERR_CODE, code);
  ch.set(Ctl.ERR_AT, at);
  ch.set(Ctl.ERR_A, ex ? ex.errorDetailA() | 0 : 0);
  ch.set(Ctl.ERR_B, ex ? ex.errorDetailB() | 0 : 0);
  ch.set(Ctl.STATUS, Status.FAILED);
  ch.wakeMain();
}

function failIo(code: number, e: unknown): void {
  ch.set(Ctl.ERR_ERRNO, ERRNO_NAMES.indexOf(String((e as { code?: unknown })?.code)));
  fail(code, 0);
}

function finish(): void {
  tar?.end();
  finishRemaining();
  if (outHash) ch.writeHex(Layout.DIGEST_AT, outHash.digest("hex"));
  outHash = null;
  ch.set(Ctl.STATUS, Status.DONE);
  ch.wakeMain();
}

/**
 * Runs the kernel over its buffered input (`final`: no more will come).
 * Returns true when the job is over (finished, after `onDone`, or failed),
 * false when the kernel needs more input.
 */
function drain(final: boolean, onDone?: () => void): boolean {
  const st = pumpKernel(kernel, input, final, emit);
  if (st === KERNEL_NEED_INPUT) {
    if (final) fail(WorkerError.TRUNCATED, input.offset(kernel));
    else if (input.full(kernel)) fail(WorkerError.INTERNAL, input.offset(kernel));
    else return false;
  } else if (st === KERNEL_DONE) {
    onDone?.();
    finish();
  } else {
    fail(st, input.offset(kernel));
  }
  return true;
}

/** A job whose compressed bytes come through the input ring. */
function ringJob(): void {
  const cap = ex.inCapacity();
  for (;;) {
    const seen = ch.get(Ctl.WORK_SEQ);
    const ended = ch.get(Ctl.INPUT_ENDED) === 1; // before looking at the ring: all input is in it then
    let took = 0;
    for (let v = ch.input.peek(cap - input.inLen); v; v = input.inLen < cap ? ch.input.peek(cap - input.inLen) : null) {
      took += input.fill(kernel, v, 0);
      ch.input.consume(v.length);
    }
    if (took) ch.wakeMain();
    const final = ended && ch.input.readable() === 0;
    if (!took && !final) {
      waitCaller(seen);
      continue;
    }
    if (drain(final)) return;
  }
}

/** A job that reads, hashes and size-checks the file named in shared memory. */
function fileJob(): void {
  const inHash = ch.get(Ctl.HASH) & HashFlag.INPUT ? createHash("sha256") : null;
  const want = ch.sizes[0];
  let fd: number;
  try {
    fd = fs.openSync(ch.readPath(), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | (fs.constants.O_NONBLOCK ?? 0));
  } catch (e) {
    failIo(WorkerError.OPEN, e);
    return;
  }
  try {
    let regular: boolean;
    try {
      regular = fs.fstatSync(fd).isFile();
    } catch (e) {
      failIo(WorkerError.OPEN, e);
      return;
    }
    if (!regular) {
      failIo(WorkerError.OPEN, { code: "EINVAL" });
      return;
    }
    const cap = ex.inCapacity();
    const base = ex.inPtr();
    let total = 0;
    let eof = false;
    ch.sizes[1] = 0;
    for (;;) {
      if (ch.get(Ctl.ABORT)) throw new Abort();
      while (!eof && input.inLen < cap) {
        const mem = kernel.mem.u8;
        const at = base + input.inLen;
        let n: number;
        try {
          n = fs.readSync(fd, mem, at, cap - input.inLen, null);
        } catch (e) {
          failIo(WorkerError.READ, e);
          return;
        }
        if (n === 0) {
          eof = true;
          break;
        }
        inHash?.update(mem.subarray(at, at + n));
        input.inLen += n;
        total += n;
        ch.sizes[1] = total;
        if (want >= 0 && total > want) {
          fail(WorkerError.TOO_LONG, total);
          return;
        }
      }
      if (eof && want >= 0 && total !== want) {
        fail(WorkerError.TOO_SHORT, total);
        return;
      }
      const over = drain(eof, () => {
        if (inHash) ch.writeHex(Layout.IN_DIGEST_AT, inHash.digest("hex"));
      });
      if (over) return;
    }
  } finally {
    fs.closeSync(fd);
  }
}

function job(): void {
  if (!kernel) {
    ex = instantiateModule(data.module, "inflate").exports as unknown as InflateExports;
    ex.init(0);
    kernel = { ex, mem: new MemoryView(ex.memory) };
  }
  ex.reset();
  input.clear();
  outHash = ch.get(Ctl.HASH) & HashFlag.OUTPUT ? createHash("sha256") : null;
  events.clear();
  hashEntries = (ch.get(Ctl.HASH) & HashFlag.ENTRIES) !== 0;
  entryHash = null;
  entryHex = null;
  hashing = false;
  const kind = ch.get(Ctl.OUTPUT);
  tar = kind === OutputKind.TAR_RECORDS ? tarParser() : null;
  finishing = tar && ch.get(Ctl.SOURCE) === Source.FILE ? (finishSlots ??= new FinishSlots(ch.input.bytes)) : null;
  if (kind !== OutputKind.BYTES && kind !== OutputKind.TAR_RECORDS) fail(WorkerError.UNSUPPORTED, 0);
  else if (ch.get(Ctl.SOURCE) === Source.FILE) fileJob();
  else ringJob();
}

let seenJob = 0;
for (;;) {
  while (ch.get(Ctl.JOB) === seenJob) ch.wait(Ctl.JOB, seenJob, Infinity);
  seenJob = ch.get(Ctl.JOB);
  try {
    job();
  } catch (e) {
    if (tar && e instanceof OcigenError && e.code === "ETAR") {
      // what came before the error reaches the caller first, as with an in-thread parser
      try {
        flushEvents();
        ch.writeMessage(e.message.replace(/^Cannot read /, ""));
        fail(WorkerError.TAR, 0);
      } catch (e2) {
        if (!(e2 instanceof Abort)) fail(WorkerError.INTERNAL, 0);
      }
    } else if (!(e instanceof Abort)) {
      ch.set(Ctl.ERR_CODE, WorkerError.INTERNAL);
      ch.set(Ctl.STATUS, Status.FAILED);
      ch.wakeMain();
    }
  }
  // an abandoned job: the caller may be waiting to close the descriptors of requests not taken
  if (ch.get(Ctl.STATUS) === Status.RUNNING) {
    ch.set(Ctl.STATUS, Status.ABORTED);
    ch.wakeMain();
  }
  tar = null;
  finishing = null;
}
