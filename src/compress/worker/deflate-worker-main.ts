/**
 * The deflate worker program of parallel gzip (`pgzip.ts` starts it through
 * `spawn.ts`): it deflates the blocks it is sent, one message each
 * ({@linkcode DeflateRequest}), and answers with the compressed bytes, the
 * block's CRC-32 and length, handing the input buffer back for reuse
 * ({@linkcode DeflateReply}; both buffers are transferred, not copied).
 *
 * @module
 */
import { parentPort } from "node:worker_threads";
import { deflateBlock } from "../deflate-block.ts";

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
  level: number;
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
}

const port = parentPort;
port?.on("message", (m: DeflateRequest) => {
  let reply: DeflateReply;
  const transfer: ArrayBuffer[] = [];
  try {
    const r = deflateBlock(new Uint8Array(m.buf, 0, m.end), m.dict, m.final, m.level);
    reply = { seq: m.seq, out: r.out, crc: r.crc, len: r.len, buf: m.buf };
    transfer.push(r.out.buffer as ArrayBuffer, m.buf);
  } catch (e) {
    reply = { seq: m.seq, error: String((e as Error)?.message ?? e) };
  }
  port.postMessage(reply, transfer);
});
