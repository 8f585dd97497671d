/**
 * The binary form of the tar parser's non-content events, as the inflate
 * worker writes them into an `EVENTS` record and the caller replays them (see
 * protocol.ts). It replaced JSON: on a 92k-entry image, `JSON.stringify` plus
 * UTF-8 encoding in the worker and decoding plus `JSON.parse` in the caller
 * cost ~1 s of CPU on the two threads together.
 *
 * Format: events one after another, little endian, no padding.
 *  - entry: u8 `1`, u8 type (index in {@linkcode EVENT_TYPES}), u8 presence
 *    bits (`1` typeflag, `2` sparse, `4` xattrs, `8` pax); seven f64: size,
 *    mode, uid, gid, mtime, devmajor, devminor (any value, NaN too); the
 *    strings name, linkname, uname, gname, then typeflag when present (each
 *    a u32 byte length and UTF-8; the parser's strings are valid UTF-8 or
 *    latin1, so they come back exactly); the sparse map when present (u32
 *    count, then f64 offset and size per region); xattrs when present (a
 *    string: JSON, a binary value as `{"$u8": [..]}`); pax records when
 *    present (a string: JSON);
 *  - entry end: u8 `2`; with the content's sha256: u8 `3` and 64 hex digits;
 *  - hole: u8 `4`, f64 length;
 *  - content: u8 `5`, u32 length and the bytes (small content travels inside
 *    the batch; larger content comes in `DATA` records between batches).
 *
 * @module
 */
import type { TarEntryHeader, TarEntryType } from "../../tar/header.ts";
import type { TarHandler } from "../../tar/parser.ts";

/**
 * Entry types by their code in an entry event.
 *
 * @example
 * ```ts
 * EVENT_TYPES.indexOf("dir"); // 5
 * ```
 */
export const EVENT_TYPES: readonly TarEntryType[] = ["file", "link", "symlink", "char", "block", "dir", "fifo", "other"];

const EV_ENTRY = 1, EV_END = 2, EV_END_DIGEST = 3, EV_HOLE = 4, EV_DATA = 5;
const HAS_TYPEFLAG = 1, HAS_SPARSE = 2, HAS_XATTRS = 4, HAS_PAX = 8;
const utf8In = new TextEncoder();
const utf8Out = new TextDecoder();
const ZEROS = new Uint8Array(65536);

/**
 * Collects events in their binary form (the worker's side).
 *
 * @example
 * ```ts
 * const w = new EventWriter();
 * w.entry(header);
 * w.end();
 * putRecord(RecordKind.EVENTS, w.bytes());
 * w.clear();
 * ```
 */
export class EventWriter {
  #buf = new Uint8Array(64 << 10);
  #dv = new DataView(this.#buf.buffer);
  #len = 0;
  #count = 0;

  /** Events written since the last {@linkcode EventWriter.clear}. */
  get count(): number {
    return this.#count;
  }

  /** The events so far (a view, valid until the next call). */
  bytes(): Uint8Array {
    return this.#buf.subarray(0, this.#len);
  }

  /** Forgets the events written. */
  clear(): void {
    this.#len = 0;
    this.#count = 0;
  }

  #room(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    const b = new Uint8Array(Math.max(this.#buf.length * 2, this.#len + n));
    b.set(this.#buf.subarray(0, this.#len));
    this.#buf = b;
    this.#dv = new DataView(b.buffer);
  }

  #f64(v: number): void {
    this.#dv.setFloat64(this.#len, v, true);
    this.#len += 8;
  }

  #str(s: string): void {
    const n = s.length;
    this.#room(4 + 3 * n);
    const at = this.#len + 4;
    const b = this.#buf;
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) break;
      b[at + i] = c;
    }
    const bytes = i === n ? n : utf8In.encodeInto(s, b.subarray(at)).written!;
    this.#dv.setUint32(this.#len, bytes, true);
    this.#len = at + bytes;
  }

  /** An entry's header. */
  entry(h: TarEntryHeader): void {
    const type = EVENT_TYPES.indexOf(h.type);
    if (type < 0) throw new Error(`tar event: unknown entry type ${h.type}`);
    let xattrs: string | null = null;
    for (const _ in h.xattrs) {
      xattrs = JSON.stringify(h.xattrs, (_k, v) => (v instanceof Uint8Array ? { $u8: Array.from(v) } : v));
      break;
    }
    let pax: string | null = null;
    for (const _ in h.pax) {
      pax = JSON.stringify(h.pax);
      break;
    }
    const bits = (h.typeflag !== undefined ? HAS_TYPEFLAG : 0) | (h.sparse ? HAS_SPARSE : 0) | (xattrs !== null ? HAS_XATTRS : 0) | (pax !== null ? HAS_PAX : 0);
    this.#room(3 + 7 * 8);
    const b = this.#buf;
    b[this.#len] = EV_ENTRY;
    b[this.#len + 1] = type;
    b[this.#len + 2] = bits;
    this.#len += 3;
    this.#f64(h.size);
    this.#f64(h.mode);
    this.#f64(h.uid);
    this.#f64(h.gid);
    this.#f64(h.mtime);
    this.#f64(h.devmajor);
    this.#f64(h.devminor);
    this.#str(h.name);
    this.#str(h.linkname);
    this.#str(h.uname);
    this.#str(h.gname);
    if (h.typeflag !== undefined) this.#str(h.typeflag);
    if (h.sparse) {
      this.#room(4 + 16 * h.sparse.length);
      this.#dv.setUint32(this.#len, h.sparse.length, true);
      this.#len += 4;
      for (const r of h.sparse) {
        this.#f64(r.offset);
        this.#f64(r.size);
      }
    }
    if (xattrs !== null) this.#str(xattrs);
    if (pax !== null) this.#str(pax);
    this.#count++;
  }

  /** The end of the current entry; `sha256hex`: its content's digest. */
  end(sha256hex?: string): void {
    this.#room(65);
    if (sha256hex === undefined) this.#buf[this.#len++] = EV_END;
    else {
      this.#buf[this.#len++] = EV_END_DIGEST;
      for (let i = 0; i < 64; i++) this.#buf[this.#len + i] = sha256hex.charCodeAt(i);
      this.#len += 64;
    }
    this.#count++;
  }

  /** Bytes of the current entry's content (copied). */
  data(v: Uint8Array): void {
    this.#room(5 + v.length);
    this.#buf[this.#len] = EV_DATA;
    this.#dv.setUint32(this.#len + 1, v.length, true);
    this.#buf.set(v, this.#len + 5);
    this.#len += 5 + v.length;
    this.#count++;
  }

  /** A hole of `length` zero bytes in a sparse file's content. */
  hole(length: number): void {
    this.#room(9);
    this.#buf[this.#len++] = EV_HOLE;
    this.#f64(length);
    this.#count++;
  }
}

/** Reads events (the caller's side); `payload` may be a view of shared memory. */
class EventReader {
  private readonly dv: DataView;
  at = 0;

  constructor(private readonly b: Uint8Array) {
    this.dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

  u8(): number {
    if (this.at >= this.b.length) throw new Error("tar event: truncated");
    return this.b[this.at++];
  }

  f64(): number {
    const v = this.dv.getFloat64(this.at, true);
    this.at += 8;
    return v;
  }

  u32(): number {
    const v = this.dv.getUint32(this.at, true);
    this.at += 4;
    return v;
  }

  str(): string {
    const n = this.u32();
    const at = this.at;
    const end = at + n;
    if (end > this.b.length) throw new Error("tar event: truncated");
    this.at = end;
    if (n === 0) return "";
    const b = this.b;
    if (n <= 128) {
      let s = "";
      for (let i = at; i < end; i++) {
        const c = b[i];
        if (c > 0x7f) return utf8Out.decode(b.slice(at, end));
        s += String.fromCharCode(c);
      }
      return s;
    }
    return utf8Out.decode(b.slice(at, end)); // a copy: the decoder may not take shared memory
  }
}

/** `{"$u8": [..]}` back to bytes. */
function reviveBytes(_k: string, v: unknown): unknown {
  if (v !== null && typeof v === "object" && Array.isArray((v as { $u8?: unknown }).$u8)) return Uint8Array.from((v as { $u8: number[] }).$u8);
  return v;
}

function readEntry(r: EventReader): TarEntryHeader {
  const type = EVENT_TYPES[r.u8()];
  const bits = r.u8();
  if (type === undefined) throw new Error("tar event: bad entry type");
  const size = r.f64(), mode = r.f64(), uid = r.f64(), gid = r.f64(), mtime = r.f64(), devmajor = r.f64(), devminor = r.f64();
  const name = r.str(), linkname = r.str(), uname = r.str(), gname = r.str();
  const h: TarEntryHeader = { name, type, size, mode, uid, gid, uname, gname, mtime, linkname, devmajor, devminor, xattrs: {}, pax: {} };
  if (bits & HAS_TYPEFLAG) h.typeflag = r.str();
  if (bits & HAS_SPARSE) {
    const n = r.u32();
    const regions = new Array(n);
    for (let k = 0; k < n; k++) regions[k] = { offset: r.f64(), size: r.f64() };
    h.sparse = regions;
  }
  if (bits & HAS_XATTRS) h.xattrs = JSON.parse(r.str(), reviveBytes);
  if (bits & HAS_PAX) h.pax = JSON.parse(r.str());
  return h;
}

/**
 * Calls `handler` for each event of an `EVENTS` payload (a hole goes to
 * `hole`, or as zero `data` to a handler without one; content is handed
 * over as views of `payload`, valid during the call).
 *
 * @example
 * ```ts
 * replayEvents(record.payload, new LayerApplier(state, "layer sha256:ab.."));
 * ```
 */
export function replayEvents(payload: Uint8Array, handler: TarHandler): void {
  const r = new EventReader(payload);
  while (r.at < payload.length) {
    const kind = r.u8();
    if (kind === EV_ENTRY) handler.entry(readEntry(r));
    else if (kind === EV_END) handler.entryEnd();
    else if (kind === EV_END_DIGEST) {
      const at = r.at;
      r.at += 64;
      if (r.at > payload.length) throw new Error("tar event: truncated");
      let hex = "";
      for (let i = at; i < at + 64; i++) hex += String.fromCharCode(payload[i]);
      handler.contentDigest?.(hex);
      handler.entryEnd();
    } else if (kind === EV_DATA) {
      const n = r.u32();
      const at = r.at;
      r.at += n;
      if (r.at > payload.length) throw new Error("tar event: truncated");
      handler.data(payload.subarray(at, at + n));
    } else if (kind === EV_HOLE) {
      let len = r.f64();
      if (handler.hole) handler.hole(len);
      else {
        while (len > 0) {
          const k = Math.min(len, ZEROS.length);
          handler.data(ZEROS.subarray(0, k));
          len -= k;
        }
      }
    } else throw new Error(`tar event: unknown kind ${kind}`);
  }
}
