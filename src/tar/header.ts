/**
 * Tar header blocks: the entry model shared by the reader and the writer, and
 * encoding/decoding of the 512-byte ustar/GNU header block.
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

const dec = new TextDecoder("utf-8", { fatal: false });

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

// ---------------------------------------------------------------- decoding

/**
 * Reason a header could not be decoded (the parser turns it into ETAR).
 *
 * @example
 * ```ts
 * try { decodeHeader(block); } catch (e) { if (e instanceof HeaderError) console.error(e.message); }
 * ```
 */
export class HeaderError extends Error {}

/**
 * True if all 512 bytes of the block are zero.
 *
 * @example
 * ```ts
 * isZeroBlock(new Uint8Array(512)); // true
 * ```
 */
export function isZeroBlock(b: Uint8Array, off = 0): boolean {
  for (let i = off; i < off + BLOCK; i++) if (b[i] !== 0) return false;
  return true;
}

/**
 * Verifies the checksum (unsigned, or the historical signed sum).
 *
 * @example
 * ```ts
 * checksumOk(encodeHeader(fields)); // true
 * ```
 */
export function checksumOk(b: Uint8Array, off = 0): boolean {
  const stored = parseOctalField(b, off + 148, 8, "checksum");
  let u = 0;
  let s = 0;
  for (let i = 0; i < BLOCK; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : b[off + i];
    u += c;
    s += c > 127 ? c - 256 : c;
  }
  return stored === u || stored === s;
}

function parseOctalField(b: Uint8Array, off: number, width: number, what: string): number {
  let i = off;
  const end = off + width;
  while (i < end && (b[i] === 0x20 || b[i] === 0)) i++;
  if (i === end) return 0;
  let n = 0;
  let digits = 0;
  for (; i < end; i++) {
    const c = b[i];
    if (c === 0 || c === 0x20) break;
    if (c < 0x30 || c > 0x37) throw new HeaderError(`bad ${what} field`);
    n = n * 8 + (c - 0x30);
    digits++;
  }
  for (; i < end; i++) if (b[i] !== 0 && b[i] !== 0x20) throw new HeaderError(`bad ${what} field`);
  if (digits === 0) return 0;
  return n;
}

/**
 * Decodes a numeric header field: octal ASCII or GNU base-256.
 *
 * @example
 * ```ts
 * parseNumeric(new TextEncoder().encode("0000644\0"), 0, 8, "mode"); // 420
 * ```
 */
export function parseNumeric(b: Uint8Array, off: number, width: number, what: string): number {
  const first = b[off];
  if (first & 0x80) {
    // base-256, two's complement; bit 7 of the first byte is the marker, bit 6 the sign.
    const inv = first & 0x40 ? 0xff : 0;
    let v = 0n;
    for (let i = 0; i < width; i++) {
      let c = b[off + i] ^ inv;
      if (i === 0) c &= 0x7f;
      v = (v << 8n) | BigInt(c);
    }
    if (inv) v = -v - 1n;
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new HeaderError(`${what} field out of range`);
    }
    return Number(v);
  }
  return parseOctalField(b, off, width, what);
}

/**
 * Decodes a NUL-terminated string field (UTF-8; invalid sequences replaced).
 *
 * @example
 * ```ts
 * parseString(new TextEncoder().encode("abc\0\0"), 0, 5); // "abc"
 * ```
 */
export function parseString(b: Uint8Array, off: number, width: number): string {
  let end = off;
  const max = off + width;
  while (end < max && b[end] !== 0) end++;
  return decodeBytes(b.subarray(off, end));
}

/**
 * Decodes bytes as a string: UTF-8 when valid, else latin1 (one char per byte, lossless).
 *
 * @example
 * ```ts
 * decodeBytes(new Uint8Array([0x61, 0xff])); // "a\u00ff" (latin1: not valid UTF-8)
 * ```
 */
export function decodeBytes(b: Uint8Array): string {
  let ascii = true;
  for (let i = 0; i < b.length; i++) {
    if (b[i] >= 0x80) {
      ascii = false;
      break;
    }
  }
  // (apply() takes every byte as one argument: long PAX values would overflow the stack)
  if (ascii) return b.length <= 4096 ? String.fromCharCode.apply(null, b as unknown as number[]) : dec.decode(b);
  const s = dec.decode(b);
  if (!s.includes("\ufffd")) return s;
  let out = "";
  for (let i = 0; i < b.length; i++) out += String.fromCharCode(b[i]);
  return out;
}

/**
 * The fields of a raw header block as read.
 *
 * @example
 * ```ts
 * const raw: RawHeader = decodeHeader(block);
 * if (raw.format === "gnu") console.log(raw.gnuRealSize);
 * ```
 */
export interface RawHeader extends HeaderFields {
  format: "ustar" | "gnu" | "v7";
  /** True if the header is GNU and its sparse "isextended" flag is set. */
  gnuIsExtended: boolean;
  /** GNU real size of a sparse file (offset 483). */
  gnuRealSize: number;
  /** GNU old sparse map entries in the header itself (up to 4). */
  gnuSparse: SparseRegion[];
}

/**
 * Decodes a 512-byte header block at `off`. Throws {@linkcode HeaderError} on a
 * bad checksum or malformed numeric field.
 *
 * @example
 * ```ts
 * const h = decodeHeader(encodeHeader({ name: "a", mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0,
 *   typeflag: "0", linkname: "", uname: "", gname: "", devmajor: 0, devminor: 0 }));
 * h.name; // "a"
 * ```
 */
export function decodeHeader(b: Uint8Array, off = 0): RawHeader {
  if (!checksumOk(b, off)) throw new HeaderError("bad header checksum");
  const m0 = b[off + 257], m5 = b[off + 262];
  let format: RawHeader["format"] = "v7";
  if (
    m0 === 0x75 && b[off + 258] === 0x73 && b[off + 259] === 0x74 && b[off + 260] === 0x61 &&
    b[off + 261] === 0x72
  ) {
    if (m5 === 0x20 && b[off + 263] === 0x20 && b[off + 264] === 0) format = "gnu";
    else format = "ustar";
  }
  const typeflag = String.fromCharCode(b[off + 156]);
  const h: RawHeader = {
    name: parseString(b, off, 100),
    mode: parseNumeric(b, off + 100, 8, "mode"),
    uid: parseNumeric(b, off + 108, 8, "uid"),
    gid: parseNumeric(b, off + 116, 8, "gid"),
    size: parseNumeric(b, off + 124, 12, "size"),
    mtime: parseNumeric(b, off + 136, 12, "mtime"),
    typeflag,
    linkname: parseString(b, off + 157, 100),
    uname: "",
    gname: "",
    devmajor: 0,
    devminor: 0,
    format,
    gnuIsExtended: false,
    gnuRealSize: 0,
    gnuSparse: [],
  };
  if (h.size < 0) throw new HeaderError("negative size");
  if (format !== "v7") {
    h.uname = parseString(b, off + 265, 32);
    h.gname = parseString(b, off + 297, 32);
    // Devices numbers only mean something for char/block; tolerate junk elsewhere.
    if (typeflag === "3" || typeflag === "4") {
      h.devmajor = parseNumeric(b, off + 329, 8, "devmajor");
      h.devminor = parseNumeric(b, off + 337, 8, "devminor");
    }
  }
  if (format === "ustar") {
    // star puts "tar\0" at 508 and a 131-byte prefix
    const star = b[off + 508] === 0x74 && b[off + 509] === 0x61 && b[off + 510] === 0x72 && b[off + 511] === 0;
    const prefix = parseString(b, off + 345, star ? 131 : 155);
    if (prefix) h.name = prefix + "/" + h.name;
  } else if (format === "gnu" && typeflag === "S") {
    for (let i = 0; i < 4; i++) {
      const o = off + 386 + i * 24;
      if (b[o] === 0) break;
      h.gnuSparse.push({ offset: parseNumeric(b, o, 12, "sparse offset"), size: parseNumeric(b, o + 12, 12, "sparse size") });
    }
    h.gnuIsExtended = b[off + 482] !== 0;
    h.gnuRealSize = parseNumeric(b, off + 483, 12, "sparse realsize");
  }
  return h;
}
