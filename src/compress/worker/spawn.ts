/**
 * Starting ocigen's worker programs (the TypeScript modules
 * `inflate-worker-main.ts` and `deflate-worker-main.ts`) however ocigen runs:
 *  - from a bundle (dist/ocigen.mjs, dist/mod.mjs, the single binary):
 *    `.ci/worker-bundles.mjs` bundles each program into one CommonJS script
 *    and the build defines `__OCIGEN_INFLATE_WORKER__` /
 *    `__OCIGEN_DEFLATE_WORKER__` as its text, which is started with
 *    `eval: true` (a single binary has no file to load a worker from);
 *  - from source on Deno: the module itself, by URL (Deno runs TypeScript);
 *  - from source on Node (under tsx): a two-line CommonJS bootstrap that
 *    registers tsx's `require` hook in the worker and requires the module (on
 *    Node 20 the `--import` loader of the parent does not reach a worker's
 *    entry module).
 *
 * @module
 */
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";

declare const __OCIGEN_INFLATE_WORKER__: string | undefined;
declare const __OCIGEN_DEFLATE_WORKER__: string | undefined;
declare const __OCIGEN_MTREE_WORKER__: string | undefined;

/**
 * The worker programs.
 *
 * @example
 * ```ts
 * const p: WorkerProgram = "inflate";
 * ```
 */
export type WorkerProgram = "inflate" | "deflate" | "mtree";

/** Each program's module, from this file (the bundles carry them as text: `bundled`). */
const SOURCES: Record<WorkerProgram, string> = {
  inflate: "./inflate-worker-main.ts",
  deflate: "./deflate-worker-main.ts",
  mtree: "../../layer/mtree-worker-main.ts",
};

/** The bundled text of a program, when this code runs from a bundle. */
function bundled(program: WorkerProgram): string | undefined {
  if (program === "inflate") return typeof __OCIGEN_INFLATE_WORKER__ === "string" ? __OCIGEN_INFLATE_WORKER__ : undefined;
  if (program === "mtree") return typeof __OCIGEN_MTREE_WORKER__ === "string" ? __OCIGEN_MTREE_WORKER__ : undefined;
  return typeof __OCIGEN_DEFLATE_WORKER__ === "string" ? __OCIGEN_DEFLATE_WORKER__ : undefined;
}

/**
 * Whether a file descriptor opened in one thread can be used in a worker
 * thread: on Node it is the process's own descriptor; on Deno a `node:fs`
 * descriptor is a resource of the isolate that opened it (another thread
 * gets EBADF), so descriptors are never handed to workers there.
 *
 * @example
 * ```ts
 * if (workersShareDescriptors()) postToWorker(fd);
 * ```
 */
export function workersShareDescriptors(): boolean {
  return !("Deno" in globalThis);
}

/**
 * Starts a worker thread running `program` with `workerData` (throws when
 * this runtime cannot start workers).
 *
 * @example
 * ```ts
 * const w = spawnWorker("deflate", {});
 * w.unref();
 * ```
 */
export function spawnWorker(program: WorkerProgram, workerData: unknown, limits?: { maxYoungGenerationSizeMb?: number }): Worker {
  // The inflate worker closes descriptors the caller opened (finish requests,
  // src/compress/worker/finish.ts); Node's default fd tracking would make a
  // warning object (with a stack) for each such close (0.6 s on a 92k-file
  // layer). Untracked, a worker terminated mid-job leaves its blob's
  // descriptor open (the process is about to fail anyway).
  const opts = { workerData, trackUnmanagedFds: false, ...(limits ? { resourceLimits: limits } : {}) };
  const text = bundled(program);
  if (text !== undefined) return new Worker(text, { eval: true, ...opts });
  const main = new URL(SOURCES[program], import.meta.url);
  if ("Deno" in globalThis) return new Worker(main, opts);
  const tsx = createRequire(import.meta.url).resolve("tsx/cjs");
  const boot = `require(${JSON.stringify(tsx)});\nrequire(${JSON.stringify(fileURLToPath(main))});\n`;
  return new Worker(boot, { eval: true, ...opts });
}
