/**
 * Streaming gzip decoder as a synchronous {@linkcode ByteSink} stage.
 *
 * Gzip framing (RFC 1952) is handled here: member headers (FEXTRA, FNAME,
 * FCOMMENT, FHCRC), the CRC-32 and ISIZE trailer of every member (verified),
 * and concatenated members. The raw DEFLATE data is inflated by fflate's
 * streaming `Inflate`. Like Go's gzip reader (used by umoci), anything after
 * a member that is not another gzip member is an error, as is a stream that
 * ends inside a member. Errors are `EDECOMPRESS`.
 *
 * @module
 */
import zlib from "node:zlib";
import { Inflate } from "fflate";
import { OcigenError } from "../errors.ts";
import type { ByteSink } from "../stream/sink.ts";

type Crc = (data: Uint8Array, value: number) => number;

let crcTable: Uint32Array | undefined;
function jsCrc32(data: Uint8Array, value: number): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = ~value >>> 0;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/**
 * CRC-32 (gzip polynomial): native `zlib.crc32` when the runtime has it.
 *
 * @example
 * ```ts
 * crc32(new TextEncoder().encode("hello"), 0); // 907060870
 * ```
 */
export const crc32: Crc = typeof (zlib as { crc32?: Crc }).crc32 === "function"
  ? (d, v) => (zlib as unknown as { crc32: Crc }).crc32(d, v) >>> 0
  : jsCrc32;

const enum G {
  Header,
  Body,
  Trailer,
}

interface FflateInflateState {
  f?: number;
  l?: unknown;
  p?: number;
}
interface FflateInflate {
  s: FflateInflateState;
  p: Uint8Array;
  push(chunk: Uint8Array, final?: boolean): void;
}

/** Parses a gzip member header at the start of `b`; returns its length, or -1 if more bytes are needed. */
function gzipHeaderLength(b: Uint8Array): number {
  if (b.length < 10) {
    // check what we have early so garbage fails fast
    if ((b.length > 0 && b[0] !== 0x1f) || (b.length > 1 && b[1] !== 0x8b) || (b.length > 2 && b[2] !== 8)) return -2;
    return -1;
  }
  if (b[0] !== 0x1f || b[1] !== 0x8b || b[2] !== 8) return -2;
  const flg = b[3];
  if (flg & 0xe0) return -2;
  let p = 10;
  if (flg & 4) {
    if (b.length < p + 2) return -1;
    p += 2 + (b[p] | (b[p + 1] << 8));
  }
  if (flg & 8) {
    while (p < b.length && b[p] !== 0) p++;
    if (p >= b.length) return -1;
    p++;
  }
  if (flg & 16) {
    while (p < b.length && b[p] !== 0) p++;
    if (p >= b.length) return -1;
    p++;
  }
  if (flg & 2) p += 2;
  return p <= b.length ? p : -1;
}

/**
 * A gzip decoder stage: push compressed bytes, decompressed bytes go to `sink`.
 *
 * @example
 * ```ts
 * const out = new CollectSink();
 * const d = new GzipDecoder(out);
 * d.write(gzipSync(new TextEncoder().encode("hi")));
 * d.end(); // out.bytes() = "hi"
 * ```
 */
export class GzipDecoder implements ByteSink {
  private state = G.Header;
  private pending: Uint8Array = new Uint8Array(0);
  private inflate: FflateInflate | null = null;
  private crc = 0;
  private isize = 0;
  private members = 0;
  private sinkError: unknown = undefined;
  private trailer = new Uint8Array(8);
  private trailerFill = 0;
  /** Compressed bytes consumed. */
  bytesIn = 0;
  /** Decompressed bytes produced. */
  bytesOut = 0;

  constructor(private readonly sink: ByteSink, private readonly what = "gzip stream") {}

  private fail(why: string, cause?: unknown): never {
    throw new OcigenError("EDECOMPRESS", `Cannot decompress ${this.what}: ${why}`, cause ? { cause } : undefined);
  }

  private newInflate(): FflateInflate {
    const inf = new Inflate((chunk: Uint8Array) => {
      if (chunk.length === 0) return;
      this.crc = crc32(chunk, this.crc);
      this.isize = (this.isize + chunk.length) >>> 0;
      this.bytesOut += chunk.length;
      try {
        this.sink.write(chunk);
      } catch (e) {
        this.sinkError = e;
        throw e;
      }
    }) as unknown as FflateInflate;
    return inf;
  }

  write(chunk: Uint8Array): void {
    this.bytesIn += chunk.length;
    this.feed(chunk);
  }

  private feed(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.state === G.Header) {
        const buf = this.pending.length ? concat(this.pending, chunk.subarray(i)) : chunk.subarray(i);
        const n = gzipHeaderLength(buf);
        if (n === -2) this.fail(this.members ? "trailing data after the last gzip member" : "not in gzip format");
        if (n === -1) {
          if (buf.length > 1 << 20) this.fail("gzip header too long");
          this.pending = buf.slice();
          return;
        }
        // bytes of `chunk` used by the header
        const used = n - this.pending.length;
        this.pending = new Uint8Array(0);
        i += used;
        this.inflate = this.newInflate();
        this.crc = 0;
        this.isize = 0;
        this.state = G.Body;
      } else if (this.state === G.Body) {
        const rest = chunk.subarray(i);
        i = chunk.length;
        this.pushInflate(rest, false);
      } else {
        const take = Math.min(8 - this.trailerFill, chunk.length - i);
        this.trailer.set(chunk.subarray(i, i + take), this.trailerFill);
        this.trailerFill += take;
        i += take;
        if (this.trailerFill === 8) this.memberDone();
      }
    }
  }

  private pushInflate(data: Uint8Array, final: boolean): void {
    const inf = this.inflate!;
    try {
      inf.push(data, final);
    } catch (e) {
      if (e instanceof OcigenError || e === this.sinkError) throw e;
      const msg = (e as Error)?.message ?? String(e);
      this.fail(/unexpected EOF/i.test(msg) ? "unexpected end of data (truncated)" : `corrupt deflate data (${msg})`, e);
    }
    const s = inf.s;
    if (s.f && !s.l) {
      // end of the DEFLATE stream: what follows is the trailer (and maybe more members)
      const after = inf.p.subarray(((s.p ?? 0) + 7) >> 3).slice();
      this.inflate = null;
      this.state = G.Trailer;
      this.trailerFill = 0;
      if (after.length) this.feed(after);
    }
  }

  private memberDone(): void {
    const t = this.trailer;
    const crc = (t[0] | (t[1] << 8) | (t[2] << 16) | (t[3] << 24)) >>> 0;
    const isize = (t[4] | (t[5] << 8) | (t[6] << 16) | (t[7] << 24)) >>> 0;
    if (crc !== this.crc) this.fail("CRC-32 mismatch (corrupt data)");
    if (isize !== this.isize) this.fail("length mismatch (corrupt data)");
    this.members++;
    this.state = G.Header;
  }

  end(): void {
    if (this.state === G.Body) {
      this.pushInflate(new Uint8Array(0), true);
      if (this.state === G.Body) this.fail("unexpected end of data (truncated)");
    }
    if (this.state === G.Trailer) this.fail("unexpected end of data (truncated trailer)");
    if (this.pending.length) this.fail(this.members ? "trailing data after the last gzip member" : "truncated gzip header");
    if (this.members === 0) this.fail("empty gzip stream");
    this.sink.end();
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const o = new Uint8Array(a.length + b.length);
  o.set(a);
  o.set(b, a.length);
  return o;
}
