/**
 * Tar header blocks: the entry model shared by the reader and the writer, and
 * encoding of the 512-byte ustar/GNU header block (decoding, which must
 * survive hostile archives, is src/tar/header-decode.ts).
 *
 * On-disk format (POSIX ustar, 512 bytes): name[100] mode[8] uid[8] gid[8]
 * size[12] mtime[12] chksum[8] typeflag[1] linkname[100] magic[6] version[2]
 * uname[32] gname[32] devmajor[8] devminor[8] prefix[155] pad[12]. Numbers are
 * octal ASCII terminated by NUL or space, or GNU base-256 (first byte has the
 * high bit set: 0x80 positive, 0xff negative, big-endian two's complement).
 * GNU headers have magic `ustar  \0` and keep atime/ctime/sparse maps where
 * ustar has `prefix`.
 *
 * @module
 */

/**
 * The kind of a tar entry, after PAX/GNU extensions are resolved.
 *
 * @example
 * ```ts
 * const t: TarEntryType = "symlink";
 * ```
 */
export type TarEntryType =
  | "file" // '0', '\0', '7' (contiguous)
  | "link" // '1' hard link
  | "symlink" // '2'
  | "char" // '3'
  | "block" // '4'
  | "dir" // '5' (and 'D' GNU dump dir, and '\0' with a trailing slash)
  | "fifo" // '6'
  | "other"; // any other typeflag (see `typeflag`)

/**
 * One sparse data region: `size` bytes of data placed at `offset`.
 *
 * @example
 * ```ts
 * const r: SparseRegion = { offset: 4096, size: 512 };
 * ```
 */
export interface SparseRegion {
  offset: number;
  size: number;
}

/**
 * A decoded tar entry header (reader output, writer input).
 *
 * @example
 * ```ts
 * parser.entry = (h: TarEntryHeader) => console.log(h.name, h.type, h.size);
 * ```
 */
export interface TarEntryHeader {
  /** Path inside the archive as stored (no normalisation beyond GNU/PAX long names). */
  name: string;
  type: TarEntryType;
  /** The raw typeflag character (`"0"`, `"5"`, ...) of the entry header. */
  typeflag?: string;
  /** Bytes of (expanded, for sparse files) content that follow via `data()`. */
  size: number;
  /** Permission bits including setuid/setgid/sticky (07777). */
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  /** Seconds since the epoch; may be fractional (PAX) or negative. */
  mtime: number;
  /** Hard link target or symlink target. */
  linkname: string;
  devmajor: number;
  devminor: number;
  /** Extended attributes (`SCHILY.xattr.NAME`); values are the raw bytes. */
  xattrs: Record<string, string | Uint8Array>;
  /** Every PAX record of the entry (`x` header), as strings (latin1 for binary values). */
  pax: Record<string, string>;
  /** For sparse entries: the data map of the expanded file (`size` is the real size). */
  sparse?: SparseRegion[];
}

/**
 * The low-level fields of one 512-byte header block.
 *
 * @example
 * ```ts
 * const f: HeaderFields = { name: "a", mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0, typeflag: "0",
 *   linkname: "", uname: "", gname: "", devmajor: 0, devminor: 0 };
 * ```
 */
export interface HeaderFields {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  /** ustar prefix (joined to name with "/" by readers). */
  prefix?: string;
  /** `"ustar"` (POSIX, default), `"gnu"` (magic `ustar  \0`) or `"v7"` (no magic). */
  format?: "ustar" | "gnu" | "v7";
  /** Raw bytes to place at offset 345..500 for GNU headers (atime, ctime, sparse map...). */
  gnuExtra?: Uint8Array;
}

/**
 * Size of a tar block.
 *
 * @example
 * ```ts
 * const blocks = Math.ceil(size / BLOCK);
 * ```
 */
export const BLOCK = 512;

const enc = new TextEncoder();

/**
 * Encodes a string as UTF-8 bytes.
 *
 * @example
 * ```ts
 * utf8("é"); // Uint8Array [0xc3, 0xa9]
 * ```
 */
export function utf8(s: string): Uint8Array {
  return enc.encode(s);
}

/**
 * Returns true if `n` can be stored as octal in a field of `width` bytes (width-1 digits).
 *
 * @example
 * ```ts
 * fitsOctal(0o7777777, 8); // true
 * fitsOctal(0o10000000, 8); // false
 * ```
 */
export function fitsOctal(n: number, width: number): boolean {
  return Number.isInteger(n) && n >= 0 && n < 8 ** (width - 1);
}

/** Writes `n` into `buf[off..off+width]` as octal (width-1 digits + NUL) or base-256 when it does not fit. */
function putNumber(buf: Uint8Array, off: number, width: number, n: number): void {
  n = Math.trunc(n);
  if (fitsOctal(n, width)) {
    // digits from the right, zero-padded (no string round trip)
    for (let i = width - 2; i >= 0; i--) {
      const d = n % 8;
      buf[off + i] = 0x30 + d;
      n = (n - d) / 8;
    }
    buf[off + width - 1] = 0;
    return;
  }
  // GNU base-256: big-endian two's complement with the high bit of the first byte set.
  let v = BigInt(n);
  if (v < 0n) v = (1n << BigInt(8 * width)) + v;
  for (let i = width - 1; i >= 0; i--) {
    buf[off + i] = Number(v & 0xffn);
    v >>= 8n;
  }
  if (n >= 0) buf[off] = 0x80;
  else buf[off] |= 0x80;
}

function putString(buf: Uint8Array, off: number, width: number, s: string): void {
  // ASCII that fits (nearly every name): no encoder call
  if (s.length <= width) {
    let i = 0;
    for (; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) break;
      buf[off + i] = c;
    }
    if (i === s.length) return;
  }
  const b = utf8(s);
  buf.set(b.subarray(0, width), off);
}

/**
 * Encodes one 512-byte header block (checksum filled in). Strings longer than
 * their field are truncated: callers emit PAX/GNU records first when needed.
 * Numbers that do not fit the octal field use GNU base-256. Deterministic.
 *
 * @example
 * ```ts
 * const block = encodeHeader({ name: "a.txt", mode: 0o644, uid: 0, gid: 0, size: 3, mtime: 0,
 *   typeflag: "0", linkname: "", uname: "", gname: "", devmajor: 0, devminor: 0 });
 * block.length; // 512
 * ```
 */
export function encodeHeader(h: HeaderFields): Uint8Array {
  const b = new Uint8Array(BLOCK);
  putString(b, 0, 100, h.name);
  putNumber(b, 100, 8, h.mode & 0o7777777);
  putNumber(b, 108, 8, h.uid);
  putNumber(b, 116, 8, h.gid);
  putNumber(b, 124, 12, h.size);
  putNumber(b, 136, 12, Math.floor(h.mtime));
  b[156] = (h.typeflag || "0").charCodeAt(0);
  putString(b, 157, 100, h.linkname);
  const format = h.format ?? "ustar";
  if (format === "ustar") {
    putString(b, 257, 6, "ustar");
    b[263] = 0x30;
    b[264] = 0x30;
  } else if (format === "gnu") {
    putString(b, 257, 8, "ustar  ");
  }
  if (format !== "v7") {
    putString(b, 265, 32, h.uname);
    putString(b, 297, 32, h.gname);
    putNumber(b, 329, 8, h.devmajor);
    putNumber(b, 337, 8, h.devminor);
  }
  if (format === "ustar" && h.prefix) putString(b, 345, 155, h.prefix);
  if (format === "gnu" && h.gnuExtra) b.set(h.gnuExtra.subarray(0, 155), 345);
  setChecksum(b);
  return b;
}

/**
 * Computes and stores the checksum of a header block (6 octal digits, NUL, space).
 *
 * @example
 * ```ts
 * block[156] = 0x35; // change the typeflag
 * setChecksum(block);
 * ```
 */
export function setChecksum(b: Uint8Array): void {
  for (let i = 148; i < 156; i++) b[i] = 0x20;
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i];
  const s = sum.toString(8).padStart(6, "0");
  for (let i = 0; i < 6; i++) b[148 + i] = s.charCodeAt(i);
  b[154] = 0;
  b[155] = 0x20;
}

/**
 * Bytes of zero padding needed after `size` bytes of data to reach a block boundary.
 *
 * @example
 * ```ts
 * padLength(3); // 509
 * ```
 */
export function padLength(size: number): number {
  const r = size % BLOCK;
  return r === 0 ? 0 : BLOCK - r;
}

const ZERO_BLOCK = new Uint8Array(BLOCK);

/**
 * A zero-filled buffer of the padding for `size` bytes of data (shared, do not modify).
 *
 * @example
 * ```ts
 * padding(3).length; // 509
 * ```
 */
export function padding(size: number): Uint8Array {
  return ZERO_BLOCK.subarray(0, padLength(size));
}

/**
 * The end-of-archive marker: two zero blocks.
 *
 * @example
 * ```ts
 * sink.write(endOfArchive());
 * ```
 */
export function endOfArchive(): Uint8Array {
  return new Uint8Array(2 * BLOCK);
}
