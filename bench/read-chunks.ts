/**
 * Reads a file through one reused buffer, as ocigen's blob reader does, so the
 * benchmarks feed decoders and hashers the way the product does.
 *
 * @module
 */
import fs from "node:fs";

/**
 * Calls `fn` with each successive piece of `file`, read into one reused
 * `chunk`-byte buffer (a piece is valid only during the call).
 *
 * @example
 * ```ts
 * readChunks("layer.gz", 1 << 20, (c) => decoder.write(c));
 * ```
 */
export function readChunks(file: string, chunk: number, fn: (c: Uint8Array) => void): void {
  const fd = fs.openSync(file, "r");
  const buf = new Uint8Array(chunk);
  try {
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n <= 0) break;
      fn(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
}
