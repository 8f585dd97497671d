/**
 * Starting inflate workers (through `spawn.ts`) and keeping idle ones for the
 * next job.
 *
 * Every worker is handed the inflate and tar kernels compiled once in this thread
 * (`WebAssembly.Module` is passed, not recompiled) and its own shared buffer.
 * A worker whose job failed or was abandoned is terminated; cleanly finished
 * ones are kept (at most two).
 *
 * @module
 */
import type { Worker } from "node:worker_threads";
import { wasmBase64 } from "../../wasm/generated/inflate.ts";
import { wasmBase64 as tarBase64 } from "../../wasm/generated/tar.ts";
import { kernelModule } from "../../wasm/instance.ts";
import { Channel } from "./channel.ts";
import { Ctl, JOB_WORDS, Layout, type WorkerData } from "./protocol.ts";
import { spawnWorker } from "./spawn.ts";

/**
 * A started worker and its shared buffer.
 *
 * @example
 * ```ts
 * const slot = acquireSlot();
 * slot.ch.set(Ctl.SOURCE, Source.RING);
 * startJob(slot);
 * ```
 */
export interface Slot {
  worker: Worker;
  ch: Channel;
}

/** Idle workers kept for the next job. */
const MAX_IDLE = 2;
const idle: Slot[] = [];

/**
 * An idle worker, or a newly started one, with its per-job control words
 * reset (throws when this runtime cannot start workers).
 *
 * @example
 * ```ts
 * const slot = acquireSlot();
 * ```
 */
export function acquireSlot(): Slot {
  let s = idle.pop();
  if (!s) {
    const sab = new SharedArrayBuffer(Layout.TOTAL);
    const data: WorkerData = { sab, module: kernelModule("inflate", wasmBase64), tarModule: kernelModule("tar", tarBase64) };
    const worker = spawnWorker("inflate", data);
    worker.unref();
    s = { worker, ch: new Channel(sab) };
  }
  for (const w of JOB_WORDS) s.ch.set(w, 0);
  return s;
}

/**
 * Starts the job set up in the slot's control words.
 *
 * @example
 * ```ts
 * startJob(acquireSlot());
 * ```
 */
export function startJob(s: Slot): void {
  Atomics.add(s.ch.ctl, Ctl.JOB, 1);
  Atomics.notify(s.ch.ctl, Ctl.JOB);
}

/**
 * Returns a worker whose job finished cleanly to the pool (or terminates it
 * when the pool is full).
 *
 * @example
 * ```ts
 * releaseSlot(slot);
 * ```
 */
export function releaseSlot(s: Slot): void {
  if (idle.length < MAX_IDLE) idle.push(s);
  else void s.worker.terminate();
}

/**
 * Gives up the slot's job and terminates its worker (a failed or abandoned job).
 *
 * @example
 * ```ts
 * killSlot(slot);
 * ```
 */
export function killSlot(s: Slot): void {
  s.ch.set(Ctl.ABORT, 1);
  s.ch.wakeWorker();
  void s.worker.terminate();
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
