// Streaming Zstandard (RFC 8878) decoder kernel in AssemblyScript.
//
// One instance decodes one stream of concatenated frames (zstd frames and
// skippable frames). No dictionaries. Everything lives in linear memory; no
// managed objects. The host:
//   1. calls init(windowMaxLo, windowMaxHi) once (the largest window a frame
//      may declare, in bytes, as two u32 halves), reset(...) for a new stream,
//   2. copies input bytes to inPtr() + inputLength() (at most inCapacity() in
//      total),
//   3. calls run(inputLength, final) and, for every return, hands the bytes
//      at outPtr() (outLength() of them) to its consumer, then acts on the
//      status:
//        ST_OUTPUT   -> call run() again,
//        ST_NEEDINPUT-> call shiftInput(inputLength) (moves the unconsumed tail
//                       to the start and returns its length), append, run again,
//        ST_DONE     -> the stream ended cleanly at a frame boundary (final),
//        < 0         -> an error code (E_* below; errorDetailA/B give numbers).
//
// Blocks are decoded whole: the kernel waits until a block's compressed bytes
// (at most 128 KiB) are in the input buffer, then decodes it straight into the
// window buffer. The window buffer starts at the heap base and grows (memory
// grows) with the output, up to the frame's window (or its content size if
// smaller) plus one block and a margin; when full, decoding wraps to its
// start and matches reaching further back read the end of the previous pass
// (the "previous segment"). So memory is bounded by the largest window
// declared, never by the output size.
//
// Frame content checksums (low 32 bits of XXH64) and declared content sizes
// are verified.

// ---------------------------------------------------------------- constants

const ST_NEEDINPUT: i32 = 0;
const ST_OUTPUT: i32 = 1;
const ST_DONE: i32 = 2;

const E_MAGIC: i32 = -1;
const E_GARBAGE: i32 = -2;
const E_RESERVED: i32 = -3;
const E_DICT: i32 = -4;
const E_WINDOW: i32 = -5;
const E_BTYPE: i32 = -6;
const E_BSIZE: i32 = -7;
const E_CHECKSUM: i32 = -8;
const E_TRUNC: i32 = -9;
const E_LITERALS: i32 = -10;
const E_HUFFMAN: i32 = -11;
const E_FSE: i32 = -12;
const E_SEQ: i32 = -13;
const E_OFFSET: i32 = -14;
const E_OVERFLOW: i32 = -15;
const E_NOTABLE: i32 = -16;
const E_FCS: i32 = -17;
const E_MEMORY: i32 = -18;

const BLOCK_MAX: u32 = 131072;
const IN_CAP: u32 = 262144 + 4096;
const SLACK: u32 = 64;
const OUT_BATCH: u32 = 512 * 1024;

const S_FRAME: i32 = 0;
const S_SKIP: i32 = 1;
const S_FHDR: i32 = 2;
const S_BHDR: i32 = 3;
const S_BDATA: i32 = 4;
const S_CKSUM: i32 = 5;

const K_LL: i32 = 0;
const K_OF: i32 = 1;
const K_ML: i32 = 2;
const K_HW: i32 = 3;

// ---------------------------------------------------------------- memory layout

const IN_BASE: usize = memory.data(IN_CAP + 256, 64);
const LIT_BUF: usize = memory.data(BLOCK_MAX + 256, 64);
const HUF_TAB: usize = memory.data(2048 * 2, 64); // u16: symbol | bits << 8
// FSE decode entries, 8 bytes: u16 next-state base, u8 state bits, u8 value bits, u32 value base
const LL_DYN: usize = memory.data(512 * 8, 64);
const OF_DYN: usize = memory.data(512 * 8, 64);
const ML_DYN: usize = memory.data(512 * 8, 64);
const LL_PRE: usize = memory.data(64 * 8, 64);
const OF_PRE: usize = memory.data(32 * 8, 64);
const ML_PRE: usize = memory.data(64 * 8, 64);
const LL_RLE: usize = memory.data(8, 8);
const OF_RLE: usize = memory.data(8, 8);
const ML_RLE: usize = memory.data(8, 8);
const HW_TAB: usize = memory.data(64 * 8, 64);
const NORM: usize = memory.data(256 * 2, 16); // i16 normalized counts
const SYMS: usize = memory.data(512, 16); // spread symbols
const NEXT: usize = memory.data(256 * 2, 16); // u16 per-symbol next state counter
const WEIGHTS: usize = memory.data(256 + 16, 16);
const RANK: usize = memory.data(16 * 4, 16);
const XBUF: usize = memory.data(64, 16);

const LL_BASE: usize = memory.data<u32>([
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
  16, 18, 20, 22, 24, 28, 32, 40, 48, 64, 128, 256, 512, 1024, 2048, 4096,
  8192, 16384, 32768, 65536,
]);
const LL_BITS: usize = memory.data<u8>([
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  1, 1, 1, 1, 2, 2, 3, 3, 4, 6, 7, 8, 9, 10, 11, 12,
  13, 14, 15, 16,
]);
const ML_BASE: usize = memory.data<u32>([
  3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
  19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34,
  35, 37, 39, 41, 43, 47, 51, 59, 67, 83, 99, 131, 259, 515, 1027, 2051,
  4099, 8195, 16387, 32771, 65539,
]);
const ML_BITS: usize = memory.data<u8>([
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  1, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 7, 8, 9, 10, 11,
  12, 13, 14, 15, 16,
]);
const LL_DEF: usize = memory.data<i16>([
  4, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1,
  2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 2, 1, 1, 1, 1, 1,
  -1, -1, -1, -1,
]);
const ML_DEF: usize = memory.data<i16>([
  1, 4, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1,
  -1, -1, -1, -1, -1,
]);
const OF_DEF: usize = memory.data<i16>([
  1, 1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1,
]);

// XXH64 primes
const P1: u64 = 0x9E3779B185EBCA87;
const P2: u64 = 0xC2B2AE3D27D4EB4F;
const P3: u64 = 0x165667B19E3779F9;
const P4: u64 = 0x85EBCA77C2B2AE63;
const P5: u64 = 0x27D4EB2F165667C5;

// ---------------------------------------------------------------- state

let WIN: usize = 0; // window buffer start (heap base, aligned)
let capAlloc: usize = 0; // bytes of memory available from WIN
let windowMax: u64 = 0;

let state: i32 = S_FRAME;
let ip: usize = 0;
let inEnd: usize = 0;
let op: usize = 0;
let outStart: usize = 0;
let prevEnd: usize = 0; // end of the previous pass over the buffer (0: none)
let frames: u32 = 0;
let skipLeft: u32 = 0;

let effWin: usize = 0; // history a match may reach: min(window, content size)
let bufTarget: usize = 0;
let blockMax: u32 = 0;
let hasFcs: bool = false;
let fcs: u64 = 0;
let frameOut: u64 = 0;
let checksumFlag: bool = false;
let lastBlock: bool = false;
let bType: u32 = 0;
let bSize: u32 = 0;

let rep1: u32 = 1;
let rep2: u32 = 4;
let rep3: u32 = 8;
let llT: usize = 0;
let ofT: usize = 0;
let mlT: usize = 0;
let llLog: u32 = 0;
let ofLog: u32 = 0;
let mlLog: u32 = 0;
let hufValid: bool = false;
let hufBits: u32 = 0;

let ncLog: u32 = 0; // results of readNCount
let ncSyms: u32 = 0;

let xv1: u64 = 0;
let xv2: u64 = 0;
let xv3: u64 = 0;
let xv4: u64 = 0;
let xtotal: u64 = 0;
let xbufLen: u32 = 0;

let err: i32 = 0;
let detailA: f64 = 0;
let detailB: f64 = 0;

// ---------------------------------------------------------------- exports

/** Sets the window limit and builds the predefined tables. */
export function init(limitLo: u32, limitHi: u32): void {
  WIN = (__heap_base + 63) & ~(<usize>63);
  capAlloc = <usize>(<u64>memory.size() << 16) - WIN;
  windowMax = (<u64>limitHi << 32) | <u64>limitLo;
  for (let i = 0; i < 36; i++) store<i16>(NORM + (i << 1), load<i16>(LL_DEF + (i << 1)));
  buildFse(36, 6, LL_PRE, K_LL);
  for (let i = 0; i < 53; i++) store<i16>(NORM + (i << 1), load<i16>(ML_DEF + (i << 1)));
  buildFse(53, 6, ML_PRE, K_ML);
  for (let i = 0; i < 29; i++) store<i16>(NORM + (i << 1), load<i16>(OF_DEF + (i << 1)));
  buildFse(29, 5, OF_PRE, K_OF);
  reset(limitLo, limitHi);
}

/** Starts a new stream with the given window limit. */
export function reset(limitLo: u32, limitHi: u32): void {
  windowMax = (<u64>limitHi << 32) | <u64>limitLo;
  state = S_FRAME;
  ip = IN_BASE;
  inEnd = IN_BASE;
  op = WIN;
  outStart = WIN;
  prevEnd = 0;
  frames = 0;
  err = 0;
  detailA = 0;
  detailB = 0;
}

export function inPtr(): usize { return IN_BASE; }
export function inCapacity(): u32 { return IN_CAP; }
export function outPtr(): usize { return outStart; }
export function outLength(): u32 { return <u32>(op - outStart); }
export function inputConsumed(): u32 { return <u32>(ip - IN_BASE); }
export function errorDetailA(): f64 { return detailA; }
export function errorDetailB(): f64 { return detailB; }
export function frameCount(): u32 { return frames; }
export function memoryBytes(): f64 { return <f64>(<u64>memory.size() << 16); }

/** Moves the unconsumed input tail to the start; returns its length. */
export function shiftInput(inLen: u32): u32 {
  const end = IN_BASE + inLen;
  const left = <u32>(end - ip);
  if (ip != IN_BASE && left > 0) memory.copy(IN_BASE, ip, left);
  ip = IN_BASE;
  inEnd = IN_BASE + left;
  return left;
}

/** XXH64 (seed 0) of `len` bytes at `ptr` (for tests). */
export function xxh64(ptr: usize, len: u32): u64 {
  xxhReset();
  xxhUpdate(ptr, len);
  return xxhDigest();
}

// ---------------------------------------------------------------- driver

@inline function fail(code: i32): i32 {
  err = code;
  return code;
}

function needMore(final: bool): i32 {
  return final ? fail(E_TRUNC) : ST_NEEDINPUT;
}

export function run(inLen: u32, final: bool): i32 {
  if (err != 0) return err;
  inEnd = IN_BASE + inLen;
  outStart = op;
  for (;;) {
    const avail = <u32>(inEnd - ip);
    if (state == S_FRAME) {
      if (avail < 4) {
        if (final && avail == 0) return ST_DONE;
        return needMore(final);
      }
      const magic = load<u32>(ip);
      if (magic == 0xFD2FB528) {
        state = S_FHDR;
        continue;
      }
      if ((magic & 0xFFFFFFF0) == 0x184D2A50) {
        if (avail < 8) return needMore(final);
        skipLeft = load<u32>(ip + 4);
        ip += 8;
        state = S_SKIP;
        continue;
      }
      detailA = <f64>magic;
      return fail(frames == 0 ? E_MAGIC : E_GARBAGE);
    } else if (state == S_SKIP) {
      const n = avail < skipLeft ? avail : skipLeft;
      ip += n;
      skipLeft -= n;
      if (skipLeft == 0) {
        frames++;
        state = S_FRAME;
        continue;
      }
      return needMore(final);
    } else if (state == S_FHDR) {
      if (op > outStart) return ST_OUTPUT; // hand over the previous frame's tail first
      const r = frameHeader(avail);
      if (r == 1) return needMore(final);
      if (r < 0) return fail(r);
      state = S_BHDR;
    } else if (state == S_BHDR) {
      if (avail < 3) return needMore(final);
      const h = <u32>load<u16>(ip) | (<u32>load<u8>(ip + 2) << 16);
      lastBlock = (h & 1) != 0;
      bType = (h >> 1) & 3;
      bSize = h >> 3;
      if (bType == 3) return fail(E_BTYPE);
      if (bSize > blockMax) {
        detailA = <f64>bSize;
        detailB = <f64>blockMax;
        return fail(E_BSIZE);
      }
      ip += 3;
      state = S_BDATA;
    } else if (state == S_BDATA) {
      const needIn: u32 = bType == 1 ? 1 : bSize;
      if (avail < needIn) return needMore(final);
      // room for one more block
      const end = op + BLOCK_MAX + SLACK;
      if (end > WIN + bufTarget) {
        if (op > outStart) return ST_OUTPUT;
        prevEnd = op;
        op = WIN;
        outStart = WIN;
      } else if (end > WIN + capAlloc) {
        let want = (op - WIN) * 2;
        const min = end - WIN + (SLACK << 1);
        if (want < min) want = min;
        if (want < (4 << 20)) want = 4 << 20;
        if (want > bufTarget + (SLACK << 1)) want = bufTarget + (SLACK << 1);
        if (!grow(want)) return fail(E_MEMORY);
      }
      let nop: usize = 0;
      if (bType == 0) {
        memory.copy(op, ip, bSize);
        nop = op + bSize;
      } else if (bType == 1) {
        memory.fill(op, load<u8>(ip), bSize);
        nop = op + bSize;
      } else {
        nop = decodeBlock(ip, bSize, op);
        if (nop == 0) return err;
      }
      const n = <u32>(nop - op);
      if (checksumFlag) xxhUpdate(op, n);
      frameOut += n;
      op = nop;
      ip += needIn;
      state = lastBlock ? S_CKSUM : S_BHDR;
      if (<u32>(op - outStart) >= OUT_BATCH) return ST_OUTPUT;
    } else if (state == S_CKSUM) {
      if (hasFcs && frameOut != fcs) {
        detailA = <f64>fcs;
        detailB = <f64>frameOut;
        return fail(E_FCS);
      }
      if (checksumFlag) {
        if (avail < 4) return needMore(final);
        const want = load<u32>(ip);
        const got = <u32>xxhDigest();
        if (want != got) {
          detailA = <f64>want;
          detailB = <f64>got;
          return fail(E_CHECKSUM);
        }
        ip += 4;
      }
      frames++;
      state = S_FRAME;
    }
  }
  return ST_DONE;
}

function grow(bytes: usize): bool {
  const needEnd: u64 = <u64>WIN + <u64>bytes;
  const pages = <i32>((needEnd + 65535) >> 16) - memory.size();
  if (pages > 0 && memory.grow(pages) < 0) return false;
  capAlloc = <usize>(<u64>memory.size() << 16) - WIN;
  return true;
}

/** Parses a frame header at ip. 0: done, 1: need more input, < 0: error. */
function frameHeader(avail: u32): i32 {
  if (avail < 5) return 1;
  const fhd = <u32>load<u8>(ip + 4);
  const fcsFlag = fhd >> 6;
  const single = (fhd >> 5) & 1;
  if ((fhd >> 3) & 1) return E_RESERVED;
  const cks = (fhd >> 2) & 1;
  const dictFlag = fhd & 3;
  const dictBytes: u32 = dictFlag == 3 ? 4 : dictFlag;
  const fcsBytes: u32 = fcsFlag == 0 ? single : (<u32>1 << fcsFlag);
  const hdrLen: u32 = 5 + (single ? 0 : 1) + dictBytes + fcsBytes;
  if (avail < hdrLen) return 1;
  let p = ip + 5;
  let win: u64 = 0;
  if (!single) {
    const wd = <u32>load<u8>(p++);
    const wlog: u64 = 10 + <u64>(wd >> 3);
    const base: u64 = <u64>1 << wlog;
    win = base + (base >> 3) * <u64>(wd & 7);
  }
  let dict: u32 = 0;
  if (dictBytes == 1) dict = load<u8>(p);
  else if (dictBytes == 2) dict = load<u16>(p);
  else if (dictBytes == 4) dict = load<u32>(p);
  p += dictBytes;
  if (dict != 0) {
    detailA = <f64>dict;
    return E_DICT;
  }
  let size: u64 = 0;
  if (fcsBytes == 1) size = load<u8>(p);
  else if (fcsBytes == 2) size = <u64>load<u16>(p) + 256;
  else if (fcsBytes == 4) size = load<u32>(p);
  else if (fcsBytes == 8) size = load<u64>(p);
  hasFcs = fcsBytes > 0;
  fcs = size;
  if (single) win = size;
  if (win > windowMax) {
    detailA = <f64>win;
    detailB = <f64>windowMax;
    return E_WINDOW;
  }
  let need: u64 = win;
  if (hasFcs && size < need) need = size;
  effWin = <usize>need;
  bufTarget = <usize>need + BLOCK_MAX + (SLACK << 1);
  blockMax = win < <u64>BLOCK_MAX ? <u32>win : BLOCK_MAX;
  checksumFlag = cks != 0;
  frameOut = 0;
  op = WIN;
  outStart = WIN;
  prevEnd = 0;
  rep1 = 1;
  rep2 = 4;
  rep3 = 8;
  llT = 0;
  ofT = 0;
  mlT = 0;
  hufValid = false;
  if (checksumFlag) xxhReset();
  ip += hdrLen;
  return 0;
}

// ---------------------------------------------------------------- helpers

@inline function hsb(x: u32): u32 {
  return 31 - clz(x);
}

/** Builds an FSE decoding table from NORM[0..n) with accuracy `log`. */
function buildFse(n: u32, log: u32, tab: usize, kind: i32): bool {
  const size: u32 = 1 << log;
  let high: i32 = <i32>size - 1;
  for (let s: u32 = 0; s < n; s++) {
    const c = load<i16>(NORM + (s << 1));
    if (c == -1) {
      store<u8>(SYMS + <usize>high, <u8>s);
      high--;
      store<u16>(NEXT + (s << 1), 1);
    } else {
      store<u16>(NEXT + (s << 1), <u16>c);
    }
  }
  const step = (size >> 1) + (size >> 3) + 3;
  const mask = size - 1;
  let pos: u32 = 0;
  for (let s: u32 = 0; s < n; s++) {
    const c = <i32>load<i16>(NORM + (s << 1));
    for (let i = 0; i < c; i++) {
      store<u8>(SYMS + pos, <u8>s);
      do {
        pos = (pos + step) & mask;
      } while (<i32>pos > high);
    }
  }
  if (pos != 0) return false;
  for (let i: u32 = 0; i < size; i++) {
    const s = <u32>load<u8>(SYMS + i);
    const nx = <u32>load<u16>(NEXT + (s << 1));
    store<u16>(NEXT + (s << 1), <u16>(nx + 1));
    const nb = log - hsb(nx);
    const e = tab + (i << 3);
    store<u16>(e, <u16>((nx << nb) - size));
    store<u8>(e + 2, <u8>nb);
    let add: u32 = 0;
    let base: u32 = s;
    if (kind == K_LL) {
      add = load<u8>(LL_BITS + s);
      base = load<u32>(LL_BASE + (s << 2));
    } else if (kind == K_ML) {
      add = load<u8>(ML_BITS + s);
      base = load<u32>(ML_BASE + (s << 2));
    } else if (kind == K_OF) {
      add = s;
      base = <u32>1 << s;
    }
    store<u8>(e + 3, <u8>add);
    store<u32>(e + 4, base);
  }
  return true;
}

/**
 * Reads an FSE table description (normalized counts) from [p, end) into NORM.
 * Sets ncLog and ncSyms; returns bytes consumed, or 0 when corrupt.
 */
function readNCount(p: usize, end: usize, maxSym: u32, maxLog: u32): u32 {
  if (end <= p) return 0;
  const limit: u32 = <u32>(end - p) << 3;
  let bit: u32 = 0;
  const log = (load<u8>(p) & 15) + 5;
  bit = 4;
  if (log > maxLog) return 0;
  let remaining: i32 = 1 << log;
  let s: u32 = 0;
  while (remaining > 0) {
    if (s > maxSym || bit > limit) return 0;
    const bits = hsb(<u32>remaining + 1) + 1;
    let v = <u32>(load<u64>(p + (bit >> 3)) >> (bit & 7)) & ((<u32>1 << bits) - 1);
    const lowMask = (<u32>1 << (bits - 1)) - 1;
    const thr = (<u32>1 << bits) - 1 - (<u32>remaining + 1);
    if ((v & lowMask) < thr) {
      v &= lowMask;
      bit += bits - 1;
    } else {
      if (v > lowMask) v -= thr;
      bit += bits;
    }
    const proba = <i32>v - 1;
    remaining -= proba < 0 ? -proba : proba;
    store<i16>(NORM + (s << 1), <i16>proba);
    s++;
    if (proba == 0) {
      for (;;) {
        if (bit > limit) return 0;
        const rep = <u32>(load<u64>(p + (bit >> 3)) >> (bit & 7)) & 3;
        bit += 2;
        for (let i: u32 = 0; i < rep; i++) {
          if (s > maxSym) return 0;
          store<i16>(NORM + (s << 1), 0);
          s++;
        }
        if (rep != 3) break;
      }
    }
  }
  if (remaining != 0 || bit > limit) return 0;
  ncLog = log;
  ncSyms = s;
  return (bit + 7) >> 3;
}

/** Reads `n` bits at backward position `pos` (already decremented) of stream `bs`. */
@inline function peekBack(bs: usize, pos: i32, n: u32): u32 {
  if (pos >= 0) return <u32>((load<u64>(bs + (<usize>pos >> 3)) >> (<u64>pos & 7)) & ((<u64>1 << n) - 1));
  return slowBack(bs, pos, n);
}

function slowBack(bs: usize, pos: i32, n: u32): u32 {
  const neg = -pos;
  if (neg >= <i32>n) return 0;
  return <u32>((load<u64>(bs) << <u64>neg) & ((<u64>1 << n) - 1));
}

/** Start position (bits below the end marker) of a backward stream, -1 if bad. */
function backStart(bs: usize, len: u32): i32 {
  if (len == 0) return -1;
  const last = <u32>load<u8>(bs + len - 1);
  if (last == 0) return -1;
  return <i32>(((len - 1) << 3) + hsb(last));
}

// ---------------------------------------------------------------- Huffman

/** Reads a Huffman tree description at q (bounded by end); returns the new q or 0. */
function readHuffman(q: usize, end: usize): usize {
  if (q >= end) return 0;
  const hb = <u32>load<u8>(q);
  let n: u32 = 0;
  if (hb >= 128) {
    n = hb - 127;
    const bytes = (n + 1) >> 1;
    if (q + 1 + bytes > end) return 0;
    for (let i: u32 = 0; i < n; i++) {
      const b = <u32>load<u8>(q + 1 + (i >> 1));
      store<u8>(WEIGHTS + i, <u8>((i & 1) ? b & 15 : b >> 4));
    }
    q += 1 + bytes;
  } else {
    const csz = hb;
    const s = q + 1;
    const e = s + csz;
    if (csz == 0 || e > end) return 0;
    const used = readNCount(s, e, 15, 6);
    if (used == 0) return 0;
    if (!buildFse(ncSyms, ncLog, HW_TAB, K_HW)) return 0;
    const bs = s + used;
    if (bs >= e) return 0;
    let pos = backStart(bs, <u32>(e - bs));
    if (pos < 0) return 0;
    const log = ncLog;
    pos -= log;
    let s1 = peekBack(bs, pos, log);
    pos -= log;
    let s2 = peekBack(bs, pos, log);
    if (pos < 0) return 0;
    for (;;) {
      if (n > 253) return 0;
      let en = HW_TAB + (<usize>s1 << 3);
      store<u8>(WEIGHTS + n++, <u8>load<u32>(en + 4));
      let nb = <u32>load<u8>(en + 2);
      pos -= nb;
      s1 = <u32>load<u16>(en) + peekBack(bs, pos, nb);
      if (pos < 0) {
        store<u8>(WEIGHTS + n++, <u8>load<u32>(HW_TAB + (<usize>s2 << 3) + 4));
        break;
      }
      en = HW_TAB + (<usize>s2 << 3);
      store<u8>(WEIGHTS + n++, <u8>load<u32>(en + 4));
      nb = <u32>load<u8>(en + 2);
      pos -= nb;
      s2 = <u32>load<u16>(en) + peekBack(bs, pos, nb);
      if (pos < 0) {
        store<u8>(WEIGHTS + n++, <u8>load<u32>(HW_TAB + (<usize>s1 << 3) + 4));
        break;
      }
    }
    q = e;
  }
  if (n == 0 || n > 255) return 0;
  // weights -> code lengths; the last weight is implied
  let total: u32 = 0;
  for (let i: u32 = 0; i < 16; i++) store<u32>(RANK + (i << 2), 0);
  for (let i: u32 = 0; i < n; i++) {
    const w = <u32>load<u8>(WEIGHTS + i);
    if (w > 11) return 0;
    if (w > 0) total += <u32>1 << (w - 1);
  }
  if (total == 0) return 0;
  const maxBits = hsb(total) + 1;
  if (maxBits > 11) return 0;
  const rest = (<u32>1 << maxBits) - total;
  if ((rest & (rest - 1)) != 0) return 0;
  const lastW = hsb(rest) + 1;
  store<u8>(WEIGHTS + n, <u8>lastW);
  n++;
  for (let i: u32 = 0; i < n; i++) {
    const w = <u32>load<u8>(WEIGHTS + i);
    if (w > 0) store<u32>(RANK + (w << 2), load<u32>(RANK + (w << 2)) + 1);
  }
  // start index of each weight class: ascending weights fill from index 0
  let start: u32 = 0;
  for (let w: u32 = 1; w <= maxBits; w++) {
    const cnt = load<u32>(RANK + (w << 2));
    store<u32>(RANK + (w << 2), start);
    start += cnt << (w - 1);
  }
  if (start != (<u32>1 << maxBits)) return 0;
  for (let i: u32 = 0; i < n; i++) {
    const w = <u32>load<u8>(WEIGHTS + i);
    if (w == 0) continue;
    const at = load<u32>(RANK + (w << 2));
    const len: u32 = <u32>1 << (w - 1);
    const e = <u16>(i | ((maxBits + 1 - w) << 8));
    for (let j: u32 = 0; j < len; j++) store<u16>(HUF_TAB + ((at + j) << 1), e);
    store<u32>(RANK + (w << 2), at + len);
  }
  hufBits = maxBits;
  hufValid = true;
  return q;
}

/** Decodes one Huffman stream [bs, bs+len) into `count` bytes at dst. */
function hufStream(bs: usize, len: u32, dst: usize, count: u32): bool {
  let pos = backStart(bs, len);
  if (pos < 0) return false;
  const mb = hufBits;
  const mask: u64 = (<u64>1 << mb) - 1;
  let d = dst;
  const dend = dst + count;
  while (d < dend && pos >= <i32>mb) {
    const p = pos - <i32>mb;
    const e = <u32>load<u16>(HUF_TAB + (<usize>((load<u64>(bs + (<usize>p >> 3)) >> (<u64>p & 7)) & mask) << 1));
    store<u8>(d++, <u8>e);
    pos -= <i32>(e >> 8);
  }
  return hufTail(bs, pos, d, dend);
}

/** Decodes four interleaved Huffman streams (jump table at q) into regen bytes at LIT_BUF. */
function huf4(q: usize, csize: u32, regen: u32): bool {
  if (csize < 10) return false;
  const l1 = <u32>load<u16>(q);
  const l2 = <u32>load<u16>(q + 2);
  const l3 = <u32>load<u16>(q + 4);
  const sum: u32 = 6 + l1 + l2 + l3;
  if (sum >= csize) return false;
  const l4 = csize - sum;
  const seg = (regen + 3) >> 2;
  if (seg * 3 > regen) return false;
  const c4 = regen - seg * 3;
  const b1 = q + 6;
  const b2 = b1 + l1;
  const b3 = b2 + l2;
  const b4 = b3 + l3;
  let p1 = backStart(b1, l1);
  let p2 = backStart(b2, l2);
  let p3 = backStart(b3, l3);
  let p4 = backStart(b4, l4);
  if (p1 < 0 || p2 < 0 || p3 < 0 || p4 < 0) return false;
  const mb = <i32>hufBits;
  const mask: u64 = (<u64>1 << <u64>mb) - 1;
  let d1 = LIT_BUF;
  let d2 = d1 + seg;
  let d3 = d2 + seg;
  let d4 = d3 + seg;
  const e1 = d2;
  const e4 = d4 + c4;
  for (;;) {
    let k = p1;
    if (p2 < k) k = p2;
    if (p3 < k) k = p3;
    if (p4 < k) k = p4;
    k = k / mb;
    let r = <i32>(e1 - d1);
    if (r < k) k = r;
    r = <i32>(e4 - d4);
    if (r < k) k = r;
    if (k <= 1) break;
    for (let i = 0; i < k; i++) {
      let x = p1 - mb;
      let e = <u32>load<u16>(HUF_TAB + (<usize>((load<u64>(b1 + (<usize>x >> 3)) >> (<u64>x & 7)) & mask) << 1));
      store<u8>(d1, <u8>e);
      p1 -= <i32>(e >> 8);
      x = p2 - mb;
      e = <u32>load<u16>(HUF_TAB + (<usize>((load<u64>(b2 + (<usize>x >> 3)) >> (<u64>x & 7)) & mask) << 1));
      store<u8>(d2, <u8>e);
      p2 -= <i32>(e >> 8);
      x = p3 - mb;
      e = <u32>load<u16>(HUF_TAB + (<usize>((load<u64>(b3 + (<usize>x >> 3)) >> (<u64>x & 7)) & mask) << 1));
      store<u8>(d3, <u8>e);
      p3 -= <i32>(e >> 8);
      x = p4 - mb;
      e = <u32>load<u16>(HUF_TAB + (<usize>((load<u64>(b4 + (<usize>x >> 3)) >> (<u64>x & 7)) & mask) << 1));
      store<u8>(d4, <u8>e);
      p4 -= <i32>(e >> 8);
      d1++;
      d2++;
      d3++;
      d4++;
    }
  }
  // finish each stream from where the fast loop left it
  if (!hufTail(b1, p1, d1, e1)) return false;
  if (!hufTail(b2, p2, d2, LIT_BUF + 2 * seg)) return false;
  if (!hufTail(b3, p3, d3, LIT_BUF + 3 * seg)) return false;
  if (!hufTail(b4, p4, d4, e4)) return false;
  return true;
}

/** Decodes the last symbols of a stream into [d, dend), reading past its start as zeros; true if it ends exactly at bit 0. */
function hufTail(bs: usize, pos: i32, d: usize, dend: usize): bool {
  const mb = hufBits;
  const mask: u64 = (<u64>1 << mb) - 1;
  while (d < dend) {
    let v: u32;
    if (pos >= <i32>mb) {
      const p = pos - <i32>mb;
      v = <u32>((load<u64>(bs + (<usize>p >> 3)) >> (<u64>p & 7)) & mask);
    } else {
      if (pos <= 0) return false;
      v = <u32>((load<u64>(bs) & ((<u64>1 << pos) - 1)) << (mb - pos));
    }
    const e = <u32>load<u16>(HUF_TAB + (<usize>v << 1));
    store<u8>(d++, <u8>e);
    pos -= <i32>(e >> 8);
    if (pos < 0) return false;
  }
  return pos == 0;
}

// ---------------------------------------------------------------- blocks

/** Sets up the decoding table of one sequence kind; returns the new p or 0. */
function seqTable(kind: i32, mode: u32, p: usize, end: usize): usize {
  let tab: usize = 0;
  let log: u32 = 0;
  if (mode == 0) {
    tab = kind == K_LL ? LL_PRE : kind == K_OF ? OF_PRE : ML_PRE;
    log = kind == K_OF ? 5 : 6;
  } else if (mode == 1) {
    if (p >= end) return 0;
    const s = <u32>load<u8>(p++);
    const maxSym: u32 = kind == K_LL ? 35 : kind == K_OF ? 31 : 52;
    if (s > maxSym) return 0;
    tab = kind == K_LL ? LL_RLE : kind == K_OF ? OF_RLE : ML_RLE;
    // a one-state table: symbol s, no state bits
    store<u16>(tab, 0);
    store<u8>(tab + 2, 0);
    if (kind == K_LL) {
      store<u8>(tab + 3, load<u8>(LL_BITS + s));
      store<u32>(tab + 4, load<u32>(LL_BASE + (s << 2)));
    } else if (kind == K_ML) {
      store<u8>(tab + 3, load<u8>(ML_BITS + s));
      store<u32>(tab + 4, load<u32>(ML_BASE + (s << 2)));
    } else {
      store<u8>(tab + 3, <u8>s);
      store<u32>(tab + 4, <u32>1 << s);
    }
    log = 0;
  } else if (mode == 2) {
    const maxSym: u32 = kind == K_LL ? 35 : kind == K_OF ? 31 : 52;
    const maxLog: u32 = kind == K_OF ? 8 : 9;
    const used = readNCount(p, end, maxSym, maxLog);
    if (used == 0) return 0;
    tab = kind == K_LL ? LL_DYN : kind == K_OF ? OF_DYN : ML_DYN;
    if (!buildFse(ncSyms, ncLog, tab, kind)) return 0;
    log = ncLog;
    p += used;
  } else {
    tab = kind == K_LL ? llT : kind == K_OF ? ofT : mlT;
    if (tab == 0) {
      err = E_NOTABLE;
      return 0;
    }
    log = kind == K_LL ? llLog : kind == K_OF ? ofLog : mlLog;
  }
  if (kind == K_LL) {
    llT = tab;
    llLog = log;
  } else if (kind == K_OF) {
    ofT = tab;
    ofLog = log;
  } else {
    mlT = tab;
    mlLog = log;
  }
  return p;
}

@inline function bad(code: i32): usize {
  err = code;
  return 0;
}

/** Decodes a compressed block [src, src+size) to dst; returns the output end or 0. */
function decodeBlock(src: usize, size: u32, dst: usize): usize {
  const end = src + size;
  let p = src;
  if (size < 2) return bad(E_LITERALS);
  // ---- literals section
  const b0 = <u32>load<u8>(p);
  const lt = b0 & 3;
  const sf = (b0 >> 2) & 3;
  let regen: u32 = 0;
  let lit: usize = LIT_BUF;
  if (lt < 2) {
    let hdr: u32 = 1;
    if ((sf & 1) == 0) regen = b0 >> 3;
    else if (sf == 1) {
      regen = (b0 >> 4) | (<u32>load<u8>(p + 1) << 4);
      hdr = 2;
    } else {
      regen = (b0 >> 4) | (<u32>load<u8>(p + 1) << 4) | (<u32>load<u8>(p + 2) << 12);
      hdr = 3;
    }
    if (regen > blockMax) return bad(E_LITERALS);
    if (lt == 0) {
      if (p + hdr + regen > end) return bad(E_LITERALS);
      lit = p + hdr;
      p += hdr + regen;
    } else {
      if (p + hdr + 1 > end) return bad(E_LITERALS);
      memory.fill(LIT_BUF, load<u8>(p + hdr), regen + 32);
      p += hdr + 1;
    }
  } else {
    let csize: u32 = 0;
    let hdr: u32 = 0;
    let four = true;
    const v = load<u32>(p);
    if (sf < 2) {
      regen = (v >> 4) & 0x3FF;
      csize = (v >> 14) & 0x3FF;
      hdr = 3;
      four = sf == 1;
    } else if (sf == 2) {
      regen = (v >> 4) & 0x3FFF;
      csize = v >> 18;
      hdr = 4;
    } else {
      regen = (v >> 4) & 0x3FFFF;
      csize = (v >> 22) | (<u32>load<u8>(p + 4) << 10);
      hdr = 5;
    }
    if (regen > blockMax || regen == 0 || p + hdr + csize > end) return bad(E_LITERALS);
    let q = p + hdr;
    const lend = q + csize;
    if (lt == 2) {
      q = readHuffman(q, lend);
      if (q == 0) return bad(E_HUFFMAN);
    } else if (!hufValid) return bad(E_NOTABLE);
    const cs = <u32>(lend - q);
    if (four) {
      if (!huf4(q, cs, regen)) return bad(E_LITERALS);
    } else {
      if (!hufStream(q, cs, LIT_BUF, regen)) return bad(E_LITERALS);
    }
    p = lend;
  }
  const litEnd = lit + regen;
  // ---- sequences section header
  if (p >= end) return bad(E_SEQ);
  let nbSeq = <u32>load<u8>(p);
  if (nbSeq < 128) {
    p += 1;
  } else if (nbSeq < 255) {
    if (p + 2 > end) return bad(E_SEQ);
    nbSeq = ((nbSeq - 128) << 8) + <u32>load<u8>(p + 1);
    p += 2;
  } else {
    if (p + 3 > end) return bad(E_SEQ);
    nbSeq = <u32>load<u16>(p + 1) + 0x7F00;
    p += 3;
  }
  const oLimit = dst + blockMax;
  if (nbSeq == 0) {
    if (p != end) return bad(E_SEQ);
    if (dst + regen > oLimit) return bad(E_OVERFLOW);
    memory.copy(dst, lit, regen);
    return dst + regen;
  }
  if (p >= end) return bad(E_SEQ);
  const modes = <u32>load<u8>(p++);
  if (modes & 3) return bad(E_SEQ);
  p = seqTable(K_LL, modes >> 6, p, end);
  if (p == 0) return bad(err == E_NOTABLE ? E_NOTABLE : E_FSE);
  p = seqTable(K_OF, (modes >> 4) & 3, p, end);
  if (p == 0) return bad(err == E_NOTABLE ? E_NOTABLE : E_FSE);
  p = seqTable(K_ML, (modes >> 2) & 3, p, end);
  if (p == 0) return bad(err == E_NOTABLE ? E_NOTABLE : E_FSE);
  // ---- sequences bitstream: a 64-bit container read from its top
  // (`used` bits consumed), reloaded from memory between fields; the stream is
  // consumed exactly when ptr == bs and used == 64.
  const bs = p;
  const pos0 = backStart(bs, <u32>(end - p));
  if (pos0 < 0) return bad(E_SEQ);
  let ptr: usize = bs;
  let used: u32 = 64 - <u32>pos0;
  if (pos0 >= 64) {
    const byteOff = <u32>(pos0 - 64 + 7) >> 3;
    ptr = bs + byteOff;
    used = (byteOff << 3) + 64 - <u32>pos0;
  }
  let cont = load<u64>(ptr);
  const lT = llT;
  const oT = ofT;
  const mT = mlT;
  let llS = <u32>(((cont << <u64>used) >> 1) >> <u64>(63 - llLog));
  used += llLog;
  let ofS = <u32>(((cont << <u64>used) >> 1) >> <u64>(63 - ofLog));
  used += ofLog;
  let mlS = <u32>(((cont << <u64>used) >> 1) >> <u64>(63 - mlLog));
  used += mlLog;
  let r1 = rep1;
  let r2 = rep2;
  let r3 = rep3;
  let o = dst;
  const wrapped = prevEnd != 0;
  const win = WIN;
  // Bit budget: at the top of each sequence used <= 7 + 26 (state bits), so
  // the offset's extra bits (<= 31) fit; reload before the lengths (<= 32
  // bits) when past 32, and before the state updates.
  for (let i = nbSeq; i > 0; i--) {
    const oE = oT + (<usize>ofS << 3);
    const mE = mT + (<usize>mlS << 3);
    const lE = lT + (<usize>llS << 3);
    let n = <u32>load<u8>(oE + 3);
    const ofv = load<u32>(oE + 4) + <u32>(((cont << <u64>used) >> 1) >> <u64>(63 - n));
    used += n;
    if (used > 32) {
      if (<usize>(ptr - bs) >= <usize>(used >> 3)) {
        ptr -= used >> 3;
        used &= 7;
      } else {
        used -= <u32>(ptr - bs) << 3;
        ptr = bs;
      }
      cont = load<u64>(ptr);
    }
    n = <u32>load<u8>(mE + 3);
    const ml = load<u32>(mE + 4) + <u32>(((cont << <u64>used) >> 1) >> <u64>(63 - n));
    used += n;
    n = <u32>load<u8>(lE + 3);
    const ll = load<u32>(lE + 4) + <u32>(((cont << <u64>used) >> 1) >> <u64>(63 - n));
    used += n;
    let off: u32;
    if (ofv > 3) {
      off = ofv - 3;
      r3 = r2;
      r2 = r1;
      r1 = off;
    } else {
      const idx = ofv - (ll == 0 ? 0 : 1);
      if (idx == 0) off = r1;
      else {
        off = idx == 1 ? r2 : idx == 2 ? r3 : r1 - 1;
        if (off == 0) return bad(E_OFFSET);
        if (idx != 1) r3 = r2;
        r2 = r1;
        r1 = off;
      }
    }
    if (i > 1) {
      if (<usize>(ptr - bs) >= <usize>(used >> 3)) {
        ptr -= used >> 3;
        used &= 7;
      } else {
        used -= <u32>(ptr - bs) << 3;
        ptr = bs;
      }
      cont = load<u64>(ptr);
      n = <u32>load<u8>(lE + 2);
      llS = <u32>load<u16>(lE) + <u32>(((cont << <u64>used) >> 1) >> <u64>(63 - n));
      used += n;
      n = <u32>load<u8>(mE + 2);
      mlS = <u32>load<u16>(mE) + <u32>(((cont << <u64>used) >> 1) >> <u64>(63 - n));
      used += n;
      n = <u32>load<u8>(oE + 2);
      ofS = <u32>load<u16>(oE) + <u32>(((cont << <u64>used) >> 1) >> <u64>(63 - n));
      used += n;
    }
    // ---- execute: literals then match
    if (lit + ll > litEnd || <u64>o + <u64>ll + <u64>ml > <u64>oLimit) return bad(E_OVERFLOW);
    if (ll <= 16) {
      v128.store(o, v128.load(lit));
    } else {
      for (let k: u32 = 0; k < ll; k += 16) v128.store(o + k, v128.load(lit + k));
    }
    o += ll;
    lit += ll;
    const hist = <u32>(o - win);
    if (off > hist) {
      if (!wrapped || off > <u32>effWin) {
        detailA = <f64>off;
        detailB = <f64>(wrapped ? effWin : hist);
        return bad(E_OFFSET);
      }
      const s = prevEnd - (off - hist);
      const n1 = off - hist;
      if (n1 >= ml) {
        memory.copy(o, s, ml);
        o += ml;
        continue;
      }
      memory.copy(o, s, n1);
      o += n1;
      matchCopy(o, off, ml - n1);
      o += ml - n1;
      continue;
    }
    matchCopy(o, off, ml);
    o += ml;
  }
  if (ptr != bs || used != 64) return bad(E_SEQ);
  rep1 = r1;
  rep2 = r2;
  rep3 = r3;
  const rest = <u32>(litEnd - lit);
  if (o + rest > oLimit) return bad(E_OVERFLOW);
  memory.copy(o, lit, rest);
  return o + rest;
}

/** Copies an LZ match of `ml` bytes from `off` back (may overlap; may write 16 bytes past). */
@inline function matchCopy(o: usize, off: u32, ml: u32): void {
  const s = o - off;
  if (off >= 16) {
    if (ml <= 32) {
      v128.store(o, v128.load(s));
      v128.store(o + 16, v128.load(s + 16));
    } else if (off >= ml) {
      memory.copy(o, s, ml);
    } else {
      for (let k: u32 = 0; k < ml; k += 16) v128.store(o + k, v128.load(s + k));
    }
  } else if (off >= 8) {
    for (let k: u32 = 0; k < ml; k += 8) store<u64>(o + k, load<u64>(s + k));
  } else if (off == 1) {
    memory.fill(o, load<u8>(s), ml < 16 ? 16 : ml);
  } else {
    for (let k: usize = 0; k < 8; k++) store<u8>(o + k, load<u8>(s + k));
    if (ml > 8) {
      const off2 = <usize>(off * ((8 + off - 1) / off));
      for (let k: usize = 8; k < <usize>ml; k += 8) store<u64>(o + k, load<u64>(o + k - off2));
    }
  }
}

// ---------------------------------------------------------------- XXH64

@inline function xround(acc: u64, input: u64): u64 {
  acc += input * P2;
  acc = rotl<u64>(acc, 31);
  return acc * P1;
}

@inline function xmerge(acc: u64, val: u64): u64 {
  acc ^= xround(0, val);
  return acc * P1 + P4;
}

function xxhReset(): void {
  xv1 = P1 + P2;
  xv2 = P2;
  xv3 = 0;
  xv4 = 0 - P1;
  xtotal = 0;
  xbufLen = 0;
}

function xxhUpdate(p: usize, len: u32): void {
  xtotal += len;
  const end = p + len;
  if (xbufLen > 0) {
    let take: u32 = 32 - xbufLen;
    if (take > len) take = len;
    memory.copy(XBUF + xbufLen, p, take);
    xbufLen += take;
    p += take;
    if (xbufLen < 32) return;
    xv1 = xround(xv1, load<u64>(XBUF));
    xv2 = xround(xv2, load<u64>(XBUF + 8));
    xv3 = xround(xv3, load<u64>(XBUF + 16));
    xv4 = xround(xv4, load<u64>(XBUF + 24));
    xbufLen = 0;
  }
  let v1 = xv1;
  let v2 = xv2;
  let v3 = xv3;
  let v4 = xv4;
  while (p + 32 <= end) {
    v1 = xround(v1, load<u64>(p));
    v2 = xround(v2, load<u64>(p + 8));
    v3 = xround(v3, load<u64>(p + 16));
    v4 = xround(v4, load<u64>(p + 24));
    p += 32;
  }
  xv1 = v1;
  xv2 = v2;
  xv3 = v3;
  xv4 = v4;
  if (p < end) {
    memory.copy(XBUF, p, end - p);
    xbufLen = <u32>(end - p);
  }
}

function xxhDigest(): u64 {
  let h: u64;
  if (xtotal >= 32) {
    h = rotl<u64>(xv1, 1) + rotl<u64>(xv2, 7) + rotl<u64>(xv3, 12) + rotl<u64>(xv4, 18);
    h = xmerge(h, xv1);
    h = xmerge(h, xv2);
    h = xmerge(h, xv3);
    h = xmerge(h, xv4);
  } else {
    h = P5;
  }
  h += xtotal;
  let p = XBUF;
  const end = XBUF + xbufLen;
  while (p + 8 <= end) {
    h ^= xround(0, load<u64>(p));
    h = rotl<u64>(h, 27) * P1 + P4;
    p += 8;
  }
  if (p + 4 <= end) {
    h ^= <u64>load<u32>(p) * P1;
    h = rotl<u64>(h, 23) * P2 + P3;
    p += 4;
  }
  while (p < end) {
    h ^= <u64>load<u8>(p) * P5;
    h = rotl<u64>(h, 11) * P1;
    p++;
  }
  h ^= h >> 33;
  h *= P2;
  h ^= h >> 29;
  h *= P3;
  h ^= h >> 32;
  return h;
}
