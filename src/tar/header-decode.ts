/**
 * Decoding the 512-byte ustar/GNU tar header block (format in
 * src/tar/header.ts) from untrusted archives: numbers in octal or GNU
 * base-256 are range-checked, strings end at the first NUL and are decoded
 * as UTF-8 when valid, else latin1 (lossless), checksums are verified (unsigned, or the
 * historical signed sum). Anything malformed is a {@linkcode HeaderError},
 * which the parser turns into ETAR naming the entry.
 *
 * @module
 */
import { BLOCK, type HeaderFields, type SparseRegion } from "./header.ts";

const dec = new TextDecoder("utf-8", { fatal: false });

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
