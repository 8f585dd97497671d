/**
 * The deflate worker program of parallel gzip (`pgzip.ts` starts it through
 * `spawn.ts`): it deflates the blocks it is sent, one message each
 * ({@linkcode DeflateRequest}), and answers with the compressed bytes, the
 * block's CRC-32 and length, handing the input buffer back for reuse
 * ({@linkcode DeflateReply}; both buffers are transferred, not copied).
 * A block may carry file ranges ({@linkcode Hole}s, `../file-span.ts`) that
 * the worker reads into the buffer first; the buffer it hands back then holds
 * the input as read, which the calling thread hashes.
 *
 * @module
 */
import { parentPort } from "node:worker_threads";
import { deflateBlock } from "../deflate-block.ts";
import { fillHoles, type Hole } from "../file-span.ts";
import { OcigenError } from "../../errors.ts";

/**
 * A block to deflate: `buf` holds `dict` dictionary bytes then the input, up to `end`.
 *
 * @example
 * ```ts
 * const m: DeflateRequest = { seq: 0, buf, end: n, dict: 0, final: true, level: 3 };
 * ```
 */
export interface DeflateRequest {
  seq: number;
  buf: ArrayBuffer;
  end: number;
  dict: number;
  final: boolean;
  /** 0-9; -1: only read the holes and hand the buffer back (an uncompressed stream). */
  level: number;
  /** File ranges of `buf` to read before deflating. */
  holes?: Hole[];
  /** Output buffers are recycled: write into `out` when it fits, else into a fresh buffer of at least `capacity` bytes. */
  recycle?: { out?: ArrayBuffer; capacity: number };
}

/**
 * A deflated block (or the error that stopped it).
 *
 * @example
 * ```ts
 * if (m.error !== undefined) throw new Error(m.error);
 * ```
 */
export interface DeflateReply {
  seq: number;
  out?: Uint8Array;
  crc?: number;
  len?: number;
  buf?: ArrayBuffer;
  error?: string;
  /** The `OcigenError` code of `error`, when it was one (e.g. a file that shrank). */
  code?: string;
}

const port = parentPort;
port?.on("message", (m: DeflateRequest) => {
  let reply: DeflateReply;
  const transfer: ArrayBuffer[] = [];
  try {
    const input = new Uint8Array(m.buf, 0, m.end);
    if (m.holes) fillHoles(input, m.holes);
    if (m.level < 0) {
      // read only (an uncompressed layer): the filled buffer is the output
      port.postMessage({ seq: m.seq, out: new Uint8Array(0), crc: 0, len: m.end - m.dict, buf: m.buf } satisfies DeflateReply, [m.buf]);
      return;
    }
    const r = deflateBlock(input, m.dict, m.final, m.level, m.recycle && { buffer: m.recycle.out, capacity: m.recycle.capacity });
    reply = { seq: m.seq, out: r.out, crc: r.crc, len: r.len, buf: m.buf };
    transfer.push(r.out.buffer as ArrayBuffer, m.buf);
  } catch (e) {
    reply = { seq: m.seq, error: String((e as Error)?.message ?? e), ...(e instanceof OcigenError ? { code: e.code } : {}) };
  }
  port.postMessage(reply, transfer);
});
