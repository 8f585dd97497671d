/**
 * PAX extended header records (`x` and `g` entries).
 *
 * On-disk format: the data of a PAX entry is a sequence of records
 * `"<len> <key>=<value>\n"` where `<len>` is the decimal length of the whole
 * record including itself and the newline. Keys are UTF-8; values are UTF-8
 * except `SCHILY.xattr.*`, whose values are raw bytes.
 *
 * @module
 */
import { concatBytes } from "../stream/sink.ts";
import { utf8 } from "./header.ts";
import { decodeBytes, HeaderError } from "./header-decode.ts";

/**
 * A PAX record value: a string (UTF-8 encoded) or raw bytes.
 *
 * @example
 * ```ts
 * const v: PaxValue = new Uint8Array([0, 1]); // a binary xattr value
 * ```
 */
export type PaxValue = string | Uint8Array;

/**
 * Encodes PAX records in the given order.
 *
 * @example
 * ```ts
 * new TextDecoder().decode(encodePax([["path", "a/b"]])); // "12 path=a/b\n"
 * ```
 */
export function encodePax(records: Array<[string, PaxValue]>): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const [k, v] of records) {
    const body = concatBytes([utf8(" " + k + "="), typeof v === "string" ? utf8(v) : v, utf8("\n")]);
    // len = digits(len) + body.length; find the fixed point
    let len = body.length + 1;
    while (String(len).length + body.length !== len) len = String(len).length + body.length;
    parts.push(utf8(String(len)), body);
  }
  return concatBytes(parts);
}

/**
 * A parsed PAX record set: string values and, for binary-safe use, the raw value bytes.
 *
 * @example
 * ```ts
 * const recs: PaxRecords = parsePax(data);
 * recs.text.path;
 * ```
 */
export interface PaxRecords {
  /** Values decoded as strings (UTF-8, or latin1 if not valid UTF-8). */
  text: Record<string, string>;
  /** Raw value bytes for keys whose value is binary (xattrs). */
  raw: Record<string, Uint8Array>;
  /** Sparse map pieces of PAX sparse 0.0 (`GNU.sparse.offset`/`numbytes` pairs in order). */
  sparsePairs: number[];
}

/**
 * The extended attributes a PAX header carries (`SCHILY.xattr.NAME`
 * records, raw bytes), by name; empty when there is no PAX header.
 *
 * @example
 * ```ts
 * paxXattrs(parsePax(new TextEncoder().encode("30 SCHILY.xattr.user.a=hello\n"))); // { "user.a": Uint8Array "hello" }
 * ```
 */
export function paxXattrs(pax: PaxRecords | null | undefined): Record<string, string | Uint8Array> {
  const xattrs: Record<string, string | Uint8Array> = {};
  if (pax) {
    for (const k of Object.keys(pax.raw)) {
      if (k.startsWith("SCHILY.xattr.")) xattrs[k.slice(13)] = pax.raw[k];
    }
  }
  return xattrs;
}

/**
 * Parses the data of a PAX entry. Throws {@linkcode HeaderError} on malformed records.
 *
 * @example
 * ```ts
 * parsePax(new TextEncoder().encode("12 path=a/b\n")).text.path; // "a/b"
 * ```
 */
export function parsePax(data: Uint8Array): PaxRecords {
  const out: PaxRecords = { text: Object.create(null), raw: Object.create(null), sparsePairs: [] };
  let i = 0;
  while (i < data.length) {
    // Trailing NUL padding is tolerated.
    if (data[i] === 0) {
      let j = i;
      while (j < data.length && data[j] === 0) j++;
      if (j === data.length) break;
      throw new HeaderError("bad PAX record");
    }
    let len = 0;
    let j = i;
    while (j < data.length && data[j] >= 0x30 && data[j] <= 0x39 && j - i < 20) {
      len = len * 10 + (data[j] - 0x30);
      j++;
    }
    if (j === i || data[j] !== 0x20 || len <= j - i + 1 || i + len > data.length || data[i + len - 1] !== 0x0a) {
      throw new HeaderError("bad PAX record");
    }
    const rec = data.subarray(j + 1, i + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw new HeaderError("bad PAX record");
    const key = decodeBytes(rec.subarray(0, eq));
    const val = rec.subarray(eq + 1);
    if (key === "GNU.sparse.offset" || key === "GNU.sparse.numbytes") {
      const n = Number(decodeBytes(val));
      if (!Number.isSafeInteger(n) || n < 0) throw new HeaderError("bad PAX sparse record");
      out.sparsePairs.push(n);
    } else if (key.startsWith("SCHILY.xattr.") || key.startsWith("LIBARCHIVE.xattr.")) {
      out.raw[key] = val.slice();
      out.text[key] = decodeBytes(val);
    } else {
      out.text[key] = decodeBytes(val);
    }
    i += len;
  }
  return out;
}
