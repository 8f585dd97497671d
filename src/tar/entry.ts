/**
 * One tar entry's header as the reader hands it on: the raw ustar/GNU header
 * block combined with what came before it, in this order of precedence
 * (later wins): the block's fields, the PAX `x` records (`path`,
 * `linkpath`, `size`, `uid`, `gid`, `uname`, `gname`, `mtime`), then GNU
 * long names and links (`L`/`K`). `SCHILY.xattr.*` records become xattrs
 * (values kept as bytes). Bad numeric records are {@linkcode HeaderError}s.
 *
 * @module
 */
import { HeaderError, type RawHeader } from "./header-decode.ts";
import type { TarEntryHeader, TarEntryType } from "./header.ts";
import { type PaxRecords, paxXattrs } from "./pax.ts";

/**
 * The entry type of a typeflag (`\0` is a directory when the name ends in `/`,
 * as old tars wrote them).
 *
 * @example
 * ```ts
 * typeOf("2", "lnk"); // "symlink"
 * ```
 */
export function typeOf(flag: string, name: string): TarEntryType {
  switch (flag) {
    case "0":
    case "7":
      return "file";
    case "\0":
      return name.endsWith("/") ? "dir" : "file";
    case "1":
      return "link";
    case "2":
      return "symlink";
    case "3":
      return "char";
    case "4":
      return "block";
    case "5":
    case "D":
      return "dir";
    case "6":
      return "fifo";
    default:
      return "other";
  }
}

/**
 * An integer PAX record (`uid`, `size`, `GNU.sparse.realsize`...), or
 * `fallback` when absent or empty; a {@linkcode HeaderError} when it is not a
 * (non-negative unless `allowNeg`) safe integer.
 *
 * @example
 * ```ts
 * paxInt({ uid: "1000" }, "uid", 0); // 1000
 * ```
 */
export function paxInt(recs: Record<string, string>, key: string, fallback: number, allowNeg = false): number {
  const v = recs[key];
  if (v === undefined || v === "") return fallback;
  if (!(allowNeg ? /^-?[0-9]+$/ : /^[0-9]+$/).test(v)) throw new HeaderError(`bad PAX ${key} record`);
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new HeaderError(`PAX ${key} record out of range`);
  return n;
}

/**
 * Builds the entry header of `raw` with the pending PAX records and GNU long
 * name/link (see the module header), and the entry's stored size (PAX `size`
 * or the block's). `h.size` is left 0: the reader sets it once sparse
 * extensions are known.
 *
 * @example
 * ```ts
 * const { h, size } = entryHeader(decodeHeader(block), null, null, null);
 * ```
 */
export function entryHeader(
  raw: RawHeader,
  pax: PaxRecords | null,
  longName: string | null,
  longLink: string | null,
): { h: TarEntryHeader; size: number } {
  const flag = raw.typeflag;
  const recs = pax?.text ?? {};
  let name = raw.name;
  let linkname = raw.linkname;
  if (recs.path) name = recs.path;
  if (recs.linkpath) linkname = recs.linkpath;
  if (longName !== null) name = longName;
  if (longLink !== null) linkname = longLink;
  const type = typeOf(flag, flag === "\0" ? name : "");
  const size = paxInt(recs, "size", raw.size);
  let mtime = raw.mtime;
  if (recs.mtime) {
    if (!/^-?[0-9]+(\.[0-9]*)?$/.test(recs.mtime)) throw new HeaderError("bad PAX mtime record");
    mtime = Number(recs.mtime);
  }
  const xattrs = paxXattrs(pax);
  const h: TarEntryHeader = {
    name,
    type,
    typeflag: flag,
    size: 0,
    mode: raw.mode & 0o7777,
    uid: paxInt(recs, "uid", raw.uid),
    gid: paxInt(recs, "gid", raw.gid),
    uname: recs.uname ?? raw.uname,
    gname: recs.gname ?? raw.gname,
    mtime,
    linkname,
    devmajor: raw.devmajor,
    devminor: raw.devminor,
    xattrs,
    pax: { ...recs },
  };
  if (h.uid < 0 || h.gid < 0) throw new HeaderError("negative uid or gid");
  return { h, size };
}
