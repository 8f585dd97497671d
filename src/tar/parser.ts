/**
 * A synchronous push tar reader: a {@linkcode ByteSink} that decodes a tar
 * stream and calls a {@linkcode TarHandler} for each entry.
 *
 * Understands ustar, PAX (`x`; global `g` records are read and ignored), GNU
 * long names/links (`L`/`K`), base-256 numbers, old GNU sparse (`S`) and PAX
 * sparse 0.0/0.1/1.0 (expanded: holes come as `hole()` or zeros),
 * `SCHILY.xattr.*`. Like Go's archive/tar (and so umoci): the size of
 * header-only types (links, symlinks, devices, directories, FIFOs) is ignored,
 * a stream may end without the end-of-archive marker at an entry boundary,
 * and anything after the two zero blocks is ignored. A malformed header,
 * checksum or truncated stream throws `ETAR` naming the entry's offset.
 *
 * @module
 */
import { OcigenError } from "../errors.ts";
import type { ByteSink } from "../stream/sink.ts";
import { entryHeader, paxInt } from "./entry.ts";
import { BLOCK, padLength, type SparseRegion, type TarEntryHeader } from "./header.ts";
import { decodeBytes, decodeHeader, HeaderError, isZeroBlock, type RawHeader } from "./header-decode.ts";
import { type PaxRecords, parsePax } from "./pax.ts";
import {
  Sparse10MapReader,
  decodeGnuSparseExtension,
  pairsToRegions,
  parseSparseMap01,
  validateSparse,
} from "./sparse.ts";

/**
 * Receives the entries of a tar stream, synchronously and in order.
 *
 * @example
 * ```ts
 * const h: TarHandler = { entry: (e) => console.log(e.name), data() {}, entryEnd() {}, end() {} };
 * ```
 */
export interface TarHandler {
  /** A new entry starts; `h.size` bytes of content follow through `data`/`hole`. */
  entry(h: TarEntryHeader): void;
  /** Content bytes of the current entry (valid only during the call). */
  data(chunk: Uint8Array): void;
  /**
   * Optional: a hole of `length` zero bytes in a sparse file. Without it, holes
   * are delivered as zero-filled `data` chunks.
   */
  hole?(length: number): void;
  /**
   * Optional: the sha256 (hex) of the current entry's content — its data and
   * holes as zero bytes, in stream order — called just before `entryEnd` by
   * readers that compute it (a worker asked for entry digests); others never call it.
   */
  contentDigest?(sha256hex: string): void;
  /** The current entry's content is complete. */
  entryEnd(): void;
  /** The archive ended (end marker, or a clean end of the stream). */
  end(): void;
}

/**
 * Options of {@linkcode TarParser}.
 *
 * @example
 * ```ts
 * new TarParser(handler, { context: "layer sha256:ab..", maxExtendedSize: 1 << 20 });
 * ```
 */
export interface TarParserOptions {
  /** Largest PAX/GNU long-name record accepted, bytes (default 1 MiB, as Go). */
  maxExtendedSize?: number;
  /** What the stream is, for messages: errors read `Cannot unpack <context>: tar entry at offset …`. */
  context?: string;
}

const enum S {
  Header,
  Ext,
  GnuSparseExt,
  Sparse10Map,
  Data,
  Skip,
  Pad,
  Zero1,
  End,
  Failed,
}

const HEADER_ONLY = new Set(["1", "2", "3", "4", "5", "6"]);
const ZEROS = new Uint8Array(65536);

/**
 * Decodes a tar stream pushed into it and calls `handler`.
 *
 * @example
 * ```ts
 * const names: string[] = [];
 * const p = new TarParser({ entry: (h) => names.push(h.name), data() {}, entryEnd() {}, end() {} });
 * p.write(tarBytes([{ name: "a", data: "x" }]));
 * p.end(); // names: ["a"]
 * ```
 */
export class TarParser implements ByteSink {
  private state = S.Header;
  private readonly hdr = new Uint8Array(BLOCK);
  private hdrFill = 0;
  /** Bytes of the stream consumed so far. */
  offset = 0;
  private entryOffset = 0;
  private readonly maxExt: number;
  private readonly context: string | undefined;

  // pending extended headers
  private pax: PaxRecords | null = null;
  private longName: string | null = null;
  private longLink: string | null = null;

  // extended-header collection
  private extKind = "";
  private extBuf: Uint8Array = new Uint8Array(0);
  private extFill = 0;

  // current entry
  private cur: TarEntryHeader | null = null;
  private remaining = 0; // stored bytes of data left
  private pad = 0;
  private skip = 0;
  private sparse: SparseRegion[] | null = null;
  private sparseIdx = 0;
  private pos = 0; // position in the expanded file
  private map10: Sparse10MapReader | null = null;
  private storedSize = 0;

  constructor(private readonly handler: TarHandler, opts: TarParserOptions = {}) {
    this.maxExt = opts.maxExtendedSize ?? 1 << 20;
    this.context = opts.context;
  }

  private fail(why: string, cause?: unknown): never {
    this.state = S.Failed;
    const name = this.cur?.name;
    const where = `tar entry at offset ${this.entryOffset}${name ? ` (${name})` : ""}: ${why}`;
    throw new OcigenError(
      "ETAR",
      this.context ? `Cannot unpack ${this.context}: ${where}` : `Cannot read ${where}`,
      cause ? { cause } : undefined,
    );
  }

  /** Pushes a chunk of the tar stream. */
  write(chunk: Uint8Array): void {
    try {
      this.process(chunk);
    } catch (e) {
      if (e instanceof HeaderError) this.fail(e.message, e);
      this.state = S.Failed;
      throw e;
    }
  }

  private process(chunk: Uint8Array): void {
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      switch (this.state) {
        case S.Header:
        case S.Zero1:
        case S.GnuSparseExt: {
          if (this.hdrFill === 0 && n - i >= BLOCK) {
            this.offset += BLOCK;
            this.block(chunk, i);
            i += BLOCK;
          } else {
            const take = Math.min(BLOCK - this.hdrFill, n - i);
            this.hdr.set(chunk.subarray(i, i + take), this.hdrFill);
            this.hdrFill += take;
            i += take;
            this.offset += take;
            if (this.hdrFill === BLOCK) {
              this.hdrFill = 0;
              this.block(this.hdr, 0);
            }
          }
          break;
        }
        case S.Ext: {
          const take = Math.min(this.remaining, n - i);
          this.extBuf.set(chunk.subarray(i, i + take), this.extFill);
          this.extFill += take;
          this.remaining -= take;
          i += take;
          this.offset += take;
          if (this.remaining === 0) this.extDone();
          break;
        }
        case S.Sparse10Map: {
          const take = this.map10!.feed(chunk, i, i + Math.min(this.remaining, n - i));
          i += take;
          this.offset += take;
          this.remaining -= take;
          if (this.map10!.done) {
            this.sparse = this.map10!.regions;
            this.map10 = null;
            this.startEntry();
          } else if (this.remaining === 0) this.fail("truncated GNU sparse 1.0 map");
          break;
        }
        case S.Data: {
          const take = Math.min(this.remaining, n - i);
          const part = chunk.subarray(i, i + take);
          i += take;
          this.offset += take;
          this.remaining -= take;
          if (this.sparse) this.sparseData(part);
          else if (take) this.handler.data(part);
          if (this.remaining === 0) this.finishData();
          break;
        }
        case S.Skip: {
          const take = Math.min(this.skip, n - i);
          this.skip -= take;
          i += take;
          this.offset += take;
          if (this.skip === 0) this.afterData();
          break;
        }
        case S.Pad: {
          const take = Math.min(this.pad, n - i);
          this.pad -= take;
          i += take;
          this.offset += take;
          if (this.pad === 0) this.state = S.Header;
          break;
        }
        case S.End:
          this.offset += n - i;
          return;
        case S.Failed:
          throw new OcigenError("ETAR", "Cannot read tar stream: already failed");
      }
    }
  }

  /** Ends the stream: checks it ended at an entry boundary, then calls `handler.end()`. */
  end(): void {
    if (this.state === S.Failed) throw new OcigenError("ETAR", "Cannot read tar stream: already failed");
    const clean = (this.state === S.Header || this.state === S.Zero1 || this.state === S.End) && this.hdrFill === 0;
    if (!clean) {
      if (this.state === S.Header || this.state === S.Zero1) this.entryOffset = this.offset - this.hdrFill;
      this.fail("unexpected end of the tar stream (truncated)");
    }
    this.state = S.End;
    this.handler.end();
  }

  private block(b: Uint8Array, off: number): void {
    if (this.state === S.GnuSparseExt) {
      const more = decodeGnuSparseExtension(b, off, this.sparse!);
      if (!more) this.startEntry();
      return;
    }
    this.entryOffset = this.offset - BLOCK;
    if (isZeroBlock(b, off)) {
      if (this.state === S.Zero1) this.state = S.End;
      else this.state = S.Zero1;
      return;
    }
    if (this.state === S.Zero1) this.fail("data after a zero block (corrupt end-of-archive marker)");
    let raw: RawHeader;
    try {
      raw = decodeHeader(b, off);
    } catch (e) {
      if (e instanceof HeaderError) this.fail(e.message, e);
      throw e;
    }
    this.header(raw);
  }

  private header(raw: RawHeader): void {
    const flag = raw.typeflag;
    if (flag === "x" || flag === "g" || flag === "L" || flag === "K") {
      if (raw.size > this.maxExt) this.fail(`extended header of ${raw.size} bytes is too large`);
      this.extKind = flag;
      this.extBuf = new Uint8Array(raw.size);
      this.extFill = 0;
      this.remaining = raw.size;
      this.pad = padLength(raw.size);
      this.state = S.Ext;
      if (raw.size === 0) this.extDone();
      return;
    }
    const entry = entryHeader(raw, this.pax, this.longName, this.longLink);
    const h = entry.h;
    let size = entry.size;
    const pax = this.pax;
    this.pax = null;
    this.longName = null;
    this.longLink = null;
    this.cur = h;
    if (HEADER_ONLY.has(flag)) size = 0;
    this.storedSize = size;
    this.pad = padLength(size);
    this.sparse = null;
    this.sparseIdx = 0;
    this.pos = 0;
    if (flag === "D") {
      // GNU dump dir: a directory whose data (a name list) we skip.
      this.handler.entry(h);
      this.handler.entryEnd();
      this.skip = size;
      this.state = S.Skip;
      if (size === 0) this.afterData();
      return;
    }
    if (flag === "S" && raw.format === "gnu") {
      h.type = "file";
      h.size = raw.gnuRealSize;
      this.sparse = raw.gnuSparse.slice();
      this.remaining = size;
      if (raw.gnuIsExtended) {
        this.state = S.GnuSparseExt;
        return;
      }
      this.startEntry();
      return;
    }
    if (pax && (h.type === "file" || h.type === "other")) {
      const t = pax.text;
      if (t["GNU.sparse.major"] === "1" && t["GNU.sparse.minor"] === "0") {
        h.type = "file";
        if (t["GNU.sparse.name"]) h.name = t["GNU.sparse.name"];
        h.size = paxInt(t, "GNU.sparse.realsize", 0);
        this.map10 = new Sparse10MapReader();
        this.remaining = size;
        this.state = S.Sparse10Map;
        if (size === 0) this.fail("missing GNU sparse 1.0 map");
        return;
      }
      if (t["GNU.sparse.numblocks"] !== undefined || t["GNU.sparse.map"] !== undefined) {
        h.type = "file";
        if (t["GNU.sparse.name"]) h.name = t["GNU.sparse.name"];
        h.size = paxInt(t, "GNU.sparse.size", paxInt(t, "GNU.sparse.realsize", 0));
        this.sparse = t["GNU.sparse.map"] !== undefined ? parseSparseMap01(t["GNU.sparse.map"]) : pairsToRegions(pax.sparsePairs);
        const nb = paxInt(t, "GNU.sparse.numblocks", this.sparse.length);
        if (nb !== this.sparse.length) this.fail("GNU.sparse.numblocks does not match the sparse map");
        this.remaining = size;
        this.startEntry();
        return;
      }
    }
    h.size = size;
    this.remaining = size;
    this.startEntry();
  }

  private extDone(): void {
    const data = this.extBuf;
    this.extBuf = new Uint8Array(0);
    switch (this.extKind) {
      case "x":
        this.pax = parsePax(data);
        break;
      case "g":
        parsePax(data); // validated, then ignored (as umoci)
        break;
      case "L":
      case "K": {
        let end = data.indexOf(0);
        if (end < 0) end = data.length;
        const s = decodeBytes(data.subarray(0, end));
        if (this.extKind === "L") this.longName = s;
        else this.longLink = s;
        break;
      }
    }
    this.state = this.pad ? S.Pad : S.Header;
  }

  /** Called when the header (and any sparse map) of a content entry is complete. */
  private startEntry(): void {
    const h = this.cur!;
    if (this.sparse) {
      const stored = this.remaining;
      validateSparse(this.sparse, h.size);
      let sum = 0;
      for (const r of this.sparse) sum += r.size;
      if (sum !== stored) this.fail(`sparse map holds ${sum} bytes but the entry stores ${stored}`);
      h.sparse = this.sparse;
    }
    this.handler.entry(h);
    this.state = S.Data;
    if (this.remaining === 0) this.finishData();
  }

  private emitHole(len: number): void {
    if (len <= 0) return;
    if (this.handler.hole) {
      this.handler.hole(len);
      return;
    }
    while (len > 0) {
      const k = Math.min(len, ZEROS.length);
      this.handler.data(ZEROS.subarray(0, k));
      len -= k;
    }
  }

  private sparseData(part: Uint8Array): void {
    const regions = this.sparse!;
    let o = 0;
    while (o < part.length) {
      const r = regions[this.sparseIdx];
      if (this.pos < r.offset) {
        this.emitHole(r.offset - this.pos);
        this.pos = r.offset;
      }
      const want = r.offset + r.size - this.pos;
      if (want === 0) {
        this.sparseIdx++;
        continue;
      }
      const take = Math.min(want, part.length - o);
      this.handler.data(part.subarray(o, o + take));
      o += take;
      this.pos += take;
    }
  }

  private finishData(): void {
    if (this.sparse) {
      const h = this.cur!;
      this.emitHole(h.size - this.pos);
      this.pos = h.size;
    }
    this.handler.entryEnd();
    this.afterData();
  }

  private afterData(): void {
    this.cur = null;
    this.sparse = null;
    this.state = this.pad ? S.Pad : S.Header;
  }
}
