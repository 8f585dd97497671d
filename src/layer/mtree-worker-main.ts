/**
 * The mtree worker program: writes umoci's `sha256_<hex>.mtree` of a freshly
 * unpacked tree in a worker thread (see `./mtree-worker.ts`), while the
 * calling thread walks the same tree for ocigen's own manifest. Started with
 * an {@linkcode MtreeJob} as `workerData`; posts one {@linkcode MtreeJobResult}
 * and ends.
 *
 * @module
 */
import { parentPort, workerData } from "node:worker_threads";
import { writeUmociMtree } from "../bundle/mtree.ts";
import type { MtreeJob, MtreeJobResult } from "./mtree-worker.ts";
import { WrittenDigests } from "./written.ts";

const job = workerData as MtreeJob;
let result: MtreeJobResult;
try {
  const written = job.written ? WrittenDigests.fromSnapshot(job.written) : null;
  const file = writeUmociMtree(job.bundleDir, job.rootfs, job.manifestDigest, job.treeName, job.xattrs, written ? (st) => written.lookup(st) : undefined);
  result = { ok: true, file };
} catch (e) {
  const err = e as { code?: unknown; message?: unknown };
  result = { ok: false, code: typeof err?.code === "string" ? err.code : "EIO", message: String(err?.message ?? e) };
}
parentPort!.postMessage(result);
