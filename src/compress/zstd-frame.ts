/**
 * zstd frame headers (RFC 8878 section 3.1.1.1) and the window limit.
 *
 * A zstd frame declares the window its decoder must keep (up to 2^41 bytes
 * in theory; `zstd --long=31` declares 2 GiB). Decoders refuse frames whose
 * window exceeds a limit so that a layer cannot make them take gigabytes:
 * the default is 128 MiB (what the `zstd` tool accepts without `--memory`),
 * raisable up to 2 GiB. {@linkcode zstdWindowOf} reads the window a frame
 * declares (skipping skippable frames), so the same limit can be checked before
 * handing a stream to a decoder that does not report it (the runtime's native
 * zstd).
 *
 * @module
 */

/** Default window limit: 128 MiB. */
export const ZSTD_WINDOW_DEFAULT = 128 * 1024 * 1024;
/** Highest configurable window limit: 2 GiB. */
export const ZSTD_WINDOW_LIMIT_MAX = 2048 * 1024 * 1024;

const MiB = 1024 * 1024;
const fmtMiB = (n: number) => {
  const v = n / MiB;
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
};

/**
 * The one-line reason for a frame whose window is over the limit.
 *
 * @example
 * ```ts
 * describeWindowTooLarge(2 ** 31, 2 ** 27);
 * // "zstd window too large (2048 MiB > limit 128 MiB): raise the limit with --zstd-window-max (at most 2048) if the layer is trusted"
 * ```
 */
export function describeWindowTooLarge(window: number, limit: number): string {
  const hint = limit < ZSTD_WINDOW_LIMIT_MAX
    ? `raise the limit with --zstd-window-max (at most ${ZSTD_WINDOW_LIMIT_MAX / MiB}) if the layer is trusted`
    : `${ZSTD_WINDOW_LIMIT_MAX / MiB} MiB is the highest limit supported`;
  return `zstd window too large (${fmtMiB(window)} MiB > limit ${fmtMiB(limit)} MiB): ${hint}`;
}

/**
 * Parses a window limit given in MiB (a command-line value) into bytes:
 * an integer from 1 to 2048. Returns `undefined` when invalid.
 *
 * @example
 * ```ts
 * parseWindowMaxMiB("512"); // 536870912
 * parseWindowMaxMiB("4096"); // undefined
 * ```
 */
export function parseWindowMaxMiB(v: string): number | undefined {
  if (!/^[0-9]+$/.test(v)) return undefined;
  const n = Number(v);
  if (n < 1 || n > ZSTD_WINDOW_LIMIT_MAX / MiB) return undefined;
  return n * MiB;
}

/**
 * What a frame header says: the window and content size (if declared).
 *
 * @example
 * ```ts
 * const h: ZstdFrameInfo = { window: 1 << 20, contentSize: undefined, dictionaryId: 0, headerSize: 6 };
 * ```
 */
export interface ZstdFrameInfo {
  /** Window size in bytes (the content size for single-segment frames). */
  window: number;
  /** Declared decompressed size, if present. */
  contentSize: number | undefined;
  /** Dictionary id (0: none). */
  dictionaryId: number;
  /** Header length in bytes, magic included. */
  headerSize: number;
}

/**
 * Parses the zstd frame header at `off` of `b`. Returns `null` when more bytes
 * are needed, `"skippable"` with the frame's total size for a skippable frame,
 * or throws `RangeError` for bytes that are not a frame header.
 *
 * @example
 * ```ts
 * const h = parseZstdFrameHeader(bytes, 0);
 * if (h && h !== "skippable" && "window" in h) console.log(h.window);
 * ```
 */
export function parseZstdFrameHeader(b: Uint8Array, off: number): ZstdFrameInfo | { skippable: number } | null {
  if (b.length - off < 4) return null;
  const magic = (b[off] | (b[off + 1] << 8) | (b[off + 2] << 16) | (b[off + 3] << 24)) >>> 0;
  if ((magic & 0xfffffff0) >>> 0 === 0x184d2a50) {
    if (b.length - off < 8) return null;
    const size = (b[off + 4] | (b[off + 5] << 8) | (b[off + 6] << 16) | (b[off + 7] << 24)) >>> 0;
    return { skippable: 8 + size };
  }
  if (magic !== 0xfd2fb528) throw new RangeError(`bad magic number 0x${magic.toString(16).padStart(8, "0")}`);
  if (b.length - off < 5) return null;
  const fhd = b[off + 4];
  const fcsFlag = fhd >> 6;
  const single = (fhd >> 5) & 1;
  const dictFlag = fhd & 3;
  const dictBytes = dictFlag === 3 ? 4 : dictFlag;
  const fcsBytes = fcsFlag === 0 ? single : 1 << fcsFlag;
  const headerSize = 5 + (single ? 0 : 1) + dictBytes + fcsBytes;
  if (b.length - off < headerSize) return null;
  let p = off + 5;
  let window = 0;
  if (!single) {
    const wd = b[p++];
    const base = 2 ** (10 + (wd >> 3));
    window = base + (base / 8) * (wd & 7);
  }
  let dictionaryId = 0;
  for (let i = 0; i < dictBytes; i++) dictionaryId += b[p + i] * 2 ** (8 * i);
  p += dictBytes;
  let contentSize: number | undefined;
  if (fcsBytes) {
    contentSize = 0;
    for (let i = 0; i < fcsBytes; i++) contentSize += b[p + i] * 2 ** (8 * i);
    if (fcsBytes === 2) contentSize += 256;
  }
  if (single) window = contentSize ?? 0;
  return { window, contentSize, dictionaryId, headerSize };
}

/**
 * Walks the frame structure of a zstd stream as it passes (headers and block
 * headers only, block contents are skipped), calling `onFrame` for every
 * frame header so a window limit can be enforced before a decoder that does
 * not report it sees the frame. `atBoundary` tells whether the bytes so far end
 * between frames (else the stream was truncated).
 *
 * @example
 * ```ts
 * const s = new ZstdFrameScanner((h) => { if (h.window > limit) throw new Error("too large"); });
 * s.push(chunk);
 * if (!s.atBoundary) throw new Error("truncated");
 * ```
 */
export class ZstdFrameScanner {
  private head = new Uint8Array(32);
  private headLen = 0;
  private need = 4; // header bytes wanted in `head` before acting
  private skip = 0; // content bytes to pass over
  private mode: "magic" | "skiphdr" | "frame" | "block" = "magic";
  private checksum = false;
  /** Frames seen (zstd and skippable). */
  frames = 0;

  constructor(private readonly onFrame: (h: ZstdFrameInfo) => void) {}

  /** True when the bytes so far end exactly between two frames. */
  get atBoundary(): boolean {
    return this.mode === "magic" && this.headLen === 0 && this.skip === 0;
  }

  /**
   * Feeds the next bytes of the stream; returns the offsets in `b` where a
   * frame ended. Throws RangeError for a bad magic number.
   */
  push(b: Uint8Array): number[] {
    const ends: number[] = [];
    let i = 0;
    while (i < b.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, b.length - i);
        this.skip -= n;
        i += n;
        if (this.skip === 0 && this.mode === "magic") ends.push(i);
        continue;
      }
      const n = Math.min(this.need - this.headLen, b.length - i);
      this.head.set(b.subarray(i, i + n), this.headLen);
      this.headLen += n;
      i += n;
      if (this.headLen < this.need) return ends;
      this.step();
      if (this.skip === 0 && this.mode === "magic" && this.headLen === 0) ends.push(i);
    }
    return ends;
  }

  private step(): void {
    const h = this.head;
    if (this.mode === "magic") {
      const magic = (h[0] | (h[1] << 8) | (h[2] << 16) | (h[3] << 24)) >>> 0;
      if ((magic & 0xfffffff0) >>> 0 === 0x184d2a50) {
        this.mode = "skiphdr";
        this.need = 8;
      } else if (magic === 0xfd2fb528) {
        this.mode = "frame";
        this.need = 5;
      } else {
        throw new RangeError(`bad magic number 0x${magic.toString(16).padStart(8, "0")}`);
      }
      return;
    }
    if (this.mode === "skiphdr") {
      this.skip = (h[4] | (h[5] << 8) | (h[6] << 16) | (h[7] << 24)) >>> 0;
      this.frames++;
      this.reset();
      return;
    }
    if (this.mode === "frame") {
      const size = headerSizeOf(h[4]);
      if (this.headLen < size) {
        this.need = size;
        return;
      }
      const r = parseZstdFrameHeader(h.subarray(0, size), 0) as ZstdFrameInfo;
      this.onFrame(r);
      this.checksum = ((h[4] >> 2) & 1) === 1;
      this.mode = "block";
      this.headLen = 0;
      this.need = 3;
      return;
    }
    // block header
    const v = h[0] | (h[1] << 8) | (h[2] << 16);
    const type = (v >> 1) & 3;
    const size = v >>> 3;
    this.headLen = 0;
    this.skip = type === 1 ? 1 : size;
    if ((v & 1) === 1) {
      this.skip += this.checksum ? 4 : 0;
      this.frames++;
      this.reset();
    }
  }

  private reset(): void {
    this.mode = "magic";
    this.headLen = 0;
    this.need = 4;
  }
}

function isSkippable(h: Uint8Array): boolean {
  return h[1] === 0x2a && h[2] === 0x4d && h[3] === 0x18 && (h[0] & 0xf0) === 0x50;
}

function headerSizeOf(fhd: number): number {
  const fcsFlag = fhd >> 6;
  const single = (fhd >> 5) & 1;
  const dictFlag = fhd & 3;
  return 5 + (single ? 0 : 1) + (dictFlag === 3 ? 4 : dictFlag) + (fcsFlag === 0 ? single : 1 << fcsFlag);
}
