// DEFLATE (RFC 1951) encoder kernel in AssemblyScript: one block of a
// parallel gzip stream per call (src/compress/deflate-block.ts).
//
// The host:
//   1. calls init() once (constant tables),
//   2. calls reserve(n) for an input of n bytes: it grows memory if needed and
//      returns the input pointer; the host copies its bytes there,
//   3. calls deflate(dict, n, final, level): the first `dict` bytes are the
//      history (the previous block's tail) that matches may reference but that
//      is not encoded; it returns the length of the raw DEFLATE output at
//      outPtr(). With `final` the last block has BFINAL set and the output is
//      padded to a byte; without it the output ends in an empty stored block
//      (a sync flush), byte-aligned, so that blocks concatenate.
//
// Match finding over 4-byte prefixes (HASH_BITS of hash); matches shorter
// than 4 bytes are not searched for. Levels 1-3 are greedy over a table of
// two-way buckets (the two newest positions per hash, in one cache line), and
// skip ahead through data without matches; levels 4-9 follow hash chains (one
// link per window position) to a depth that the level sets, with one step of
// lazy evaluation, as zlib's levels 4+ do.
//
// Blocks: symbols are collected, up to SYM_CAP per DEFLATE block, as u32:
//   bits 0-7   the literal byte, or the match length - 3
//   bits 8-23  the match distance (0 for a literal)
//   bits 24-28 the distance's code (tallied once, written from here)
// and each block is written as whichever of dynamic Huffman, fixed Huffman or
// stored is the smallest, computed exactly before anything is written.
// Huffman code lengths come from the Moffat-Katajainen in-place algorithm over
// the symbols sorted by frequency, then limited to 15 bits (7 for the code
// length code) by moving leaves down until the Kraft sum is one.
//
// Output goes through a 64-bit bit buffer, flushed after each symbol with an
// unaligned 8-byte store (the output region keeps SLACK bytes past its bound).

import { DISTANCE_CODES, fillDistanceCodes, fillFixedDistLengths, fillFixedLitLengths, fillLengthCodes, LENGTH_CODES, PRECODE_ORDER, precodeExtra } from "./lib/rfc1951";

// ---------------------------------------------------------------- constants

const WINDOW: u32 = 32768;
const WMASK: u32 = WINDOW - 1;
const HASH_BITS: u32 = 16;
const HASH_SIZE: u32 = 1 << HASH_BITS;
const MIN_MATCH: u32 = 4;
const MAX_MATCH: u32 = 258;
const SYM_CAP: u32 = 32768; // symbols per DEFLATE block (blocks are cut 300 short: see the loops)
const SKIP_AFTER: u32 = 64; // greedy levels: positions without a match in a row before positions are skipped
const SKIP_SHIFT: u32 = 6; // then skip misses >> SKIP_SHIFT positions after each miss
const SLACK: usize = 64; // readable bytes past the input, writable bytes past the output bound

// ---------------------------------------------------------------- memory layout

const HEAD: usize = memory.data(HASH_SIZE * 4, 64); // u32 most recent position per hash (lazy levels)
const BUCKETS: usize = memory.data(HASH_SIZE * 8, 64); // u32 pairs: the two most recent positions per hash (greedy levels)
const PREV: usize = memory.data(WINDOW * 4, 64); // u32 previous position with the same hash, by pos & WMASK
const SYMS: usize = memory.data(SYM_CAP * 4, 64); // u32 symbols of the block being collected
const LFREQ: usize = memory.data(288 * 4, 16); // u32 literal/length frequencies
const DFREQ: usize = memory.data(32 * 4, 16); // u32 distance frequencies
const CFREQ: usize = memory.data(19 * 4, 16); // u32 code length code frequencies
const LLEN: usize = memory.data(288, 16); // u8 code lengths in use
const DLEN: usize = memory.data(32, 16);
const CLEN: usize = memory.data(19, 16);
const LCODE: usize = memory.data(288 * 2, 16); // u16 bit-reversed codes in use
const DCODE: usize = memory.data(32 * 2, 16);
const CCODE: usize = memory.data(19 * 2, 16);
const FLLEN: usize = memory.data(288, 16); // fixed code (RFC 1951 3.2.6)
const FDLEN: usize = memory.data(32, 16);
const FLCODE: usize = memory.data(288 * 2, 16);
const FDCODE: usize = memory.data(32 * 2, 16);
const LSYM: usize = memory.data(260, 16); // u8 length code index (0-28) by match length
const DSYM_LO: usize = memory.data(256, 16); // u8 distance code by distance - 1, below 256
const DSYM_HI: usize = memory.data(256, 16); // u8 distance code by (distance - 1) >> 7
const LBASE: usize = memory.data(29 * 2, 16); // u16
const LEXTRA: usize = memory.data(32, 16); // u8
const DBASE: usize = memory.data(30 * 2, 16); // u16
const DEXTRA: usize = memory.data(32, 16); // u8
const LENS_ALL: usize = memory.data(320, 16); // u8 litlen + distance lengths, for the header's run-length code
const RLE: usize = memory.data(320 * 2, 16); // u16 run-length symbols: sym | extra << 8
const SORT: usize = memory.data(288 * 4, 16); // u32 freq << 16 | symbol
const WORK: usize = memory.data(288 * 4, 16); // i32 Moffat-Katajainen array
const BLCOUNT: usize = memory.data(33 * 4, 16); // u32 codes per length
const NEXTCODE: usize = memory.data(17 * 4, 16); // u32

// ---------------------------------------------------------------- state

let inBase: usize = 0; // input region (reserve())
let outBase: usize = 0; // output region, right after the input's capacity
let inCap: usize = 0;
let op: usize = 0; // next output byte
let bb: u64 = 0; // bit buffer (LSB first)
let bc: u32 = 0; // bits in bb (< 8 between symbols)
let nsym: u32 = 0;
let nrle: u32 = 0;

// ---------------------------------------------------------------- bit output

// @ts-ignore: decorator
@inline function put(v: u32, n: u32): void {
  bb |= <u64>v << bc;
  bc += n;
}

// @ts-ignore: decorator
@inline function flush(): void {
  store<u64>(op, bb);
  const n = bc >> 3;
  op += n;
  bb = bb >> (<u64>(n << 3));
  bc &= 7;
}

function alignByte(): void {
  flush();
  if (bc > 0) {
    store<u8>(op, <u8>bb);
    op += 1;
    bb = 0;
    bc = 0;
  }
}

// ---------------------------------------------------------------- tables

function reverse(code: u32, len: u32): u32 {
  let r: u32 = 0;
  for (let i: u32 = 0; i < len; i++) {
    r = (r << 1) | (code & 1);
    code >>= 1;
  }
  return r;
}

/** Canonical codes (bit-reversed, for LSB-first output) for the lengths at `lens`. */
function genCodes(lens: usize, n: u32, codes: usize): void {
  for (let i: u32 = 0; i <= 16; i++) store<u32>(BLCOUNT + (<usize>i << 2), 0);
  for (let i: u32 = 0; i < n; i++) {
    const l = <u32>load<u8>(lens + i);
    const at = BLCOUNT + (<usize>l << 2);
    store<u32>(at, load<u32>(at) + 1);
  }
  store<u32>(BLCOUNT, 0);
  let code: u32 = 0;
  for (let b: u32 = 1; b <= 16; b++) {
    code = (code + load<u32>(BLCOUNT + (<usize>(b - 1) << 2))) << 1;
    store<u32>(NEXTCODE + (<usize>b << 2), code);
  }
  for (let i: u32 = 0; i < n; i++) {
    const l = <u32>load<u8>(lens + i);
    if (l == 0) {
      store<u16>(codes + (<usize>i << 1), 0);
      continue;
    }
    const at = NEXTCODE + (<usize>l << 2);
    const c = load<u32>(at);
    store<u32>(at, c + 1);
    store<u16>(codes + (<usize>i << 1), <u16>reverse(c, l));
  }
}

/**
 * Length-limited Huffman code lengths for the `n` frequencies at `freq` (u32),
 * written as u8 at `lens`. At least two symbols get a code (an unused one is
 * given frequency 0 but a length), so every code is complete.
 */
function buildLengths(freq: usize, n: u32, maxBits: u32, lens: usize): void {
  memory.fill(lens, 0, n);
  let m: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    const f = load<u32>(freq + (<usize>i << 2));
    if (f != 0) {
      store<u32>(SORT + (<usize>m << 2), (min(f, 0xffff) << 16) | i);
      m++;
    }
  }
  // every code gets two symbols at least: a lone one (or none) is paired with symbols 0/1
  for (let i: u32 = 0; m < 2 && i < 2; i++) {
    let used = false;
    for (let k: u32 = 0; k < m; k++) if ((load<u32>(SORT + (<usize>k << 2)) & 0xffff) == i) used = true;
    if (!used) {
      store<u32>(SORT + (<usize>m << 2), i);
      m++;
    }
  }
  // insertion sort by frequency, then symbol
  for (let i: u32 = 1; i < m; i++) {
    const v = load<u32>(SORT + (<usize>i << 2));
    let j = i;
    while (j > 0 && load<u32>(SORT + (<usize>(j - 1) << 2)) > v) {
      store<u32>(SORT + (<usize>j << 2), load<u32>(SORT + (<usize>(j - 1) << 2)));
      j--;
    }
    store<u32>(SORT + (<usize>j << 2), v);
  }
  // Moffat-Katajainen: WORK[i] becomes the code length of the i-th symbol (ascending frequency)
  const A = WORK;
  for (let i: u32 = 0; i < m; i++) store<i32>(A + (<usize>i << 2), <i32>(load<u32>(SORT + (<usize>i << 2)) >>> 16));
  const N = <i32>m;
  store<i32>(A, load<i32>(A) + load<i32>(A + 4));
  let root: i32 = 0;
  let leaf: i32 = 2;
  for (let next: i32 = 1; next < N - 1; next++) {
    if (leaf >= N || load<i32>(A + (<usize>root << 2)) < load<i32>(A + (<usize>leaf << 2))) {
      store<i32>(A + (<usize>next << 2), load<i32>(A + (<usize>root << 2)));
      store<i32>(A + (<usize>root << 2), next);
      root++;
    } else {
      store<i32>(A + (<usize>next << 2), load<i32>(A + (<usize>leaf << 2)));
      leaf++;
    }
    if (leaf >= N || (root < next && load<i32>(A + (<usize>root << 2)) < load<i32>(A + (<usize>leaf << 2)))) {
      store<i32>(A + (<usize>next << 2), load<i32>(A + (<usize>next << 2)) + load<i32>(A + (<usize>root << 2)));
      store<i32>(A + (<usize>root << 2), next);
      root++;
    } else {
      store<i32>(A + (<usize>next << 2), load<i32>(A + (<usize>next << 2)) + load<i32>(A + (<usize>leaf << 2)));
      leaf++;
    }
  }
  store<i32>(A + (<usize>(N - 2) << 2), 0);
  for (let next: i32 = N - 3; next >= 0; next--) {
    store<i32>(A + (<usize>next << 2), load<i32>(A + (<usize>load<i32>(A + (<usize>next << 2)) << 2)) + 1);
  }
  let avbl: i32 = 1;
  let used: i32 = 0;
  let dpth: i32 = 0;
  root = N - 2;
  let nx: i32 = N - 1;
  while (avbl > 0) {
    while (root >= 0 && load<i32>(A + (<usize>root << 2)) == dpth) {
      used++;
      root--;
    }
    while (avbl > used) {
      store<i32>(A + (<usize>nx << 2), dpth);
      nx--;
      avbl--;
    }
    avbl = 2 * used;
    dpth++;
    used = 0;
  }
  // count lengths, fold the ones past maxBits, restore the Kraft sum
  for (let i: u32 = 0; i <= 32; i++) store<u32>(BLCOUNT + (<usize>i << 2), 0);
  for (let i: u32 = 0; i < m; i++) {
    const l = min(<u32>load<i32>(A + (<usize>i << 2)), 32);
    const at = BLCOUNT + (<usize>l << 2);
    store<u32>(at, load<u32>(at) + 1);
  }
  const top = BLCOUNT + (<usize>maxBits << 2);
  for (let i: u32 = maxBits + 1; i <= 32; i++) {
    store<u32>(top, load<u32>(top) + load<u32>(BLCOUNT + (<usize>i << 2)));
    store<u32>(BLCOUNT + (<usize>i << 2), 0);
  }
  let total: u32 = 0;
  for (let i: u32 = maxBits; i > 0; i--) total += load<u32>(BLCOUNT + (<usize>i << 2)) << (maxBits - i);
  while (total != (<u32>1 << maxBits)) {
    store<u32>(top, load<u32>(top) - 1);
    for (let i: u32 = maxBits - 1; i > 0; i--) {
      const at = BLCOUNT + (<usize>i << 2);
      if (load<u32>(at) != 0) {
        store<u32>(at, load<u32>(at) - 1);
        store<u32>(at + 4, load<u32>(at + 4) + 2);
        break;
      }
    }
    total--;
  }
  // the least frequent symbols get the longest codes
  let k: u32 = 0;
  for (let l: u32 = maxBits; l > 0; l--) {
    for (let c = load<u32>(BLCOUNT + (<usize>l << 2)); c > 0; c--) {
      store<u8>(lens + (load<u32>(SORT + (<usize>k << 2)) & 0xffff), <u8>l);
      k++;
    }
  }
}

// ---------------------------------------------------------------- exports

/** Builds the constant tables. */
export function init(): void {
  fillLengthCodes(LBASE, LEXTRA);
  fillDistanceCodes(DBASE, DEXTRA);
  // symbol lookups: length code by match length (code 27 reaches 258 too; code 28,
  // written last, is the one used), distance code by distance - 1
  for (let c: u32 = 0; c < LENGTH_CODES; c++) {
    const base = <u32>load<u16>(LBASE + (<usize>c << 1));
    const n: u32 = c == 28 ? 1 : <u32>1 << load<u8>(LEXTRA + c);
    for (let k: u32 = 0; k < n && base + k <= MAX_MATCH; k++) store<u8>(LSYM + base + k, <u8>c);
  }
  for (let c: u32 = 0; c < DISTANCE_CODES; c++) {
    const base = <u32>load<u16>(DBASE + (<usize>c << 1));
    for (let k: u32 = 0; k < (<u32>1 << load<u8>(DEXTRA + c)); k++) {
      const d = base - 1 + k; // distance - 1
      if (d < 256) store<u8>(DSYM_LO + d, <u8>c);
      else store<u8>(DSYM_HI + (d >> 7), <u8>c);
    }
  }
  fillFixedLitLengths(FLLEN);
  fillFixedDistLengths(FDLEN);
  genCodes(FLLEN, 288, FLCODE);
  genCodes(FDLEN, 32, FDCODE);
}

/**
 * Makes room for an input of `n` bytes and its worst-case output; returns the
 * input pointer (0, changing nothing, when memory cannot grow). The output
 * bound for `cap` input bytes is cap + cap / 2048 + 1024: every block stored,
 * at most 6 bytes of header per stored chunk, a chunk per 32k symbols (at
 * least a byte each) and per 64 KiB, and the final flush.
 */
export function reserve(n: u32): usize {
  if (<usize>n > inCap || inBase == 0) {
    const base = (__heap_base + 63) & ~(<usize>63);
    const cap = max(<usize>n, 1 << 16);
    const out = (base + cap + SLACK + 63) & ~(<usize>63);
    const need = <u64>out + <u64>cap + (<u64>cap >> 11) + 1024 + <u64>SLACK; // the output bound, in 64 bits
    const have = <u64>memory.size() << 16;
    if (need > have) {
      // nothing changes when memory cannot grow: the host reports it
      if (need > (<u64>1 << 32) || memory.grow(<i32>((need - have + 0xffff) >> 16)) < 0) return 0;
    }
    inBase = base;
    inCap = cap;
    outBase = out;
  }
  return inBase;
}

export function outPtr(): usize {
  return outBase;
}

function distSym(d: u32): u32 {
  const dm = d - 1;
  return dm < 256 ? <u32>load<u8>(DSYM_LO + dm) : <u32>load<u8>(DSYM_HI + (dm >> 7));
}

// @ts-ignore: decorator
@inline function tally(len: u32, dist: u32): void {
  const dc = distSym(dist);
  store<u32>(SYMS + (<usize>nsym << 2), (dc << 24) | (dist << 8) | (len - 3));
  nsym++;
  const lc = <usize>load<u8>(LSYM + len) + 257;
  store<u32>(LFREQ + (lc << 2), load<u32>(LFREQ + (lc << 2)) + 1);
  store<u32>(DFREQ + (<usize>dc << 2), load<u32>(DFREQ + (<usize>dc << 2)) + 1);
}

// @ts-ignore: decorator
@inline function literal(b: u32): void {
  store<u32>(SYMS + (<usize>nsym << 2), b);
  nsym++;
  store<u32>(LFREQ + (<usize>b << 2), load<u32>(LFREQ + (<usize>b << 2)) + 1);
}

/** Hash of the 4 bytes `v` (little-endian). */
// @ts-ignore: decorator
@inline function hashValue(v: u32): u32 {
  return (v * 0x1e35a7bd) >>> (32 - HASH_BITS);
}

// @ts-ignore: decorator
@inline function hash4(p: usize): u32 {
  return hashValue(load<u32>(p));
}

// @ts-ignore: decorator
@inline function insert(p: usize): u32 {
  const h = HEAD + (<usize>hash4(p) << 2);
  const cand = load<u32>(h);
  store<u32>(h, <u32>p);
  store<u32>(PREV + ((p & WMASK) << 2), cand);
  return cand;
}

/** Bytes that match at `a` and `b`, at most `max`. */
// @ts-ignore: decorator
@inline function matchLen(a: usize, b: usize, max: u32): u32 {
  let n: u32 = 0;
  while (n < max) {
    const x = load<u64>(a + n) ^ load<u64>(b + n);
    if (x != 0) return min(n + (<u32>ctz(x) >> 3), max);
    n += 8;
  }
  return max;
}

let bestDist: u32 = 0;

/** The longest match for position p (chain starting at cand), at least `prevLen + 1` long, else 0. */
function longest(p: usize, cand: u32, maxLen: u32, prevLen: u32, chain: u32, nice: u32): u32 {
  let best: u32 = prevLen >= MIN_MATCH - 1 ? prevLen : MIN_MATCH - 1;
  let found: u32 = 0;
  const lo = windowLow(p);
  if (best >= maxLen) return 0;
  let c = <usize>cand;
  while (c >= lo && c < p && chain > 0) {
    chain--;
    // the match must reach past best: compare the 4 bytes ending there first
    if (load<u32>(c + best - 3) == load<u32>(p + best - 3) && load<u32>(c) == load<u32>(p)) {
      const l = matchLen(c, p, maxLen);
      if (l > best) {
        best = l;
        found = l;
        bestDist = <u32>(p - c);
        if (l >= nice) break;
      }
    }
    const nx = <usize>load<u32>(PREV + ((c & WMASK) << 2));
    if (nx >= c) break;
    c = nx;
  }
  return found;
}

/**
 * Compresses the `n` bytes at the input pointer; the first `dict` of them are
 * history only. Returns the output length (at outPtr()).
 */
export function deflate(dict: u32, n: u32, final: bool, level: i32): u32 {
  op = outBase;
  bb = 0;
  bc = 0;
  nsym = 0;
  memory.fill(LFREQ, 0, 288 * 4);
  memory.fill(DFREQ, 0, 32 * 4);
  const start = inBase + dict;
  const end = inBase + n;
  // readable slack past the input: zeros, so hashes and compares near the end are defined
  memory.fill(end, 0, SLACK);
  // levels: 0 stores; 1-3 greedy on two-way hash buckets (3, the default, is
  // about umoci's ratio at ~60% of zlib level 3's time); 4-9 lazy on hash
  // chains, longer and longer
  if (level <= 0) storeBlocks(start, <u32>(end - start), final);
  else if (level == 1) fastLoop(start, end, final, false, 8);
  else if (level == 2) fastLoop(start, end, final, true, 8);
  else if (level == 3) fastLoop(start, end, final, true, 16);
  else if (level == 4) lazyLoop(start, end, final, 4, 32);
  else if (level == 5) lazyLoop(start, end, final, 8, 64);
  else if (level == 6) lazyLoop(start, end, final, 32, 128);
  else if (level == 7) lazyLoop(start, end, final, 128, 258);
  else if (level == 8) lazyLoop(start, end, final, 1024, 258);
  else lazyLoop(start, end, final, 4096, 258);
  return finish(final);
}

/** The window's lowest position a match at `p` may reach. */
// @ts-ignore: decorator
@inline function windowLow(p: usize): usize {
  return p > <usize>WINDOW + inBase ? p - WINDOW : inBase;
}

/** Bucket insert: position p becomes the newest of its hash's two. */
// @ts-ignore: decorator
@inline function bucketInsert(p: usize): void {
  const b = BUCKETS + (<usize>hash4(p) << 3);
  store<u32>(b + 4, load<u32>(b));
  store<u32>(b, <u32>p);
}

/**
 * Greedy matching (levels 1-3): at each position the newest one or two
 * earlier positions with the same 4-byte hash are tried, the longest match is
 * taken. Inside a match of up to `insMax` bytes every position is inserted,
 * after a longer one only its last two. After SKIP_AFTER positions without a
 * match (compressed or random data), positions are skipped more and more, as
 * LZ4 does; the skipped bytes are literals.
 */
function fastLoop(start: usize, end: usize, final: bool, two: bool, insMax: u32): void {
  memory.fill(BUCKETS, 0, HASH_SIZE * 8);
  for (let q = windowLow(start); q + MIN_MATCH <= start; q++) bucketInsert(q);
  let p = start;
  let misses: u32 = 0;
  let blockStart = start;
  while (p < end) {
    const left = <u32>(end - p);
    if (left < MIN_MATCH) {
      literal(<u32>load<u8>(p));
      p++;
      continue;
    }
    const maxLen = min(left, MAX_MATCH);
    const cur = load<u32>(p);
    const b = BUCKETS + (<usize>hashValue(cur) << 3);
    const c0 = <usize>load<u32>(b);
    const c1 = <usize>load<u32>(b + 4);
    store<u32>(b + 4, <u32>c0);
    store<u32>(b, <u32>p);
    const lo = windowLow(p);
    let best: u32 = 0;
    let dist: u32 = 0;
    if (c0 >= lo && load<u32>(c0) == cur) {
      best = matchLen(c0, p, maxLen);
      dist = <u32>(p - c0);
    }
    if (two && c1 >= lo && best < maxLen && load<u32>(c1) == cur) {
      const l = matchLen(c1, p, maxLen);
      if (l > best) {
        best = l;
        dist = <u32>(p - c1);
      }
    }
    if (best >= MIN_MATCH) {
      tally(best, dist);
      const e = p + best;
      if (best <= insMax) {
        for (let q = p + 1; q < e && q + MIN_MATCH <= end; q++) bucketInsert(q);
      } else if (e + MIN_MATCH <= end) {
        bucketInsert(e - 2);
        bucketInsert(e - 1);
      }
      p = e;
      misses = 0;
    } else {
      literal(cur & 0xff);
      p++;
      misses++;
      if (misses >= SKIP_AFTER) {
        // within the input (4 bytes short of its end) and the block's symbols
        const room = min(<u32>(end - p) - 1, SYM_CAP - 300 - min(nsym, SYM_CAP - 300));
        for (let skip = min(misses >> SKIP_SHIFT, room); skip > 0; skip--) {
          literal(<u32>load<u8>(p));
          p++;
        }
      }
    }
    if (nsym >= SYM_CAP - 300) {
      writeBlock(blockStart, p, false);
      blockStart = p;
    }
  }
  writeBlock(blockStart, end, final);
}

/**
 * Lazy matching (levels 4-9), as zlib's levels 4+: a match found at p is
 * held while p + 1 is searched, and dropped for a literal when p + 1 has a
 * longer one. Hash chains are followed up to `chain` links (a quarter past a
 * 32-byte match), stopping at a match of `nice` bytes.
 */
function lazyLoop(start: usize, end: usize, final: bool, chain: u32, nice: u32): void {
  memory.fill(HEAD, 0, HASH_SIZE * 4);
  for (let q = windowLow(start); q + MIN_MATCH <= start; q++) insert(q);
  let p = start;
  let blockStart = start;
  let prevLen: u32 = 0; // a match found at p - 1, not yet emitted
  let prevDist: u32 = 0;
  while (p < end) {
    const left = <u32>(end - p);
    if (left < MIN_MATCH) {
      if (prevLen > 0) {
        tally(prevLen, prevDist);
        p += prevLen - 1;
        prevLen = 0;
        continue;
      }
      literal(<u32>load<u8>(p));
      p++;
    } else {
      const cand = insert(p);
      const maxLen = min(left, MAX_MATCH);
      if (prevLen > 0) {
        // a match is pending from p - 1: take this one instead only when longer
        const l = prevLen >= nice ? 0 : longest(p, cand, maxLen, prevLen, chain >> (prevLen >= 32 ? 2 : 0), nice);
        if (l > 0) {
          literal(<u32>load<u8>(p - 1));
          prevLen = l;
          prevDist = bestDist;
          p++;
        } else {
          tally(prevLen, prevDist);
          const e = p - 1 + prevLen;
          for (let q = p + 1; q < e && q + MIN_MATCH <= end; q++) insert(q);
          p = e;
          prevLen = 0;
        }
      } else {
        const l = longest(p, cand, maxLen, 0, chain, nice);
        if (l > 0) {
          prevLen = l;
          prevDist = bestDist;
        } else {
          literal(<u32>load<u8>(p));
        }
        p++;
      }
    }
    // a lazy run adds at most one symbol per position of a growing match: 258 past the check
    if (nsym >= SYM_CAP - 300 && prevLen == 0) {
      writeBlock(blockStart, p, false);
      blockStart = p;
    }
  }
  writeBlock(blockStart, end, final);
}

/** Ends the output: padded to a byte after a final block, else a sync flush. Returns its length. */
function finish(final: bool): u32 {
  if (final) {
    alignByte();
  } else {
    // sync flush: an empty stored block, then aligned
    put(0, 3);
    alignByte();
    store<u32>(op, 0xffff0000);
    op += 4;
  }
  return <u32>(op - outBase);
}

/** Writes `len` input bytes at `at` as stored blocks of at most 65535 bytes; the last is final with `last`. */
function storeBlocks(at: usize, len: u32, last: bool): void {
  let left = len;
  do {
    const c = min(left, 65535);
    left -= c;
    put(last && left == 0 ? 1 : 0, 3);
    alignByte();
    store<u32>(op, c | ((~c & 0xffff) << 16));
    op += 4;
    memory.copy(op, at, c);
    op += c;
    at += c;
  } while (left > 0);
}

// ---------------------------------------------------------------- block writing

function rle(n: u32): void {
  nrle = 0;
  memory.fill(CFREQ, 0, 19 * 4);
  let i: u32 = 0;
  while (i < n) {
    const cur = <u32>load<u8>(LENS_ALL + i);
    let run: u32 = 1;
    while (i + run < n && <u32>load<u8>(LENS_ALL + i + run) == cur) run++;
    i += run;
    if (cur == 0) {
      while (run >= 11) {
        const r = min(run, 138);
        emitRle(18, r - 11);
        run -= r;
      }
      if (run >= 3) {
        emitRle(17, run - 3);
        run = 0;
      }
    } else {
      emitRle(cur, 0);
      run--;
      while (run >= 3) {
        const r = min(run, 6);
        emitRle(16, r - 3);
        run -= r;
      }
    }
    while (run > 0) {
      emitRle(cur, 0);
      run--;
    }
  }
}

function emitRle(sym: u32, extra: u32): void {
  store<u16>(RLE + (<usize>nrle << 1), <u16>(sym | (extra << 8)));
  nrle++;
  store<u32>(CFREQ + (<usize>sym << 2), load<u32>(CFREQ + (<usize>sym << 2)) + 1);
}

/** Bits the block's symbols take with the given lengths (codes and extra bits). */
function dataBits(llen: usize, dlen: usize): u64 {
  let bits: u64 = 0;
  for (let i: u32 = 0; i < 286; i++) {
    const f = <u64>load<u32>(LFREQ + (<usize>i << 2));
    let l = <u64>load<u8>(llen + i);
    if (i >= 257) l += <u64>load<u8>(LEXTRA + i - 257);
    bits += f * l;
  }
  for (let i: u32 = 0; i < 30; i++) {
    const f = <u64>load<u32>(DFREQ + (<usize>i << 2));
    bits += f * (<u64>load<u8>(dlen + i) + <u64>load<u8>(DEXTRA + i));
  }
  return bits;
}

function writeSymbols(llen: usize, lcode: usize, dlen: usize, dcode: usize): void {
  for (let i: u32 = 0; i < nsym; i++) {
    const s = load<u32>(SYMS + (<usize>i << 2));
    const dist = (s >> 8) & 0xffff;
    if (dist == 0) {
      put(<u32>load<u16>(lcode + (<usize>s << 1)), <u32>load<u8>(llen + s));
    } else {
      const len = (s & 0xff) + 3;
      const lc = <u32>load<u8>(LSYM + len);
      const ls = <usize>(lc + 257);
      put(<u32>load<u16>(lcode + (ls << 1)), <u32>load<u8>(llen + ls));
      put(len - <u32>load<u16>(LBASE + (lc << 1)), <u32>load<u8>(LEXTRA + lc));
      const dc = <usize>(s >> 24);
      put(<u32>load<u16>(dcode + (dc << 1)), <u32>load<u8>(dlen + dc));
      put(dist - <u32>load<u16>(DBASE + (dc << 1)), <u32>load<u8>(DEXTRA + dc));
    }
    flush();
  }
  put(<u32>load<u16>(lcode + (256 << 1)), <u32>load<u8>(llen + 256));
  flush();
}

/** Writes the symbols collected for input [bs, be) as one block (or stored blocks), the smallest form. */
function writeBlock(bs: usize, be: usize, last: bool): void {
  store<u32>(LFREQ + (256 << 2), 1);
  buildLengths(LFREQ, 286, 15, LLEN);
  buildLengths(DFREQ, 30, 15, DLEN);
  let hlit: u32 = 286;
  while (hlit > 257 && load<u8>(LLEN + hlit - 1) == 0) hlit--;
  let hdist: u32 = 30;
  while (hdist > 1 && load<u8>(DLEN + hdist - 1) == 0) hdist--;
  memory.copy(LENS_ALL, LLEN, hlit);
  memory.copy(LENS_ALL + hlit, DLEN, hdist);
  rle(hlit + hdist);
  buildLengths(CFREQ, 19, 7, CLEN);
  let hclen: u32 = 19;
  while (hclen > 4 && load<u8>(CLEN + <usize>load<u8>(PRECODE_ORDER + hclen - 1)) == 0) hclen--;

  let dyn: u64 = 3 + 5 + 5 + 4 + 3 * <u64>hclen;
  for (let i: u32 = 0; i < 19; i++) dyn += <u64>load<u32>(CFREQ + (<usize>i << 2)) * <u64>load<u8>(CLEN + i);
  for (let i: u32 = 16; i < 19; i++) dyn += <u64>load<u32>(CFREQ + (<usize>i << 2)) * <u64>precodeExtra(i);
  dyn += dataBits(LLEN, DLEN);
  const fix: u64 = 3 + dataBits(FLLEN, FDLEN);
  const len = <u32>(be - bs);
  const chunks: u64 = len == 0 ? 1 : (<u64>len + 65534) / 65535;
  // stored: each chunk a 3-bit header padded to a byte, then LEN, NLEN and the bytes
  const stored: u64 = (<u64>len << 3) + chunks * 40 + 7;

  if (stored <= dyn && stored <= fix) {
    storeBlocks(bs, len, last);
  } else if (fix <= dyn) {
    put(last ? 3 : 2, 3); // BFINAL, BTYPE 01
    flush();
    writeSymbols(FLLEN, FLCODE, FDLEN, FDCODE);
  } else {
    genCodes(LLEN, 286, LCODE);
    genCodes(DLEN, 30, DCODE);
    genCodes(CLEN, 19, CCODE);
    put(last ? 5 : 4, 3); // BFINAL, BTYPE 10
    put(hlit - 257, 5);
    put(hdist - 1, 5);
    put(hclen - 4, 4);
    flush();
    for (let i: u32 = 0; i < hclen; i++) {
      put(<u32>load<u8>(CLEN + <usize>load<u8>(PRECODE_ORDER + i)), 3);
      flush();
    }
    for (let i: u32 = 0; i < nrle; i++) {
      const v = <u32>load<u16>(RLE + (<usize>i << 1));
      const s = v & 0xff;
      put(<u32>load<u16>(CCODE + (<usize>s << 1)), <u32>load<u8>(CLEN + s));
      put(v >> 8, precodeExtra(s)); // no bits for a plain length (0-15), whose extra is 0
      flush();
    }
    writeSymbols(LLEN, LCODE, DLEN, DCODE);
  }
  nsym = 0;
  memory.fill(LFREQ, 0, 288 * 4);
  memory.fill(DFREQ, 0, 32 * 4);
}
