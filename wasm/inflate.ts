// Streaming DEFLATE (RFC 1951) + gzip (RFC 1952) decoder kernel in AssemblyScript.
//
// One instance decodes one stream. Everything lives in linear memory at fixed
// offsets (laid out by init()); no managed objects. The host:
//   1. calls init(mode) once (mode 0 = gzip, possibly multi-member; 1 = raw DEFLATE),
//   2. copies input bytes to inPtr() + inputLength() (at most inCapacity() in total),
//   3. calls run(inputLength, final) and, for every return, hands the bytes at
//      outPtr() (outLength() of them) to its consumer, then acts on the status:
//        ST_OUTFULL  -> call run() again (the output buffer is recycled),
//        ST_NEEDINPUT-> call shiftInput(inputLength) (moves the unconsumed tail to
//                       the start and returns its length), append more, run again,
//        ST_DONE     -> the stream is complete,
//        < 0         -> an error code (see E_* below; errorDetail() gives numbers).
//
// Output is written into a single buffer that also serves as the 32 KiB history
// window: matches copy straight from earlier output. When the buffer is nearly
// full it is slid (the last 32 KiB moved to the front) at the next run().
//
// Decoding tables hold packed u32 entries:
//   bits 0-4   bits consumed by this entry: codeword (root or sub part) plus the
//              extra bits of a length/distance; bits 5-7 are always zero, so the
//              entry itself can be a shift count (wasm shifts mask the count)
//   bits 8-11  codeword bits alone (where the extra bits start), or, for a
//              subtable pointer, the subtable's index bits
//   bits 12-15 flags (FL_*); bit 12 is zero for every length/distance entry
//   bits 16-31 value: literal byte, length base, distance base, subtable offset

import { fillDistanceCodes, fillFixedDistLengths, fillFixedLitLengths, fillLengthCodes, PRECODE_ORDER } from "./lib/rfc1951";

// ---------------------------------------------------------------- constants

const ST_NEEDINPUT: i32 = 0;
const ST_OUTFULL: i32 = 1;
const ST_DONE: i32 = 2;

const E_MAGIC: i32 = -1;
const E_METHOD: i32 = -2;
const E_FLAGS: i32 = -3;
const E_HCRC: i32 = -4;
const E_BTYPE: i32 = -5;
const E_STORED: i32 = -6;
const E_CODE: i32 = -7;
const E_LITSYM: i32 = -8;
const E_DISTSYM: i32 = -9;
const E_FAR: i32 = -10;
const E_CRC: i32 = -11;
const E_ISIZE: i32 = -12;
const E_TRUNC: i32 = -13;
const E_GARBAGE: i32 = -14;
const E_COUNTS: i32 = -15;
const E_REPEAT: i32 = -16;
const E_NOEOB: i32 = -17;
const E_INTERNAL: i32 = -18;

const FL_LIT: u32 = 0x1000; // literal (litlen), or any precode symbol
const FL_LEN: u32 = 0x2000; // length (litlen)
const FL_SUB: u32 = 0x4000; // subtable pointer
const FL_EOB: u32 = 0x8000; // end of block (litlen)
const FL_BAD: u32 = 0x8000; // invalid symbol (distance table); in litlen: no flag at all

const LIT_BITS: u32 = 11;
const LIT_MASK: u32 = (1 << LIT_BITS) - 1;
const DIST_BITS: u32 = 8;
const DIST_MASK: u32 = (1 << DIST_BITS) - 1;
const PRE_BITS: u32 = 7;

const LIT_CAP: u32 = 8192; // entries (root 2048 + subtables; the real maximum is far lower)
const DIST_CAP: u32 = 2048;

const KIND_LIT: i32 = 0;
const KIND_DIST: i32 = 1;
const KIND_PRE: i32 = 2;

const WINDOW: u32 = 32768;
const IN_CAP: u32 = 128 * 1024;
const OUT_CAP: u32 = WINDOW + 256 * 1024;
const SLACK: u32 = 128;
const MAXMATCH: u32 = 258;
const HDR_MARGIN: u32 = 320; // worst-case dynamic block header, bytes

// states
const S_MEMBER: i32 = 0;
const S_GZHDR: i32 = 1;
const S_XLEN: i32 = 2;
const S_EXTRA: i32 = 3;
const S_NAME: i32 = 4;
const S_COMMENT: i32 = 5;
const S_HCRC: i32 = 6;
const S_BLOCK: i32 = 7;
const S_STOREDHDR: i32 = 8;
const S_STORED: i32 = 9;
const S_HUFF: i32 = 10;
const S_TRAILER: i32 = 11;
const S_DONE: i32 = 12;

// ---------------------------------------------------------------- memory layout

// Static regions (constant addresses, so loads fold the base into their offset).
const CRC_TAB: usize = memory.data(16 * 256 * 4, 64); // slice-by-16 tables
const LIT_TAB: usize = memory.data(LIT_CAP * 4, 64); // litlen table in use
const DIST_TAB: usize = memory.data(DIST_CAP * 4, 64); // distance table in use
const FLIT_TAB: usize = memory.data(2048 * 4, 64); // fixed litlen table (no subtables)
const FDIST_TAB: usize = memory.data((1 << DIST_BITS) * 4, 64); // fixed distance table
const PRE_TAB: usize = memory.data(128 * 4, 64); // precode table
const LENS: usize = memory.data(320, 64); // u8 code lengths
const COUNT: usize = memory.data(32, 16); // u16[16]
const OFFS: usize = memory.data(32, 16); // u16[16]
const SORTED: usize = memory.data(640, 16); // u16[320]
const LBASE: usize = memory.data(128, 16); // u16[29] bases, u8[29] extra bits at +64
const DBASE: usize = memory.data(128, 16); // u16[30] bases, u8[30] extra bits at +64
const IN_BASE: usize = memory.data(IN_CAP + 64, 64);
const OUT_BASE: usize = memory.data(OUT_CAP + SLACK, 64);

// ---------------------------------------------------------------- state

let mode: i32 = 0;
let state: i32 = S_MEMBER;
let members: u32 = 0;
let ip: usize = 0; // absolute pointer into IN
let inEnd: usize = 0;
let isFinal: bool = false;
let op: usize = 0; // absolute pointer into OUT
let outStart: usize = 0; // first byte not yet handed to the host
let crcPos: usize = 0; // first byte not yet folded into the CRC
let winStart: usize = 0; // earliest byte a match may reference
let bitbuf: u64 = 0;
let bitcnt: u32 = 0;
let overrun: u32 = 0; // virtual zero bytes appended past the final input
let kept: u32 = 0; // bytes at the input start that were consumed before the last shift
let lastBlock: bool = false;
let storedLeft: u32 = 0;
let flags: u32 = 0;
let skipLeft: u32 = 0;
let crc: u32 = 0; // running CRC32 (pre/post inverted form kept as ~crc)
let hcrc: u32 = 0; // CRC32 of the gzip header so far
let isize: u32 = 0;
let detailA: u32 = 0;
let detailB: u32 = 0;

// ---------------------------------------------------------------- exports

/** Lays out memory, builds constant tables; mode 0 = gzip, 1 = raw deflate. */
export function init(m: i32): void {
  // CRC32 slice-by-8 tables (reflected polynomial 0xEDB88320)
  for (let n: u32 = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = (c & 1) ? (0xEDB88320 ^ (c >>> 1)) : (c >>> 1);
    store<u32>(CRC_TAB + (<usize>n << 2), c);
  }
  for (let n: u32 = 0; n < 256; n++) {
    let c = load<u32>(CRC_TAB + (<usize>n << 2));
    for (let t: u32 = 1; t < 16; t++) {
      c = load<u32>(CRC_TAB + (<usize>(c & 0xff) << 2)) ^ (c >>> 8);
      store<u32>(CRC_TAB + (<usize>(t * 256 + n) << 2), c);
    }
  }
  initCrcCombine();
  // length and distance bases, the fixed code (RFC 1951 3.2.5-3.2.6: lib/rfc1951.ts)
  fillLengthCodes(LBASE, LBASE + 64);
  fillDistanceCodes(DBASE, DBASE + 64);
  fillFixedLitLengths(LENS);
  buildTable(LENS, 288, FLIT_TAB, LIT_BITS, KIND_LIT, 2048);
  fillFixedDistLengths(LENS);
  buildTable(LENS, 32, FDIST_TAB, DIST_BITS, KIND_DIST, 1 << DIST_BITS);

  mode = m;
  reset();
}

/** Resets the decoder to the start of a new stream (tables are kept). */
export function reset(): void {
  state = mode == 1 ? S_BLOCK : S_MEMBER;
  members = 0;
  ip = IN_BASE;
  inEnd = IN_BASE;
  kept = 0;
  op = OUT_BASE;
  outStart = OUT_BASE;
  crcPos = OUT_BASE;
  winStart = OUT_BASE;
  bitbuf = 0;
  bitcnt = 0;
  overrun = 0;
  lastBlock = false;
  crc = 0;
  isize = 0;
}

export function inPtr(): usize { return IN_BASE; }
export function inCapacity(): u32 { return IN_CAP; }
export function outPtr(): usize { return outStart; }
export function outLength(): u32 { return <u32>(op - outStart); }
/** Bytes of input consumed from the current buffer (not counting bytes kept by the last shift). */
export function inputConsumed(): i32 { return <i32>(ip - IN_BASE) - <i32>kept; }
export function errorDetailA(): u32 { return detailA; }
export function errorDetailB(): u32 { return detailB; }
export function members_(): u32 { return members; }

/**
 * Moves the unconsumed input tail to the buffer start and returns the length
 * kept. The whole bytes still held in the bit buffer are kept too (just
 * before the tail), so that a byte-aligned read (stored block, trailer) can
 * give them back to the input.
 */
export function shiftInput(inLen: u32): u32 {
  const keep = min(bitcnt >> 3, <u32>(ip - IN_BASE));
  const from = ip - keep;
  const left = <u32>(IN_BASE + inLen - from);
  if (left > 0 && from != IN_BASE) memory.copy(IN_BASE, from, left);
  ip = IN_BASE + keep;
  kept = keep;
  return left;
}

/** Standalone CRC32 over [ptr, ptr+len) continuing from `c` (0 to start). */
export function crc32(c: u32, ptr: usize, len: u32): u32 {
  return crcUpdate(c, ptr, len);
}

/** Decodes as much as possible. See the module comment for the protocol. */
export function run(inLen: u32, final: bool): i32 {
  inEnd = IN_BASE + inLen;
  isFinal = final;
  // the host has taken everything produced so far
  outStart = op;
  if (op > OUT_BASE + OUT_CAP - MAXMATCH) slide();
  const st = step();
  // fold fresh output into the CRC
  if (op > crcPos) {
    crc = crcUpdate(crc, crcPos, <u32>(op - crcPos));
    isize += <u32>(op - crcPos);
    crcPos = op;
  }
  return st;
}

// ---------------------------------------------------------------- helpers

function slide(): void {
  const from = op - WINDOW;
  const shift = from - OUT_BASE;
  memory.copy(OUT_BASE, from, WINDOW);
  op -= shift;
  outStart = op;
  crcPos = op;
  winStart = winStart - OUT_BASE > shift ? winStart - shift : OUT_BASE;
}

@inline function crcBlock(c: u32, p: usize): u32 {
    const a = load<u32>(p) ^ c;
    const b = load<u32>(p, 4);
    const d = load<u32>(p, 8);
    const e = load<u32>(p, 12);
    return load<u32>(<usize>((a << 2) & 0x3fc), CRC_TAB + (15 << 10)) ^
        load<u32>(<usize>((a >>> 6) & 0x3fc), CRC_TAB + (14 << 10)) ^
        load<u32>(<usize>((a >>> 14) & 0x3fc), CRC_TAB + (13 << 10)) ^
        load<u32>(<usize>((a >>> 22) & 0x3fc), CRC_TAB + (12 << 10)) ^
        load<u32>(<usize>((b << 2) & 0x3fc), CRC_TAB + (11 << 10)) ^
        load<u32>(<usize>((b >>> 6) & 0x3fc), CRC_TAB + (10 << 10)) ^
        load<u32>(<usize>((b >>> 14) & 0x3fc), CRC_TAB + (9 << 10)) ^
        load<u32>(<usize>((b >>> 22) & 0x3fc), CRC_TAB + (8 << 10)) ^
        load<u32>(<usize>((d << 2) & 0x3fc), CRC_TAB + (7 << 10)) ^
        load<u32>(<usize>((d >>> 6) & 0x3fc), CRC_TAB + (6 << 10)) ^
        load<u32>(<usize>((d >>> 14) & 0x3fc), CRC_TAB + (5 << 10)) ^
        load<u32>(<usize>((d >>> 22) & 0x3fc), CRC_TAB + (4 << 10)) ^
        load<u32>(<usize>((e << 2) & 0x3fc), CRC_TAB + (3 << 10)) ^
        load<u32>(<usize>((e >>> 6) & 0x3fc), CRC_TAB + (2 << 10)) ^
        load<u32>(<usize>((e >>> 14) & 0x3fc), CRC_TAB + (1 << 10)) ^
        load<u32>(<usize>((e >>> 22) & 0x3fc), CRC_TAB + (0 << 10));
}

// x^(2^k) mod P (reflected), for k = 0..31
const X2N: usize = memory.data(32 * 4, 16);

/** a * b mod P in the reflected representation (bit 31 = x^0). */
function mulModP(a: u32, b0: u32): u32 {
  if (a == 0) return 0;
  let b = b0;
  let m: u32 = 0x80000000;
  let p: u32 = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) == 0) break;
    }
    m >>>= 1;
    b = (b & 1) ? (b >>> 1) ^ 0xEDB88320 : b >>> 1;
  }
  return p;
}

/** x^(8n) mod P: the operator that appends n zero bytes to a CRC register. */
function zerosOp(n0: u32): u32 {
  let n = n0;
  let p: u32 = 0x80000000;
  let k: u32 = 3;
  while (n != 0) {
    if (n & 1) p = mulModP(load<u32>(X2N + ((k & 31) << 2)), p);
    n >>>= 1;
    k++;
  }
  return p;
}

function initCrcCombine(): void {
  let v: u32 = 0x40000000; // x^1
  for (let k = 0; k < 32; k++) {
    store<u32>(X2N + (k << 2), v);
    v = mulModP(v, v);
  }
}

function crcUpdate(c0: u32, p0: usize, len: u32): u32 {
  let c = ~c0;
  let p = p0;
  const end = p0 + len;
  while (p < end && (p & 7) != 0) {
    c = load<u32>(CRC_TAB + (<usize>((c ^ load<u8>(p)) & 0xff) << 2)) ^ (c >>> 8);
    p++;
  }
  let blocks = <u32>((end - p) >> 4);
  if (blocks >= 512) {
    // two independent streams over the two halves, then combined
    const half = blocks >> 1;
    let q = p + (<usize>half << 4);
    const qEnd = q + (<usize>half << 4);
    let c2: u32 = 0;
    while (q < qEnd) {
      c = crcBlock(c, p);
      c2 = crcBlock(c2, q);
      p += 16;
      q += 16;
    }
    c = mulModP(zerosOp(half << 4), c) ^ c2;
    p = qEnd;
    blocks -= half << 1;
  }
  const end16 = p + (<usize>blocks << 4);
  while (p < end16) {
    c = crcBlock(c, p);
    p += 16;
  }
  while (p < end) {
    c = load<u32>(CRC_TAB + (<usize>((c ^ load<u8>(p)) & 0xff) << 2)) ^ (c >>> 8);
    p++;
  }
  return ~c;
}

/** Byte-wise refill; past the end of final input, appends virtual zero bytes. */
@inline function slowRefill(): void {
  while (bitcnt <= 56) {
    if (ip < inEnd) {
      bitbuf |= <u64>load<u8>(ip) << <u64>bitcnt;
      ip++;
    } else if (isFinal) {
      overrun++;
    } else {
      break;
    }
    bitcnt += 8;
  }
}

/** True if decoding consumed bits that do not exist (virtual padding). */
@inline function overread(): bool {
  return overrun > 0 && bitcnt < (overrun << 3);
}

@inline function bits(n: u32): u32 {
  return <u32>bitbuf & ((1 << n) - 1);
}

@inline function drop(n: u32): void {
  bitbuf >>= <u64>n;
  bitcnt -= n;
}

/** Drops to a byte boundary and returns whole buffered bytes to the input. */
function alignAndUnread(): bool {
  drop(bitcnt & 7);
  const whole = bitcnt >> 3;
  if (whole < overrun) return false;
  ip -= whole - overrun;
  bitbuf = 0;
  bitcnt = 0;
  overrun = 0;
  return true;
}

/** An error, reported as truncation when it arose while reading padding. */
function fail(code: i32): i32 {
  return overread() ? E_TRUNC : code;
}

function makeEntry(sym: u32, kind: i32): u32 {
  if (kind == KIND_LIT) {
    if (sym < 256) return FL_LIT | (sym << 16);
    if (sym == 256) return FL_EOB;
    if (sym <= 285) {
      const i = sym - 257;
      return FL_LEN | (<u32>load<u16>(LBASE + (i << 1)) << 16) | <u32>load<u8>(LBASE + 64 + i);
    }
    return 0;
  }
  if (kind == KIND_DIST) {
    if (sym < 30) return (<u32>load<u16>(DBASE + (sym << 1)) << 16) | <u32>load<u8>(DBASE + 64 + sym);
    return FL_BAD;
  }
  return FL_LIT | (sym << 16);
}

@inline function reverseBits(code: u32, len: u32): u32 {
  // bit-reverse within 32 bits, then take the top `len` bits
  let v = code;
  v = ((v >>> 1) & 0x55555555) | ((v & 0x55555555) << 1);
  v = ((v >>> 2) & 0x33333333) | ((v & 0x33333333) << 2);
  v = ((v >>> 4) & 0x0F0F0F0F) | ((v & 0x0F0F0F0F) << 4);
  v = bswap<u32>(v);
  return v >>> (32 - len);
}

/** Entry for an unused slot: invalid symbol, consumes one bit. */
@inline function badEntry(kind: i32): u32 {
  return (kind == KIND_DIST ? FL_BAD : 0) | (1 << 8) | 1;
}

/** Builds a canonical Huffman decoding table; returns 0 or an error code. */
function buildTable(lens: usize, n: u32, tab: usize, root: u32, kind: i32, cap: u32): i32 {
  for (let l: u32 = 0; l < 16; l++) store<u16>(COUNT + (l << 1), 0);
  for (let s: u32 = 0; s < n; s++) {
    const l = <usize>load<u8>(lens + s);
    store<u16>(COUNT + (l << 1), load<u16>(COUNT + (l << 1)) + 1);
  }
  let left: i32 = 1;
  let max: u32 = 0;
  for (let l: u32 = 1; l < 16; l++) {
    left <<= 1;
    const c = <i32>load<u16>(COUNT + (l << 1));
    left -= c;
    if (left < 0) return E_CODE; // over-subscribed
    if (c > 0) max = l;
  }
  const rootSize: u32 = 1 << root;
  if (max == 0) {
    if (kind == KIND_PRE) return E_CODE;
    // no codes at all: every lookup is invalid
    for (let i: u32 = 0; i < rootSize; i++) store<u32>(tab + (i << 2), badEntry(kind));
    return 0;
  }
  if (left > 0) {
    // incomplete: only a single code of length 1 is tolerated (not for the precode)
    if (kind == KIND_PRE || max != 1) return E_CODE;
    for (let i: u32 = 0; i < rootSize; i++) store<u32>(tab + (i << 2), badEntry(kind));
  }
  // sort symbols by length
  let off: u32 = 0;
  for (let l: u32 = 1; l < 16; l++) {
    store<u16>(OFFS + (l << 1), <u16>off);
    off += load<u16>(COUNT + (l << 1));
  }
  for (let s: u32 = 0; s < n; s++) {
    const l = <usize>load<u8>(lens + s);
    if (l != 0) {
      const o = <usize>load<u16>(OFFS + (l << 1));
      store<u16>(SORTED + (o << 1), <u16>s);
      store<u16>(OFFS + (l << 1), <u16>(o + 1));
    }
  }
  // fill; COUNT is consumed as "codes of this length not yet placed"
  let code: u32 = 0;
  let idx: u32 = 0;
  let nextSub: u32 = rootSize;
  let curPrefix: u32 = 0xffffffff;
  let subBase: u32 = 0;
  let subBits: u32 = 0;
  const rootMask = rootSize - 1;
  for (let l: u32 = 1; l <= max; l++) {
    const cnt = <u32>load<u16>(COUNT + (l << 1));
    for (let k: u32 = 0; k < cnt; k++) {
      const sym = <u32>load<u16>(SORTED + (<usize>idx << 1));
      idx++;
      const e = makeEntry(sym, kind);
      const rev = reverseBits(code, l);
      if (l <= root) {
        const v = e + l + (l << 8);
        const step: u32 = 1 << l;
        for (let i = rev; i < rootSize; i += step) store<u32>(tab + (<usize>i << 2), v);
      } else {
        const prefix = rev & rootMask;
        if (prefix != curPrefix) {
          // size the subtable so that the remaining codes fill it
          let sb = l - root;
          let room: i32 = 1 << sb;
          while (sb + root < max) {
            room -= <i32>load<u16>(COUNT + ((sb + root) << 1));
            if (room <= 0) break;
            sb++;
            room <<= 1;
          }
          if (nextSub + (1 << sb) > cap) return E_INTERNAL;
          store<u32>(tab + (<usize>prefix << 2), FL_SUB | (nextSub << 16) | (sb << 8) | root);
          subBase = nextSub;
          subBits = sb;
          nextSub += 1 << sb;
          curPrefix = prefix;
        }
        const sl = l - root;
        const v = e + sl + (sl << 8);
        const step: u32 = 1 << sl;
        const size: u32 = 1 << subBits;
        for (let i = rev >>> root; i < size; i += step) store<u32>(tab + (<usize>(subBase + i) << 2), v);
      }
      store<u16>(COUNT + (l << 1), load<u16>(COUNT + (l << 1)) - 1);
      code++;
    }
    code <<= 1;
  }
  return 0;
}

// ---------------------------------------------------------------- block headers

/** Reads a dynamic block's code lengths and builds its tables. */
function readDynamic(): i32 {
  slowRefill();
  const hlit = bits(5) + 257; drop(5);
  const hdist = bits(5) + 1; drop(5);
  const hclen = bits(4) + 4; drop(4);
  if (hlit > 286 || hdist > 30) { detailA = hlit; detailB = hdist; return fail(E_COUNTS); }
  for (let i = 0; i < 19; i++) store<u8>(LENS + load<u8>(PRECODE_ORDER + i), 0);
  for (let i: u32 = 0; i < hclen; i++) {
    if (bitcnt < 3) slowRefill();
    store<u8>(LENS + load<u8>(PRECODE_ORDER + i), <u8>bits(3));
    drop(3);
  }
  let r = buildTable(LENS, 19, PRE_TAB, PRE_BITS, KIND_PRE, 128);
  if (r != 0) return fail(r);
  const total = hlit + hdist;
  let i: u32 = 0;
  while (i < total) {
    if (bitcnt < 14) slowRefill();
    if (overread()) return E_TRUNC;
    const e = load<u32>(PRE_TAB + (<usize>bits(PRE_BITS) << 2));
    drop(e & 31);
    const sym = e >> 16;
    if (sym < 16) {
      store<u8>(LENS + i, <u8>sym);
      i++;
      continue;
    }
    let rep: u32 = 0;
    let val: u8 = 0;
    if (sym == 16) {
      if (i == 0) return fail(E_REPEAT);
      val = load<u8>(LENS + i - 1);
      rep = 3 + bits(2); drop(2);
    } else if (sym == 17) {
      rep = 3 + bits(3); drop(3);
    } else {
      rep = 11 + bits(7); drop(7);
    }
    if (i + rep > total) return fail(E_REPEAT);
    for (let j: u32 = 0; j < rep; j++) store<u8>(LENS + i + j, val);
    i += rep;
  }
  if (overread()) return E_TRUNC;
  if (load<u8>(LENS + 256) == 0) return fail(E_NOEOB);
  r = buildTable(LENS, hlit, LIT_TAB, LIT_BITS, KIND_LIT, LIT_CAP);
  if (r != 0) return fail(r);
  // distance lengths follow the literal/length ones
  memory.copy(LENS, LENS + hlit, hdist);
  r = buildTable(LENS, hdist, DIST_TAB, DIST_BITS, KIND_DIST, DIST_CAP);
  if (r != 0) return fail(r);
  return 0;
}

// ---------------------------------------------------------------- the state machine

function available(): u32 { return <u32>(inEnd - ip); }

function step(): i32 {
  for (;;) {
    switch (state) {
      case S_MEMBER: {
        if (ip >= inEnd) {
          if (!isFinal) return ST_NEEDINPUT;
          if (members == 0) return E_TRUNC;
          state = S_DONE;
          return ST_DONE;
        }
        // like Go's gzip reader (umoci): after a member only another member may follow
        if (members > 0 && load<u8>(ip) != 0x1f) return E_GARBAGE;
        state = S_GZHDR;
        continue;
      }
      case S_GZHDR: {
        if (available() < 10) {
          if (!isFinal) return ST_NEEDINPUT;
          if (available() >= 2 && (load<u8>(ip) != 0x1f || load<u8>(ip + 1) != 0x8b)) return E_MAGIC;
          return E_TRUNC;
        }
        if (load<u8>(ip) != 0x1f || load<u8>(ip + 1) != 0x8b) return E_MAGIC;
        if (load<u8>(ip + 2) != 8) { detailA = load<u8>(ip + 2); return E_METHOD; }
        flags = load<u8>(ip + 3);
        if (flags & 0xe0) { detailA = flags; return E_FLAGS; }
        hcrc = crcUpdate(0, ip, 10);
        ip += 10;
        crc = 0;
        isize = 0;
        crcPos = op;
        winStart = op;
        state = S_XLEN;
        continue;
      }
      case S_XLEN: {
        if (!(flags & 4)) { state = S_NAME; continue; }
        if (available() < 2) return isFinal ? E_TRUNC : ST_NEEDINPUT;
        hcrc = crcUpdate(hcrc, ip, 2);
        skipLeft = <u32>load<u16>(ip);
        ip += 2;
        state = S_EXTRA;
        continue;
      }
      case S_EXTRA: {
        const n = min(skipLeft, available());
        hcrc = crcUpdate(hcrc, ip, n);
        ip += n;
        skipLeft -= n;
        if (skipLeft > 0) return isFinal ? E_TRUNC : ST_NEEDINPUT;
        state = S_NAME;
        continue;
      }
      case S_NAME:
      case S_COMMENT: {
        const bit: u32 = state == S_NAME ? 8 : 16;
        if (flags & bit) {
          const start = ip;
          while (ip < inEnd && load<u8>(ip) != 0) ip++;
          if (ip >= inEnd) {
            hcrc = crcUpdate(hcrc, start, <u32>(ip - start));
            return isFinal ? E_TRUNC : ST_NEEDINPUT;
          }
          ip++; // the terminating zero
          hcrc = crcUpdate(hcrc, start, <u32>(ip - start));
        }
        state = state == S_NAME ? S_COMMENT : S_HCRC;
        continue;
      }
      case S_HCRC: {
        if (flags & 2) {
          if (available() < 2) return isFinal ? E_TRUNC : ST_NEEDINPUT;
          const want = <u32>load<u16>(ip);
          if (want != (hcrc & 0xffff)) { detailA = want; detailB = hcrc & 0xffff; return E_HCRC; }
          ip += 2;
        }
        members++;
        lastBlock = false;
        state = S_BLOCK;
        continue;
      }
      case S_BLOCK: {
        if (lastBlock) {
          if (mode == 1) { state = S_DONE; return ST_DONE; }
          state = S_TRAILER;
          continue;
        }
        if (!isFinal && available() + (bitcnt >> 3) < HDR_MARGIN) return ST_NEEDINPUT;
        if (bitcnt < 3) slowRefill();
        if (overread() || bitcnt < 3) return E_TRUNC;
        lastBlock = (bitbuf & 1) != 0;
        const type = bits(3) >> 1;
        drop(3);
        if (type == 0) {
          if (!alignAndUnread()) return E_TRUNC;
          state = S_STOREDHDR;
          continue;
        }
        if (type == 1) {
          memory.copy(LIT_TAB, FLIT_TAB, 2048 * 4);
          memory.copy(DIST_TAB, FDIST_TAB, (1 << DIST_BITS) * 4);
        } else if (type == 2) {
          const r = readDynamic();
          if (r != 0) return r;
        } else {
          return fail(E_BTYPE);
        }
        state = S_HUFF;
        continue;
      }
      case S_STOREDHDR: {
        if (available() < 4) return isFinal ? E_TRUNC : ST_NEEDINPUT;
        const len = <u32>load<u16>(ip);
        const nlen = <u32>load<u16>(ip + 2);
        if ((len ^ 0xffff) != nlen) { detailA = len; detailB = nlen; return E_STORED; }
        ip += 4;
        storedLeft = len;
        state = S_STORED;
        continue;
      }
      case S_STORED: {
        while (storedLeft > 0) {
          const room = <u32>(OUT_BASE + OUT_CAP - op);
          if (room == 0) return ST_OUTFULL;
          const avail = available();
          if (avail == 0) return isFinal ? E_TRUNC : ST_NEEDINPUT;
          const n = min(min(storedLeft, avail), room);
          memory.copy(op, ip, n);
          op += n;
          ip += n;
          storedLeft -= n;
        }
        state = S_BLOCK;
        continue;
      }
      case S_HUFF: {
        const r = decodeHuffman();
        if (r != ST_DONE) return r;
        state = S_BLOCK;
        continue;
      }
      case S_TRAILER: {
        if (bitcnt > 0 || overrun > 0) {
          if (!alignAndUnread()) return E_TRUNC;
        }
        if (available() < 8) return isFinal ? E_TRUNC : ST_NEEDINPUT;
        if (op > crcPos) {
          crc = crcUpdate(crc, crcPos, <u32>(op - crcPos));
          isize += <u32>(op - crcPos);
          crcPos = op;
        }
        const wantCrc = load<u32>(ip);
        const wantSize = load<u32>(ip + 4);
        if (wantCrc != crc) { detailA = wantCrc; detailB = crc; return E_CRC; }
        if (wantSize != isize) { detailA = wantSize; detailB = isize; return E_ISIZE; }
        ip += 8;
        crc = 0;
        isize = 0;
        state = S_MEMBER;
        continue;
      }
      default:
        return ST_DONE;
    }
  }
}

// ---------------------------------------------------------------- Huffman data

/**
 * Decodes literal/length + distance symbols until end of block (ST_DONE),
 * input exhausted (ST_NEEDINPUT), output full (ST_OUTFULL) or an error.
 */
function decodeHuffman(): i32 {
  // ---- fast loop: locals only, no bounds checks inside an iteration.
  // `bc` keeps garbage above bit 5 (entries are subtracted whole); only
  // bc & 63 is meaningful, and wasm shifts use the count modulo 64 / 32.
  let lp = ip;
  let o = op;
  let bb = bitbuf;
  let bc = bitcnt;
  const ws = winStart;
  const inFast = inEnd - 16;
  const outFast = OUT_BASE + OUT_CAP - MAXMATCH - 8;
  let status: i32 = -100; // -100: continue with the careful loop
  // The next litlen entry is looked up before the refill/copy that precedes
  // its use: a refill only adds bits above the valid ones, so the low bits
  // (and the entry) stay the same, and at least 16 real bits are always there.
  if (lp < inFast) {
    // real bits above the valid ones are only guaranteed after a wide refill
    bb |= load<u64>(lp) << <u64>bc;
    lp += ((~bc) >> 3) & 7;
    bc |= 56;
  }
  let e = load<u32>(LIT_TAB + (<usize>(<u32>bb & LIT_MASK) << 2));
  while (lp < inFast && o < outFast) {
    bb |= load<u64>(lp) << <u64>bc;
    lp += ((~bc) >> 3) & 7;
    bc |= 56;
    if (e & FL_SUB) {
      bb >>= <u64>LIT_BITS;
      bc -= LIT_BITS;
      e = load<u32>(LIT_TAB + (<usize>((e >> 16) + (<u32>bb & ((1 << (e >> 8)) - 1))) << 2));
    }
    if (e & FL_LIT) {
      bb >>= <u64>e;
      bc -= e;
      store<u8>(o, <u8>(e >> 16));
      o++;
      // >= 41 bits remain: a second and a third literal need no refill
      e = load<u32>(LIT_TAB + (<usize>(<u32>bb & LIT_MASK) << 2));
      if (!(e & FL_LIT)) continue;
      bb >>= <u64>e;
      bc -= e;
      store<u8>(o, <u8>(e >> 16));
      o++;
      e = load<u32>(LIT_TAB + (<usize>(<u32>bb & LIT_MASK) << 2));
      if (!(e & FL_LIT)) continue;
      bb >>= <u64>e;
      bc -= e;
      store<u8>(o, <u8>(e >> 16));
      o++;
      e = load<u32>(LIT_TAB + (<usize>(<u32>bb & LIT_MASK) << 2));
      continue;
    }
    if (e & FL_LEN) {
      const length = (e >> 16) + ((<u32>bb & ((1 << e) - 1)) >> (e >> 8));
      bb >>= <u64>e;
      bc -= e;
      // <= 20 bits used since the refill: >= 36 remain, a distance needs <= 28
      let d = load<u32>(DIST_TAB + (<usize>(<u32>bb & DIST_MASK) << 2));
      if (d & (FL_SUB | FL_BAD)) {
        if (d & FL_BAD) { status = E_DISTSYM; break; }
        bb >>= <u64>DIST_BITS;
        bc -= DIST_BITS;
        d = load<u32>(DIST_TAB + (<usize>((d >> 16) + (<u32>bb & ((1 << (d >> 8)) - 1))) << 2));
        if (d & FL_BAD) { status = E_DISTSYM; break; }
      }
      const dist = (d >> 16) + ((<u32>bb & ((1 << d) - 1)) >> (d >> 8));
      bb >>= <u64>d;
      bc -= d;
      if (<usize>dist > o - ws) { detailA = dist; detailB = <u32>(o - ws); status = E_FAR; break; }
      e = load<u32>(LIT_TAB + (<usize>(<u32>bb & LIT_MASK) << 2));
      copyMatch(o, dist, length);
      o += length;
      continue;
    }
    if (e & FL_EOB) {
      bb >>= <u64>e;
      bc -= e;
      status = ST_DONE;
      break;
    }
    status = E_LITSYM;
    break;
  }
  ip = lp;
  op = o;
  bitbuf = bb;
  bitcnt = bc & 63;
  if (status != -100) return status;

  // ---- careful loop: byte-wise refills, output checked per symbol
  for (;;) {
    if (op > OUT_BASE + OUT_CAP - MAXMATCH) return ST_OUTFULL;
    if (bitcnt < 48) {
      slowRefill();
      if (bitcnt < 48 && !isFinal) return ST_NEEDINPUT;
    }
    if (overread()) return E_TRUNC;
    let e = load<u32>(LIT_TAB + (<usize>(<u32>bitbuf & LIT_MASK) << 2));
    if (e & FL_SUB) {
      drop(LIT_BITS);
      e = load<u32>(LIT_TAB + (<usize>((e >> 16) + (<u32>bitbuf & ((1 << ((e >> 8) & 15)) - 1))) << 2));
    }
    const n = e & 31;
    if (e & FL_LIT) {
      drop(n);
      store<u8>(op, <u8>(e >> 16));
      op++;
      continue;
    }
    if (e & FL_EOB) {
      drop(n);
      if (overread()) return E_TRUNC;
      return ST_DONE;
    }
    if (!(e & FL_LEN)) { drop(n); return fail(E_LITSYM); }
    const length = (e >> 16) + ((<u32>bitbuf & ((1 << n) - 1)) >> ((e >> 8) & 15));
    drop(n);
    let d = load<u32>(DIST_TAB + (<usize>(<u32>bitbuf & DIST_MASK) << 2));
    if (d & FL_SUB) {
      drop(DIST_BITS);
      d = load<u32>(DIST_TAB + (<usize>((d >> 16) + (<u32>bitbuf & ((1 << ((d >> 8) & 15)) - 1))) << 2));
    }
    const dn = d & 31;
    if (d & FL_BAD) { drop(dn); return fail(E_DISTSYM); }
    const dist = (d >> 16) + ((<u32>bitbuf & ((1 << dn) - 1)) >> ((d >> 8) & 15));
    drop(dn);
    if (overread()) return E_TRUNC;
    if (<usize>dist > op - winStart) { detailA = dist; detailB = <u32>(op - winStart); return fail(E_FAR); }
    copyMatch(op, dist, length);
    op += length;
  }
  return E_INTERNAL; // unreachable
}

/**
 * Copies `length` bytes from `dist` back. May write up to 16 bytes past the
 * end (the output buffer has slack); those bytes are overwritten later.
 */
@inline function copyMatch(dst: usize, dist: u32, length: u32): void {
  let o = dst;
  let s = dst - dist;
  const end = dst + length;
  if (dist >= 16) {
    do {
      v128.store(o, v128.load(s));
      o += 16;
      s += 16;
    } while (o < end);
  } else if (dist >= 8) {
    do {
      store<u64>(o, load<u64>(s));
      o += 8;
      s += 8;
    } while (o < end);
  } else if (dist == 1) {
    const v = i8x16.splat(load<u8>(s));
    do {
      v128.store(o, v);
      o += 16;
    } while (o < end);
  } else {
    // short period: build 16 bytes of the pattern byte by byte, then copy
    // with a distance that is a multiple of the period and >= 8
    for (let i = 0; i < 16; i++) store<u8>(o + i, load<u8>(s + i));
    if (length > 16) {
      const k: u32 = (8 + dist - 1) / dist * dist;
      o += 16;
      s = o - k;
      do {
        store<u64>(o, load<u64>(s));
        o += 8;
        s += 8;
      } while (o < end);
    }
  }
}
