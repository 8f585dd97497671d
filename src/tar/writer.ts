/**
 * A deterministic streaming tar writer (POSIX ustar + PAX `x` records, or GNU
 * long names), pushing into a synchronous {@linkcode ByteSink}.
 *
 * PAX records are emitted for: names that do not fit ustar name/prefix or are
 * not ASCII (`path`), long or non-ASCII link targets (`linkpath`), sizes of
 * 8 GiB and more (`size`), uid/gid above 2097151 (`uid`/`gid`), long or
 * non-ASCII user/group names (`uname`/`gname`), fractional, negative or huge
 * mtimes (`mtime`), extended attributes (`SCHILY.xattr.NAME`, sorted) and any
 * extra records the caller passes in `pax` (sorted). Numbers that still do not
 * fit a header field use GNU base-256. The same entries always give the same
 * bytes.
 *
 * @module
 */
import { OcigenError } from "../errors.ts";
import { type ByteSink, CollectSink } from "../stream/sink.ts";
import {
  BLOCK,
  type HeaderFields,
  type SparseRegion,
  type TarEntryHeader,
  type TarEntryType,
  encodeHeader,
  endOfArchive,
  fitsOctal,
  padding,
  utf8,
} from "./header.ts";
import { type PaxValue, encodePax } from "./pax.ts";

/**
 * Typeflag characters of the entry types.
 *
 * @example
 * ```ts
 * TYPEFLAG.symlink; // "2"
 * ```
 */
export const TYPEFLAG: Record<Exclude<TarEntryType, "other">, string> = {
  file: "0",
  link: "1",
  symlink: "2",
  char: "3",
  block: "4",
  dir: "5",
  fifo: "6",
};

/**
 * How sparse entries are encoded (tests/fixtures).
 *
 * @example
 * ```ts
 * tarBytes([{ name: "s", data, sparse, sparseFormat: "pax-1.0" satisfies SparseFormat }]);
 * ```
 */
export type SparseFormat = "gnu" | "pax-0.0" | "pax-0.1" | "pax-1.0";

/**
 * An entry to write. Only `name` is required; the rest defaults deterministically.
 *
 * @example
 * ```ts
 * const e: TarWriterEntry = { name: "bin/ping", data: bytes, mode: 0o4755, xattrs: { "security.capability": cap } };
 * ```
 */
export interface TarWriterEntry extends Partial<Omit<TarEntryHeader, "name" | "xattrs" | "pax">> {
  name: string;
  /** Content of a regular file (for `add`/`tarBytes`); sets `size`. For sparse entries: the expanded content. */
  data?: Uint8Array | string;
  xattrs?: Record<string, string | Uint8Array>;
  /** Extra PAX records (written sorted by key after the computed ones). */
  pax?: Record<string, string>;
  /** Encoding of `sparse` (default `"pax-1.0"`). */
  sparseFormat?: SparseFormat;
}

/**
 * Options of {@linkcode TarWriter}.
 *
 * @example
 * ```ts
 * new TarWriter(sink, { format: "gnu" });
 * ```
 */
export interface TarWriterOptions {
  /** `"pax"` (default): ustar + PAX records; `"gnu"`: GNU magic, `L`/`K` long names, base-256 numbers. */
  format?: "pax" | "gnu";
}

function defaultMode(type: TarEntryType): number {
  return type === "dir" ? 0o755 : type === "symlink" ? 0o777 : 0o644;
}

const isAscii = (s: string) => /^[\x00-\x7f]*$/.test(s);
const byteLen = (s: string) => (isAscii(s) ? s.length : utf8(s).length);

/** Splits a long ustar name into prefix/name, or returns null if impossible. */
function splitUstar(name: string): { prefix: string; name: string } | null {
  const b = byteLen(name);
  if (b <= 100) return { prefix: "", name };
  if (b > 256) return null;
  for (let i = name.length - 1; i > 0; i--) {
    if (name[i] !== "/") continue;
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (rest.length === 0) continue;
    if (byteLen(prefix) <= 155 && byteLen(rest) <= 100) return { prefix, name: rest };
    if (byteLen(rest) > 100) return null;
  }
  return null;
}

function formatMtime(t: number): string {
  if (Number.isInteger(t)) return String(t);
  let s = t.toFixed(9);
  s = s.replace(/0+$/, "").replace(/\.$/, "");
  return s;
}

/**
 * Streaming tar writer. Call {@linkcode TarWriter.add} per entry, then (for
 * entries with content given later) {@linkcode TarWriter.write} exactly `size`
 * bytes and {@linkcode TarWriter.entryEnd}; finally {@linkcode TarWriter.end}.
 *
 * @example
 * ```ts
 * const out = new CollectSink();
 * const w = new TarWriter(out);
 * w.add({ name: "etc/", type: "dir" });
 * w.add({ name: "etc/motd", data: "hello\n" });
 * w.add({ name: "big", size: 3 });
 * w.write(new Uint8Array([1, 2, 3]));
 * w.entryEnd();
 * w.end();
 * ```
 */
export class TarWriter {
  private remaining = 0;
  private written = 0;
  private open = false;
  private readonly gnu: boolean;
  /** Total bytes emitted so far. */
  bytesOut = 0;

  constructor(private readonly sink: ByteSink, opts: TarWriterOptions = {}) {
    this.gnu = opts.format === "gnu";
  }

  private emit(b: Uint8Array): void {
    if (b.length === 0) return;
    this.bytesOut += b.length;
    this.sink.write(b);
  }

  /**
   * Writes the header(s) of an entry. If `entry.data` is given, also writes the
   * content and closes the entry; otherwise the caller must `write()` exactly
   * `entry.size` bytes (0 for non-files) and call `entryEnd()`.
   */
  add(entry: TarWriterEntry): void {
    if (this.open) throw new OcigenError("ETAR", `Cannot write tar entry ${entry.name}: previous entry not finished`);
    const type: TarEntryType = entry.type ?? "file";
    let data: Uint8Array | undefined =
      entry.data === undefined ? undefined : typeof entry.data === "string" ? utf8(entry.data) : entry.data;
    const hasData = type === "file" || type === "other";
    let size = hasData ? (data ? data.length : (entry.size ?? 0)) : 0;
    const extra: Array<[string, PaxValue]> = [];
    let typeflag = entry.typeflag ?? (type === "other" ? "0" : TYPEFLAG[type]);
    let sparseBody: Uint8Array[] | undefined;
    let gnuSparse: { regions: SparseRegion[]; realSize: number } | undefined;
    let name = entry.name;

    if (entry.sparse && hasData) {
      if (!data) throw new OcigenError("ETAR", `Cannot write sparse tar entry ${entry.name}: data required`);
      const regions = entry.sparse;
      const realSize = data.length;
      const chunks = regions.map((r) => data!.subarray(r.offset, r.offset + r.size));
      const stored = chunks.reduce((a, c) => a + c.length, 0);
      const fmt = entry.sparseFormat ?? "pax-1.0";
      if (fmt === "gnu") {
        typeflag = "S";
        gnuSparse = { regions, realSize };
        size = stored;
        sparseBody = chunks;
      } else if (fmt === "pax-0.0" || fmt === "pax-0.1") {
        extra.push(["GNU.sparse.size", String(realSize)], ["GNU.sparse.numblocks", String(regions.length)]);
        if (fmt === "pax-0.0") {
          for (const r of regions) extra.push(["GNU.sparse.offset", String(r.offset)], ["GNU.sparse.numbytes", String(r.size)]);
        } else {
          extra.push(["GNU.sparse.map", regions.map((r) => `${r.offset},${r.size}`).join(",")]);
        }
        size = stored;
        sparseBody = chunks;
      } else {
        extra.push(
          ["GNU.sparse.major", "1"],
          ["GNU.sparse.minor", "0"],
          ["GNU.sparse.name", name],
          ["GNU.sparse.realsize", String(realSize)],
        );
        const slash = name.lastIndexOf("/", name.length - 2);
        name = (slash >= 0 ? name.slice(0, slash + 1) : "") + "GNUSparseFile.0/" + name.slice(slash + 1);
        const map = [String(regions.length), ...regions.flatMap((r) => [String(r.offset), String(r.size)])].join("\n") + "\n";
        const mapBytes = utf8(map);
        const mapBlock = new Uint8Array(mapBytes.length + (BLOCK - (mapBytes.length % BLOCK)) % BLOCK);
        mapBlock.set(mapBytes);
        sparseBody = [mapBlock, ...chunks];
        size = mapBlock.length + stored;
      }
      data = undefined;
    }

    const h: HeaderFields = {
      name,
      mode: entry.mode ?? defaultMode(type),
      uid: entry.uid ?? 0,
      gid: entry.gid ?? 0,
      size,
      mtime: entry.mtime ?? 0,
      typeflag,
      linkname: entry.linkname ?? "",
      uname: entry.uname ?? "",
      gname: entry.gname ?? "",
      devmajor: entry.devmajor ?? 0,
      devminor: entry.devminor ?? 0,
      format: this.gnu ? "gnu" : "ustar",
    };
    const pax: Array<[string, PaxValue]> = [];

    if (this.gnu) {
      if (byteLen(name) > 100) this.longLink("L", name);
      if (byteLen(h.linkname) > 100) this.longLink("K", h.linkname);
    } else {
      const split = isAscii(name) ? splitUstar(name) : null;
      if (split) {
        h.name = split.name;
        h.prefix = split.prefix;
      } else pax.push(["path", name]);
      if (byteLen(h.linkname) > 100 || !isAscii(h.linkname)) pax.push(["linkpath", h.linkname]);
      if (!fitsOctal(size, 12)) pax.push(["size", String(size)]);
      if (!fitsOctal(h.uid, 8)) pax.push(["uid", String(h.uid)]);
      if (!fitsOctal(h.gid, 8)) pax.push(["gid", String(h.gid)]);
      if (byteLen(h.uname) > 32 || !isAscii(h.uname)) pax.push(["uname", h.uname]);
      if (byteLen(h.gname) > 32 || !isAscii(h.gname)) pax.push(["gname", h.gname]);
      if (!fitsOctal(h.mtime, 12)) pax.push(["mtime", formatMtime(h.mtime)]);
    }
    if (gnuSparse) {
      h.format = "gnu";
      h.gnuExtra = this.gnuSparseExtra(gnuSparse.regions, gnuSparse.realSize);
    }
    for (const k of Object.keys(entry.xattrs ?? {}).sort()) pax.push(["SCHILY.xattr." + k, entry.xattrs![k]]);
    pax.push(...extra);
    const seen = new Set(pax.map(([k]) => k));
    for (const k of Object.keys(entry.pax ?? {}).sort()) if (!seen.has(k)) pax.push([k, entry.pax![k]]);
    if (pax.length) {
      const body = encodePax(pax);
      const base = (name.replace(/\/+$/, "").split("/").pop() || "entry").replace(/[^\x20-\x7e]/g, "_");
      this.emit(
        encodeHeader({
          name: ("PaxHeaders/" + base).slice(0, 100),
          mode: 0o644,
          uid: 0,
          gid: 0,
          size: body.length,
          mtime: 0,
          typeflag: "x",
          linkname: "",
          uname: "",
          gname: "",
          devmajor: 0,
          devminor: 0,
          format: this.gnu ? "gnu" : "ustar",
        }),
      );
      this.emit(body);
      this.emit(padding(body.length));
    }
    this.emit(encodeHeader(h));
    if (gnuSparse) this.emitGnuSparseExtensions(gnuSparse.regions);
    this.open = true;
    this.remaining = size;
    this.written = size;
    if (sparseBody) {
      for (const c of sparseBody) this.write(c);
      this.entryEnd();
    } else if (data) {
      this.write(data);
      this.entryEnd();
    } else if (size === 0) {
      this.entryEnd();
    }
  }

  private longLink(flag: "L" | "K", value: string): void {
    const b = utf8(value + "\0");
    this.emit(
      encodeHeader({
        name: "././@LongLink",
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: b.length,
        mtime: 0,
        typeflag: flag,
        linkname: "",
        uname: "",
        gname: "",
        devmajor: 0,
        devminor: 0,
        format: "gnu",
      }),
    );
    this.emit(b);
    this.emit(padding(b.length));
  }

  private gnuSparseRegionsInHeader = 4;

  private gnuSparseExtra(regions: SparseRegion[], realSize: number): Uint8Array {
    // bytes 345..500 of a GNU header: atime[12] ctime[12] offset[12] longnames[4] unused[1]
    // sparse[4*24] isextended[1] realsize[12]; offsets relative to 345.
    const x = new Uint8Array(155);
    const tmp = encodeNumbers(regions.slice(0, this.gnuSparseRegionsInHeader), 4);
    x.set(tmp, 386 - 345);
    x[482 - 345] = regions.length > 4 ? 1 : 0;
    x.set(octal(realSize, 12), 483 - 345);
    return x;
  }

  private emitGnuSparseExtensions(regions: SparseRegion[]): void {
    let rest = regions.slice(4);
    while (rest.length) {
      const blk = new Uint8Array(BLOCK);
      const now = rest.slice(0, 21);
      rest = rest.slice(21);
      blk.set(encodeNumbers(now, 21), 0);
      blk[504] = rest.length ? 1 : 0;
      this.emit(blk);
    }
  }

  /** Writes content bytes of the current entry. */
  write(chunk: Uint8Array): void {
    if (!this.open) throw new OcigenError("ETAR", "Cannot write tar data: no entry open");
    if (chunk.length > this.remaining) {
      throw new OcigenError("ETAR", `Cannot write tar data: ${chunk.length} bytes exceed the entry size`);
    }
    this.remaining -= chunk.length;
    this.emit(chunk);
  }

  /**
   * Accounts `n` content bytes of the current entry that the caller puts into
   * the sink itself, in order, without passing them through the writer (e.g.
   * as a file range that another thread reads).
   */
  claim(n: number): void {
    if (!this.open) throw new OcigenError("ETAR", "Cannot write tar data: no entry open");
    if (n > this.remaining) throw new OcigenError("ETAR", `Cannot write tar data: ${n} bytes exceed the entry size`);
    this.remaining -= n;
    this.bytesOut += n;
  }

  /** Finishes the current entry (pads to a block boundary). */
  entryEnd(): void {
    if (!this.open) return;
    if (this.remaining !== 0) {
      throw new OcigenError("ETAR", `Cannot finish tar entry: ${this.remaining} bytes of content missing`);
    }
    this.emit(padding(this.written));
    this.open = false;
  }

  /** Writes the end-of-archive marker and ends the sink. */
  end(): void {
    if (this.open) throw new OcigenError("ETAR", "Cannot end tar archive: entry not finished");
    this.emit(endOfArchive());
    this.sink.end();
  }
}

function octal(n: number, width: number): Uint8Array {
  const b = new Uint8Array(width);
  if (fitsOctal(n, width)) {
    const s = n.toString(8).padStart(width - 1, "0");
    for (let i = 0; i < width - 1; i++) b[i] = s.charCodeAt(i);
  } else {
    let v = BigInt(n);
    for (let i = width - 1; i >= 0; i--) {
      b[i] = Number(v & 0xffn);
      v >>= 8n;
    }
    b[0] |= 0x80;
  }
  return b;
}

function encodeNumbers(regions: SparseRegion[], slots: number): Uint8Array {
  const b = new Uint8Array(slots * 24);
  regions.forEach((r, i) => {
    b.set(octal(r.offset, 12), i * 24);
    b.set(octal(r.size, 12), i * 24 + 12);
  });
  return b;
}

/**
 * Builds a whole tar archive in memory (tests, fixtures, small layers).
 *
 * @example
 * ```ts
 * const tar = tarBytes([{ name: "a/", type: "dir" }, { name: "a/b", data: "hi" }]);
 * tar.length; // 2048
 * ```
 */
export function tarBytes(entries: TarWriterEntry[], opts: TarWriterOptions & { endMarker?: boolean } = {}): Uint8Array {
  const out = new CollectSink();
  const w = new TarWriter(out, opts);
  for (const e of entries) w.add(e.data === undefined && (e.type ?? "file") === "file" && !e.size ? { ...e, data: "" } : e);
  if (opts.endMarker === false) out.end();
  else w.end();
  return out.bytes();
}
