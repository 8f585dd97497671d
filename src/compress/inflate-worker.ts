/**
 * Where gzip is inflated: the choice between the WASM kernel in a worker
 * thread (`worker/`: the caller's thread only copies bytes in and out of
 * shared rings, so inflate + CRC32 + hashing run on another core while it
 * parses tar and writes files), the WASM kernel in the calling thread
 * (`WasmGunzip`) and the JavaScript decoder (`GzipDecoder`, for runtimes
 * without WebAssembly).
 *
 * The choice is an {@linkcode InflateMode} passed in by the caller (the
 * command line takes it from its settings): `auto` uses a worker only for
 * streams large enough that the worker's start and hand-over pay off, on a
 * machine with a second core; `worker`, `wasm` and `js` force one decoder.
 *
 * @module
 */
import os from "node:os";
import { createHash } from "node:crypto";
import { OcigenError } from "../errors.ts";
import type { ByteSink } from "../stream/sink.ts";
import { WasmGunzip, wasmGunzipSync } from "./inflate-wasm.ts";
import { GzipDecoder } from "./gzip.ts";
import { FileGunzip, WorkerGunzip } from "./worker/jobs.ts";

export { BlobReadError, FileGunzip, WorkerGunzip } from "./worker/jobs.ts";
export { closeIdleWorkers } from "./worker/pool.ts";

/**
 * Which gzip decoder to use: `auto` (the WASM kernel, in a worker thread for
 * large streams on a machine with a spare core), `worker` (always a worker),
 * `wasm` (the kernel in the calling thread), `js` (the JavaScript decoder).
 *
 * @example
 * ```ts
 * const mode: InflateMode = "wasm";
 * createGunzip(sink, "layer sha256:ab..", desc.size, mode);
 * ```
 */
export type InflateMode = "auto" | "worker" | "wasm" | "js";

/** Set when starting a worker failed once: this runtime decodes in-thread from then on. */
let workersBroken = false;

/**
 * Compressed size from which a whole file (a layer blob) is inflated in a
 * worker thread by {@linkcode startFileGunzip} in mode `auto`. A worker costs
 * about 30 ms to start on an idle 2-core machine (several times that on a busy
 * one), and inflating in this thread about 11 ms per compressed MB: below a
 * few MB the worker's start costs more than moving inflate and hashing off
 * this thread saves, so small layers are inflated here and start no worker.
 *
 * @example
 * ```ts
 * const offload = desc.size >= FILE_WORKER_MIN_BYTES;
 * ```
 */
export const FILE_WORKER_MIN_BYTES = 4 << 20;

/**
 * Whether `mode` asks for a worker for a file of `size` compressed bytes
 * (`minSize` defaults to {@linkcode FILE_WORKER_MIN_BYTES}; a second core is
 * needed in mode `auto`). Cheap: no worker is started.
 *
 * @example
 * ```ts
 * if (!fileWorkerWanted(desc.size, opts.inflate)) return null; // inflate in this thread
 * ```
 */
export function fileWorkerWanted(size: number | undefined, mode: InflateMode = "auto", minSize = FILE_WORKER_MIN_BYTES): boolean {
  if (mode === "js" || mode === "wasm" || workersBroken) return false;
  return mode === "worker" || ((size ?? Infinity) >= minSize && spareCore());
}

/**
 * Starts a {@linkcode FileGunzip} job when {@linkcode fileWorkerWanted} says so
 * and this runtime can run the kernel in a worker thread (WebAssembly
 * available, workers start); `null` otherwise (decode in this thread then).
 *
 * @example
 * ```ts
 * const job = startFileGunzip(layout.blobPath(desc), { name: "layer sha256:ab..", size: desc.size });
 * ```
 */
export function startFileGunzip(
  file: string,
  opts: { name?: string; size?: number; minSize?: number; mode?: InflateMode; tarRecords?: boolean; entryDigests?: boolean } = {},
): FileGunzip | null {
  if (!fileWorkerWanted(opts.size, opts.mode, opts.minSize) || !wasmUsable()) return null;
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
 * worker's start-up and hand-over cost more than they save. `mode` other
 * than `auto` forces a choice (`js`: the fflate-based decoder).
 *
 * @example
 * ```ts
 * const d = createGunzip(tarParser, "layer sha256:ab..", desc.size);
 * ```
 */
export function createGunzip(sink: ByteSink, name?: string, sizeHint?: number, mode: InflateMode = "auto"): ByteSink {
  if (mode === "js" || !wasmUsable()) return new GzipDecoder(sink, name);
  if (streamWorkerWanted(sizeHint, mode)) {
    const w = tryWorker(sink, name, false);
    if (w) return w;
  }
  return new WasmGunzip(sink, { name });
}

/** A streamed gzip (no file) goes to a worker only when it is known to be large (or forced). */
function streamWorkerWanted(sizeHint: number | undefined, mode: InflateMode): boolean {
  return (sizeHint !== undefined || mode === "worker") && fileWorkerWanted(sizeHint, mode, WORKER_MIN_BYTES);
}

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
export function createHashingGunzip(sink: ByteSink, name?: string, sizeHint?: number, mode: InflateMode = "auto"): HashingDecoder {
  const js = mode === "js" || !wasmUsable();
  const w = !js && streamWorkerWanted(sizeHint, mode) ? tryWorker(sink, name, true) : null;
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

let cores: number | undefined;
function spareCore(): boolean {
  if (cores === undefined) {
    try {
      cores = typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length;
    } catch {
      cores = 1;
    }
  }
  return cores >= 2;
}
