/**
 * The WebAssembly tar kernel (`wasm/tar.ts`) behind a typed facade: callers
 * never see pointers or records.
 *
 * The kernel scans the tar stream — 512-byte headers, checksums, octal and
 * base-256 numbers, PAX records (size, uid, gid, mtime syntax, GNU sparse
 * 0.0/0.1/1.0), GNU long names/links, old GNU sparse maps with their extension
 * blocks, sparse map validation, padding, the end-of-archive marker — and
 * hands back records: "header", "begin" (with the sparse map), "data at stream
 * offset X, length N", "hole of N bytes", "entry end". Content bytes are never
 * copied into the kernel: when the kernel is inside file content, padding or
 * past the end, the facade only tells it how many bytes went by, and data
 * records are turned into views of the caller's own chunk.
 *
 * The facade turns records into the same {@linkcode TarEntryHeader} objects
 * and the same {@linkcode TarHandler} calls as the reference parser
 * ({@linkcode TarParser} in parser.ts), and kernel error codes into the same
 * `ETAR` messages. Strings are decoded here (the kernel gives their byte
 * ranges); PAX record values are materialised with the reference's own
 * `parsePax` once the kernel has validated them.
 *
 * Two APIs:
 * - {@linkcode TarKernelParser}: a drop-in for `TarParser` (a `ByteSink`
 *   calling a `TarHandler`), what the layer unpack uses behind an option;
 * - {@linkcode TarKernel}: `push(chunk)` returns the batch of events the chunk
 *   completed (entries with their header, data views into `chunk`, holes,
 *   entry ends), `end()` the last ones — for a worker that ships entries and
 *   data ranges instead of raw bytes.
 *
 * @module
 */
import { OcigenError } from "../errors.ts";
import type { ByteSink } from "../stream/sink.ts";
import { wasmBase64 } from "../wasm/generated/tar.ts";
import { instantiateModule, kernelModule, MemoryView } from "../wasm/instance.ts";
import { type SparseRegion, type TarEntryHeader, type TarEntryType } from "./header.ts";
import { decodeBytes } from "./header-decode.ts";
import type { TarHandler, TarParserOptions } from "./parser.ts";
import { type PaxRecords, parsePax, paxXattrs } from "./pax.ts";

interface TarExports {
  memory: WebAssembly.Memory;
  init(maxExt: number): void;
  inPtr(): number;
  inCapacity(): number;
  recPtr(): number;
  recCount(): number;
  errCode(): number;
  errA(): number;
  errB(): number;
  errOffset(): number;
  errNamed(): number;
  streamOffset(): number;
  passable(): number;
  pass(n: number): number;
  run(n: number): number;
  resume(): number;
  finish(): number;
}

const ST_YIELD = 1;
const ST_ERROR = 3;

const R_HEADER = 1;
const R_BEGIN = 2;
const R_DATA = 3;
const R_HOLE = 4;
const R_END = 5;

const TYPES: TarEntryType[] = ["file", "link", "symlink", "char", "block", "dir", "fifo", "other"];
const FIELDS = [
  "checksum", "mode", "uid", "gid", "size", "mtime", "devmajor", "devminor",
  "sparse offset", "sparse size", "sparse realsize",
];
const PAX_KEYS = ["size", "uid", "gid", "GNU.sparse.realsize", "GNU.sparse.size", "GNU.sparse.numblocks"];
const ZEROS = new Uint8Array(65536);
const PIECE = 32 * 1024;
/** Largest `maxExtendedSize` the kernel takes (256 MiB). */
const MAX_EXTENDED = 256 << 20;

/**
 * The reference parser's message for a kernel error code.
 *
 * @example
 * ```ts
 * describeTarError(3, 0, 0); // "bad header checksum"
 * ```
 */
export function describeTarError(code: number, a: number, b: number): string {
  switch (code) {
    case 1: return `bad ${FIELDS[a]} field`;
    case 2: return `${FIELDS[a]} field out of range`;
    case 3: return "bad header checksum";
    case 4: return "negative size";
    case 5: return `extended header of ${a} bytes is too large`;
    case 6: return "bad PAX record";
    case 7: return "bad PAX sparse record";
    case 8: return `bad PAX ${PAX_KEYS[a]} record`;
    case 9: return `PAX ${PAX_KEYS[a]} record out of range`;
    case 10: return "bad PAX mtime record";
    case 11: return "negative uid or gid";
    case 12: return "missing GNU sparse 1.0 map";
    case 13: return "truncated GNU sparse 1.0 map";
    case 14: return "bad GNU sparse 1.0 map";
    case 15: return "sparse map too large";
    case 16: return "bad sparse map entry";
    case 17: return "sparse map entries overlap or are out of order";
    case 18: return "sparse map entry beyond the file size";
    case 19: return `sparse map holds ${a} bytes but the entry stores ${b}`;
    case 20: return "bad GNU.sparse.map";
    case 21: return "bad GNU.sparse.offset/numbytes records";
    case 22: return "GNU.sparse.numblocks does not match the sparse map";
    case 23: return "data after a zero block (corrupt end-of-archive marker)";
    case 24: return "unexpected end of the tar stream (truncated)";
    default: return `internal tar kernel error ${code}`;
  }
}

/**
 * Options of {@linkcode TarKernelParser} and {@linkcode TarKernel}: the
 * parser's, and the compiled tar kernel to instantiate (a worker thread is
 * handed the module compiled in the caller's thread).
 *
 * @example
 * ```ts
 * const opts: TarKernelOptions = { context: "layer sha256:ab..", module: kernelModule("tar", wasmBase64) };
 * ```
 */
export interface TarKernelOptions extends TarParserOptions {
  /** The compiled tar kernel (default: compiled from the bundled bytes, once per thread). */
  module?: WebAssembly.Module;
}

/**
 * Decodes a tar stream pushed into it on the WebAssembly kernel and calls
 * `handler` exactly as {@linkcode TarParser} would (same headers, same calls,
 * same errors); data chunks are views of the written chunk.
 *
 * @example
 * ```ts
 * const names: string[] = [];
 * const p = new TarKernelParser({ entry: (h) => names.push(h.name), data() {}, entryEnd() {}, end() {} });
 * p.write(tarBytes([{ name: "a", data: "x" }]));
 * p.end(); // names: ["a"]
 * ```
 */
export class TarKernelParser implements ByteSink {
  private readonly ex: TarExports;
  private readonly mem: MemoryView;
  private f64: Float64Array;
  private readonly cap: number;
  private readonly inPtr: number;
  private readonly context: string | undefined;
  private failed = false;
  private cur: TarEntryHeader | null = null;
  /** uname/gname fields of the last entry header (the kernel says when they repeat). */
  private rawUname = "";
  private rawGname = "";

  /** `opts.module`: the tar kernel already compiled (a worker is handed it), else compiled here once. */
  constructor(private readonly handler: TarHandler, opts: TarKernelOptions = {}) {
    const maxExt = opts.maxExtendedSize ?? 1 << 20;
    // the kernel lays out 8 bytes of buffers per byte of this limit in a 4 GiB address space
    if (!Number.isSafeInteger(maxExt) || maxExt < 0 || maxExt > MAX_EXTENDED) {
      throw new RangeError(`maxExtendedSize must be an integer from 0 to ${MAX_EXTENDED}`);
    }
    let mem: MemoryView | null = null;
    const inst = instantiateModule(opts.module ?? kernelModule("tar", wasmBase64), "tar", {
      // JS Number() of a PAX sparse value the kernel does not read itself
      paxNumber: (ptr: number, len: number) => Number(decodeBytes(mem!.u8.subarray(ptr, ptr + len))),
    });
    this.ex = inst.exports as unknown as TarExports;
    mem = this.mem = new MemoryView(this.ex.memory);
    this.ex.init(maxExt);
    this.f64 = new Float64Array(this.ex.memory.buffer);
    // pieces copied in at a time: small enough that little content is copied
    // in vain before a big file's data (which is passed over, not copied)
    this.cap = Math.min(this.ex.inCapacity(), PIECE);
    this.inPtr = this.ex.inPtr();
    this.context = opts.context;
  }

  /** Bytes of the stream consumed so far. */
  get offset(): number {
    return this.ex.streamOffset();
  }

  /** Pushes a chunk of the tar stream. */
  write(chunk: Uint8Array): void {
    if (this.failed) throw new OcigenError("ETAR", "Cannot read tar stream: already failed");
    try {
      this.feed(chunk);
    } catch (e) {
      this.failed = true;
      throw e;
    }
  }

  /** Ends the stream: checks it ended at an entry boundary, then calls `handler.end()`. */
  end(): void {
    if (this.failed) throw new OcigenError("ETAR", "Cannot read tar stream: already failed");
    try {
      const st = this.ex.finish();
      if (st === ST_ERROR) this.fail();
      this.handler.end();
    } catch (e) {
      this.failed = true;
      throw e;
    }
  }

  private feed(chunk: Uint8Array): void {
    const ex = this.ex;
    const base = ex.streamOffset();
    const n = chunk.length;
    let off = 0;
    while (off < n) {
      const p = ex.passable();
      let take: number;
      let st: number;
      if (p > 0) {
        take = Math.min(p, n - off);
        st = ex.pass(take);
      } else {
        take = Math.min(this.cap, n - off);
        this.mem.u8.set(off === 0 && take === n ? chunk : chunk.subarray(off, off + take), this.inPtr);
        st = ex.run(take);
      }
      for (;;) {
        this.records(chunk, base);
        if (st !== ST_YIELD) break;
        st = ex.resume();
      }
      if (st === ST_ERROR) this.fail();
      off += take;
    }
  }

  private fail(): never {
    const ex = this.ex;
    const why = describeTarError(ex.errCode(), ex.errA(), ex.errB());
    const name = ex.errNamed() ? this.cur?.name : undefined;
    const where = `tar entry at offset ${ex.errOffset()}${name ? ` (${name})` : ""}: ${why}`;
    throw new OcigenError("ETAR", this.context ? `Cannot unpack ${this.context}: ${where}` : `Cannot read ${where}`);
  }

  private records(chunk: Uint8Array, base: number): void {
    const count = this.ex.recCount();
    if (count === 0) return;
    if (this.f64.buffer !== this.ex.memory.buffer) this.f64 = new Float64Array(this.ex.memory.buffer);
    const r = this.f64;
    const h = this.handler;
    let i = this.ex.recPtr() >>> 3;
    const end = i + count;
    while (i < end) {
      switch (r[i]) {
        case R_HEADER:
          this.header(r, i);
          i += 25;
          break;
        case R_BEGIN: {
          const n = r[i + 2];
          if (n >= 0) {
            const p = r[i + 1] >>> 3;
            const regions: SparseRegion[] = new Array(n);
            for (let k = 0; k < n; k++) regions[k] = { offset: r[p + 2 * k], size: r[p + 2 * k + 1] };
            this.cur!.sparse = regions;
          }
          h.entry(this.cur!);
          i += 3;
          break;
        }
        case R_DATA: {
          const s = r[i + 1] - base;
          h.data(chunk.subarray(s, s + r[i + 2]));
          i += 3;
          break;
        }
        case R_HOLE: {
          let len = r[i + 1];
          if (h.hole) h.hole(len);
          else {
            while (len > 0) {
              const k = Math.min(len, ZEROS.length);
              h.data(ZEROS.subarray(0, k));
              len -= k;
            }
          }
          i += 2;
          break;
        }
        case R_END:
          h.entryEnd();
          i += 1;
          break;
        default:
          throw new OcigenError("ETAR", `Cannot read tar stream: internal tar kernel error (record ${r[i]})`);
      }
    }
  }

  /** Builds the entry header of an R_HEADER record as the reference parser does. */
  private header(r: Float64Array, i: number): void {
    const u8 = this.mem.u8;
    const hp = r[i + 1];
    const format = r[i + 3];
    let name = str(u8, hp, r[i + 20]);
    const prefixLen = r[i + 21];
    if (prefixLen > 0) name = str(u8, hp + 345, prefixLen) + "/" + name;
    let linkname = str(u8, hp + 157, r[i + 22]);
    if (r[i + 23] !== -1) {
      this.rawUname = str(u8, hp + 265, r[i + 23]);
      this.rawGname = str(u8, hp + 297, r[i + 24]);
    }
    const uname = format !== 0 ? this.rawUname : "";
    const gname = format !== 0 ? this.rawGname : "";
    const paxLen = r[i + 15];
    let pax: PaxRecords | null = null;
    if (paxLen >= 0) pax = parsePax(u8.subarray(r[i + 14], r[i + 14] + paxLen));
    const recs = pax?.text ?? {};
    if (recs.path) name = recs.path;
    if (recs.linkpath) linkname = recs.linkpath;
    const longLen = r[i + 17];
    if (longLen >= 0) name = str(u8, r[i + 16], longLen);
    const linkLen = r[i + 19];
    if (linkLen >= 0) linkname = str(u8, r[i + 18], linkLen);
    const mtime = recs.mtime ? Number(recs.mtime) : r[i + 8];
    const xattrs = paxXattrs(pax);
    const h: TarEntryHeader = {
      name,
      type: TYPES[r[i + 11]],
      typeflag: String.fromCharCode(r[i + 2]),
      size: r[i + 7],
      mode: r[i + 4],
      uid: r[i + 5],
      gid: r[i + 6],
      uname: recs.uname ?? uname,
      gname: recs.gname ?? gname,
      mtime,
      linkname,
      devmajor: r[i + 9],
      devminor: r[i + 10],
      xattrs,
      pax: { ...recs },
    };
    const sparseKind = r[i + 12];
    if ((sparseKind === 2 || sparseKind === 3) && recs["GNU.sparse.name"]) h.name = recs["GNU.sparse.name"];
    this.cur = h;
    if (r[i + 13] === 1) {
      // GNU dump directory: entry and end now, its data is skipped
      this.handler.entry(h);
      this.handler.entryEnd();
    }
  }
}

function str(u8: Uint8Array, p: number, len: number): string {
  if (len === 0) return "";
  return decodeBytes(u8.subarray(p, p + len));
}

/**
 * One event of a {@linkcode TarKernel} batch. `data` views point into the
 * chunk given to `push` (valid as long as that chunk is); `at` is where the
 * view starts in that chunk (a range a worker can ship with the chunk itself).
 *
 * @example
 * ```ts
 * const ev: TarKernelEvent = { kind: "hole", length: 4096 };
 * ```
 */
export type TarKernelEvent =
  | { kind: "entry"; header: TarEntryHeader }
  | { kind: "data"; data: Uint8Array; at: number }
  | { kind: "hole"; length: number }
  | { kind: "entryEnd" }
  | { kind: "end" };

/**
 * The batch API of the kernel: each `push(chunk)` returns the events the
 * chunk completed; `end()` the final ones (or throws the truncation error).
 *
 * @example
 * ```ts
 * const k = new TarKernel();
 * for (const ev of k.push(tarBytes([{ name: "a", data: "x" }]))) if (ev.kind === "entry") console.log(ev.header.name);
 * k.end();
 * ```
 */
export class TarKernel {
  private batch: TarKernelEvent[] = [];
  private readonly parser: TarKernelParser;
  private chunk: Uint8Array = new Uint8Array(0);

  constructor(opts: TarKernelOptions = {}) {
    this.parser = new TarKernelParser({
      entry: (header) => this.batch.push({ kind: "entry", header }),
      data: (data) => this.batch.push({ kind: "data", data, at: data.byteOffset - this.chunk.byteOffset }),
      hole: (length) => this.batch.push({ kind: "hole", length }),
      entryEnd: () => this.batch.push({ kind: "entryEnd" }),
      end: () => this.batch.push({ kind: "end" }),
    }, opts);
  }

  /** Bytes of the stream consumed so far. */
  get offset(): number {
    return this.parser.offset;
  }

  /** Scans `chunk`; returns the events it completed (an error throws, as `TarParser.write`). */
  push(chunk: Uint8Array): TarKernelEvent[] {
    this.batch = [];
    this.chunk = chunk;
    try {
      this.parser.write(chunk);
    } finally {
      this.chunk = new Uint8Array(0);
    }
    return this.batch;
  }

  /** Ends the stream; returns the last events (ending with `end`). */
  end(): TarKernelEvent[] {
    this.batch = [];
    this.parser.end();
    return this.batch;
  }
}
