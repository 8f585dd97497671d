// Incremental tar scanner kernel in AssemblyScript (ustar, PAX, GNU).
//
// One instance reads one tar stream. It mirrors the TypeScript reference
// parser (src/tar/parser.ts) decision for decision: same states, same checks,
// same order of checks, same limits; it reports the same errors as codes
// (E_* below) that the facade (src/tar/kernel.ts) turns into the reference
// parser's messages. Data bytes are never copied out: the kernel emits records
// that say where content lies in the stream (absolute offsets) and the host
// slices them from its own chunk.
//
// Host protocol:
//   init(maxExt)                once; maxExt = largest PAX/GNU long-name record
//   passable()                  bytes the host may skip without copying them in
//                               (content, padding, anything after the end)
//   pass(n)                     consume n <= passable() bytes without their content
//   copy bytes to inPtr(), run(n)  consume n <= inCapacity() bytes
//   resume()                    after ST_YIELD: go on with the same input
//   finish()                    end of the stream (clean end or truncation error)
// Every call returns a status: ST_NEED (input used up), ST_YIELD (records
// ready; handle them, then resume()), ST_END (finish() succeeded) or ST_ERROR
// (errCode()/errA()/errB()/errOffset()/errNamed()). Records accumulated before
// a status must be handled (recPtr()/recCount() f64 slots) before the next call.
//
// Records (f64 slots, first slot the kind):
//   R_HEADER  25 slots  a content entry's header is complete (the reference sets
//                       its "current entry" here); see the H_* slot indices
//   R_BEGIN    3 slots  deliver the entry: [kind, regionsPtr, regionCount]
//                       (regions as f64 offset,size pairs; count -1 = not sparse)
//   R_DATA     3 slots  [kind, streamOffset, length] content bytes
//   R_HOLE     2 slots  [kind, length] zeros of a sparse file
//   R_END      1 slot   the entry's content is complete
// A record that points into a shared buffer (PAX data, long names, sparse
// regions, header copies) is the last of its batch: the kernel yields right
// after it, so the buffer is not reused before the host read it.

const ST_NEED: i32 = 0;
const ST_YIELD: i32 = 1;
const ST_END: i32 = 2;
const ST_ERROR: i32 = 3;

// errors; A/B are numbers for the message (field ids, sizes)
const E_BADFIELD: i32 = 1; // bad <field A> field
const E_RANGE: i32 = 2; // <field A> field out of range
const E_CHECKSUM: i32 = 3; // bad header checksum
const E_NEGSIZE: i32 = 4; // negative size
const E_EXTSIZE: i32 = 5; // extended header of A bytes is too large
const E_PAXREC: i32 = 6; // bad PAX record
const E_PAXSPARSE: i32 = 7; // bad PAX sparse record
const E_PAXINT: i32 = 8; // bad PAX <key A> record
const E_PAXINTRANGE: i32 = 9; // PAX <key A> record out of range
const E_PAXMTIME: i32 = 10; // bad PAX mtime record
const E_NEGID: i32 = 11; // negative uid or gid
const E_MISSING10: i32 = 12; // missing GNU sparse 1.0 map
const E_TRUNC10: i32 = 13; // truncated GNU sparse 1.0 map
const E_BAD10: i32 = 14; // bad GNU sparse 1.0 map
const E_SPARSEBIG: i32 = 15; // sparse map too large
const E_SPARSEENTRY: i32 = 16; // bad sparse map entry
const E_SPARSEORDER: i32 = 17; // sparse map entries overlap or are out of order
const E_SPARSEBEYOND: i32 = 18; // sparse map entry beyond the file size
const E_SPARSESUM: i32 = 19; // sparse map holds A bytes but the entry stores B
const E_MAP01: i32 = 20; // bad GNU.sparse.map
const E_PAIRS: i32 = 21; // bad GNU.sparse.offset/numbytes records
const E_NUMBLOCKS: i32 = 22; // GNU.sparse.numblocks does not match the sparse map
const E_AFTERZERO: i32 = 23; // data after a zero block (corrupt end-of-archive marker)
const E_TRUNC: i32 = 24; // unexpected end of the tar stream (truncated)
const E_FAILED: i32 = 25; // already failed

// field ids (E_BADFIELD / E_RANGE)
// 0 checksum, 1 mode, 2 uid, 3 gid, 4 size, 5 mtime, 6 devmajor, 7 devminor,
// 8 sparse offset, 9 sparse size, 10 sparse realsize
// PAX integer keys (E_PAXINT / E_PAXINTRANGE)
const K_SIZE: i32 = 0;
const K_UID: i32 = 1;
const K_GID: i32 = 2;
const K_SREALSIZE: i32 = 3; // GNU.sparse.realsize
const K_SSIZE: i32 = 4; // GNU.sparse.size
const K_SNUMBLOCKS: i32 = 5; // GNU.sparse.numblocks

const R_HEADER: f64 = 1;
const R_BEGIN: f64 = 2;
const R_DATA: f64 = 3;
const R_HOLE: f64 = 4;
const R_END: f64 = 5;

// R_HEADER slots
// 1 hdrPtr (copy of the 512-byte block), 2 typeflag byte, 3 format (0 v7, 1 ustar, 2 gnu),
// 4 mode (masked 07777), 5 uid, 6 gid, 7 size (h.size), 8 mtime (raw), 9 devmajor, 10 devminor,
// 11 type (0 file,1 link,2 symlink,3 char,4 block,5 dir,6 fifo,7 other), 12 sparse kind
// (0 none, 1 old GNU, 2 PAX 1.0, 3 PAX 0.x), 13 dump dir (1 = 'D': entry and end now),
// 14 paxPtr, 15 paxLen (-1 none), 16 longPtr, 17 longLen (-1 none), 18 linkPtr, 19 linkLen (-1 none),
// 20 nameLen, 21 prefixLen (-1 none), 22 linknameLen, 23 unameLen, 24 gnameLen (of the raw
// fields whatever the format; -1: the same bytes as the previous entry header's)
const HDR_SLOTS: i32 = 25;

const BLOCK: i32 = 512;
const MAX_SAFE: f64 = 9007199254740991;
const MAX_SPARSE: i32 = 1 << 17;

const S_HEADER: i32 = 0;
const S_EXT: i32 = 1;
const S_GNUEXT: i32 = 2;
const S_MAP10: i32 = 3;
const S_DATA: i32 = 4;
const S_SKIP: i32 = 5;
const S_PAD: i32 = 6;
const S_ZERO1: i32 = 7;
const S_END: i32 = 8;
const S_FAILED: i32 = 9;

const IN_CAP: i32 = 64 * 1024;
const REC_CAP: i32 = 8192; // f64 slots
const HDR_CAP: i32 = 16; // copies of headers split across inputs, per batch (at most one per input)

const IN_BASE: usize = memory.data(IN_CAP + 64, 64);
const REC_BASE: usize = memory.data(REC_CAP * 8, 64);
const HDRS: usize = memory.data(HDR_CAP * BLOCK, 64);
const HBUF: usize = memory.data(BLOCK, 64); // a header block split across inputs
const LASTUG: usize = memory.data(64, 16); // uname + gname fields of the last entry header

// ---------------------------------------------------------------- layout of the growable buffers

let maxExt: i32 = 1 << 20;
let PAX_BUF: usize = 0; // pending 'x' data
let LONG_BUF: usize = 0; // pending 'L'
let LINK_BUF: usize = 0; // pending 'K'
let G_BUF: usize = 0; // 'g' data (validated, ignored)
let REG_BUF: usize = 0; // sparse regions: f64 pairs, MAX_SPARSE + 1 of them
let PAIR_BUF: usize = 0; // PAX 0.0 pairs: f64, up to maxExt/2 values
let memEnd: usize = 0;

// ---------------------------------------------------------------- state

let state: i32 = S_HEADER;
let offset: f64 = 0; // stream bytes consumed
let entryOffset: f64 = 0;
let hdrFill: i32 = 0;
let named: bool = false; // the reference's `cur` is set (errors name the entry)

// input cursor
let ip: usize = 0;
let inEnd: usize = 0;
let virt: bool = false; // consuming passed-over bytes (no content)

// records
let recN: i32 = 0;
let hdrN: i32 = 0;
let mustYield: bool = false;

// extended headers
let extKind: i32 = 0;
let extBuf: usize = 0;
let extFill: i32 = 0;
let havePax: bool = false;
let paxLen: i32 = 0;
let longLen: i32 = -1;
let linkLen: i32 = -1;
// last occurrence of interesting PAX keys in PAX_BUF (value offset, length; len -1 absent)
let vPathOff: i32 = 0, vPathLen: i32 = -1;
let vSizeOff: i32 = 0, vSizeLen: i32 = -1;
let vUidOff: i32 = 0, vUidLen: i32 = -1;
let vGidOff: i32 = 0, vGidLen: i32 = -1;
let vMtimeOff: i32 = 0, vMtimeLen: i32 = -1;
let vMajorOff: i32 = 0, vMajorLen: i32 = -1;
let vMinorOff: i32 = 0, vMinorLen: i32 = -1;
let vSNameOff: i32 = 0, vSNameLen: i32 = -1;
let vRealOff: i32 = 0, vRealLen: i32 = -1;
let vSSizeOff: i32 = 0, vSSizeLen: i32 = -1;
let vNumOff: i32 = 0, vNumLen: i32 = -1;
let vMapOff: i32 = 0, vMapLen: i32 = -1;
let pairN: i32 = 0; // PAX 0.0 values in PAIR_BUF (of the last 'x')

// current entry
let remaining: f64 = 0;
let pad: f64 = 0;
let skip: f64 = 0;
let hSize: f64 = 0;
let isSparse: bool = false;
let regN: i32 = 0; // regions stored (<= MAX_SPARSE + 1)
let regCount: i32 = 0; // regions counted
let sparseIdx: i32 = 0;
let pos: f64 = 0;
let lastRecHdr: usize = 0;

// PAX 1.0 map reader
let m10Count: f64 = -1;
let m10Nums: i32 = 0;
let m10Text: i32 = 0; // characters pending
let m10Digits: bool = true;
let m10Val: f64 = 0;
let m10Consumed: f64 = 0;
let m10Done: bool = false;
let m10Pending: f64 = 0; // first number of a pair

// errors
let eCode: i32 = 0;
let eA: f64 = 0;
let eB: f64 = 0;

// number parsing of unusual PAX sparse values is the host's (JS Number())
@external("env", "paxNumber")
declare function hostNumber(ptr: usize, len: i32): f64;

// ---------------------------------------------------------------- exports

export function init(maxExtended: i32): void {
  maxExt = maxExtended;
  const base: usize = (__heap_base + 63) & ~<usize>63;
  const ext: usize = (<usize>maxExt + 64 + 63) & ~<usize>63;
  PAX_BUF = base;
  LONG_BUF = PAX_BUF + ext;
  LINK_BUF = LONG_BUF + ext;
  G_BUF = LINK_BUF + ext;
  PAIR_BUF = G_BUF + ext;
  REG_BUF = PAIR_BUF + ((<usize>(maxExt / 2) + 16) << 3);
  memEnd = <usize>memory.size() << 16;
  state = S_HEADER;
}

export function inPtr(): usize { return IN_BASE; }
export function inCapacity(): i32 { return IN_CAP; }
export function recPtr(): usize { return REC_BASE; }
export function recCount(): i32 { return recN; }
export function errCode(): i32 { return eCode; }
export function errA(): f64 { return eA; }
export function errB(): f64 { return eB; }
export function errOffset(): f64 { return entryOffset; }
export function errNamed(): bool { return named; }
export function streamOffset(): f64 { return offset; }

/** Bytes the host may consume with pass() (no content needed). */
export function passable(): f64 {
  if (state == S_DATA) return remaining;
  if (state == S_SKIP) return skip;
  if (state == S_PAD) return pad;
  if (state == S_END) return 1e15;
  return 0;
}

export function pass(n: f64): i32 {
  recN = 0;
  hdrN = 0;
  virt = true;
  // a virtual input of n bytes: ip/inEnd count bytes, nothing is read
  ip = 0;
  inEnd = <usize>n;
  return loop();
}

export function run(n: i32): i32 {
  recN = 0;
  hdrN = 0;
  virt = false;
  ip = IN_BASE;
  inEnd = IN_BASE + <usize>n;
  return loop();
}

export function resume(): i32 {
  recN = 0;
  hdrN = 0;
  return loop();
}

export function finish(): i32 {
  recN = 0;
  hdrN = 0;
  if (state == S_FAILED) return fail(E_FAILED, 0, 0);
  const clean = (state == S_HEADER || state == S_ZERO1 || state == S_END) && hdrFill == 0;
  if (!clean) {
    if (state == S_HEADER || state == S_ZERO1) entryOffset = offset - <f64>hdrFill;
    return fail(E_TRUNC, 0, 0);
  }
  state = S_END;
  return ST_END;
}

// ---------------------------------------------------------------- helpers

function fail(code: i32, a: f64, b: f64): i32 {
  eCode = code;
  eA = a;
  eB = b;
  state = S_FAILED;
  return ST_ERROR;
}

function ensure(end: usize): void {
  if (end <= memEnd) return;
  const need = <i32>((end - memEnd + 0xffff) >> 16);
  if (memory.grow(need) < 0) unreachable();
  memEnd = <usize>memory.size() << 16;
}

@inline function rec(slot: i32, v: f64): void {
  store<f64>(REC_BASE + (<usize>(recN + slot) << 3), v);
}

function emitData(streamOff: f64, len: f64): void {
  rec(0, R_DATA); rec(1, streamOff); rec(2, len);
  recN += 3;
}

function emitHole(len: f64): void {
  if (len <= 0) return;
  rec(0, R_HOLE); rec(1, len);
  recN += 2;
}

function emitEnd(): void {
  rec(0, R_END);
  recN += 1;
}

function padLength(size: f64): f64 {
  const r = size % 512;
  return r == 0 ? 0 : 512 - r;
}

function isZero(p: usize): bool {
  // a header's name is rarely empty: the first word nearly always decides
  for (let i: usize = 0; i < 512; i += 16) if (v128.any_true(v128.load(p + i))) return false;
  return true;
}

/**
 * The header checksums: unsigned (low 32 bits) and signed byte sums with the
 * checksum field counted as spaces, over SIMD lanes.
 */
let sumSigned: i32 = 0;
function checksums(p: usize): i32 {
  let acc = i32x4.splat(0);
  let hi = i32x4.splat(0);
  for (let i: usize = 0; i < 512; i += 16) {
    const v = v128.load(p + i);
    acc = i32x4.add(acc, i32x4.extadd_pairwise_i16x8_u(i16x8.extadd_pairwise_i8x16_u(v)));
    hi = i32x4.add(hi, i32x4.extadd_pairwise_i16x8_u(i16x8.extadd_pairwise_i8x16_u(i8x16.shr_u(v, 7))));
  }
  let u = i32x4.extract_lane(acc, 0) + i32x4.extract_lane(acc, 1) + i32x4.extract_lane(acc, 2) + i32x4.extract_lane(acc, 3);
  let h = i32x4.extract_lane(hi, 0) + i32x4.extract_lane(hi, 1) + i32x4.extract_lane(hi, 2) + i32x4.extract_lane(hi, 3);
  for (let i: usize = 148; i < 156; i++) {
    const c = <i32>load<u8>(p + i);
    u -= c;
    if (c > 127) h--;
  }
  u += 8 * 0x20;
  sumSigned = u - 256 * h;
  return u;
}

// numeric fields: returns the value, or NaN with the error set in eCode/eA
let numErr: i32 = 0;

function parseOctal(p: usize, width: i32, what: i32): f64 {
  let i = 0;
  while (i < width && (load<u8>(p + i) == 0x20 || load<u8>(p + i) == 0)) i++;
  if (i == width) return 0;
  let n: f64 = 0;
  for (; i < width; i++) {
    const c = load<u8>(p + i);
    if (c == 0 || c == 0x20) break;
    if (c < 0x30 || c > 0x37) { numErr = E_BADFIELD; eA = what; return NaN; }
    n = n * 8 + <f64>(c - 0x30);
  }
  for (; i < width; i++) {
    const c = load<u8>(p + i);
    if (c != 0 && c != 0x20) { numErr = E_BADFIELD; eA = what; return NaN; }
  }
  return n;
}

function parseNumeric(p: usize, width: i32, what: i32): f64 {
  const first = load<u8>(p);
  if (first & 0x80) {
    const inv: u32 = first & 0x40 ? 0xff : 0;
    let v: u64 = 0;
    let over = false;
    for (let i = 0; i < width; i++) {
      let c: u32 = <u32>load<u8>(p + i) ^ inv;
      if (i == 0) c &= 0x7f;
      if ((v >> 56) != 0) over = true;
      v = (v << 8) | <u64>c;
    }
    if (over) { numErr = E_RANGE; eA = what; return NaN; }
    if (inv) {
      // -v - 1
      if (v > <u64>9007199254740990) { numErr = E_RANGE; eA = what; return NaN; }
      return -<f64>v - 1;
    }
    if (v > <u64>9007199254740991) { numErr = E_RANGE; eA = what; return NaN; }
    return <f64>v;
  }
  return parseOctal(p, width, what);
}

function strLen(p: usize, width: i32): i32 {
  let i = 0;
  while (i < width && load<u8>(p + i) != 0) i++;
  return i;
}

/** A PAX integer value (`paxInt`): fallback when absent or empty; NaN + numErr on error. */
function paxInt(off: i32, len: i32, key: i32, fallback: f64): f64 {
  if (len <= 0) return fallback;
  const p = PAX_BUF + <usize>off;
  let n: f64 = 0;
  for (let i = 0; i < len; i++) {
    const c = load<u8>(p + i);
    if (c < 0x30 || c > 0x39) { numErr = E_PAXINT; eA = key; return NaN; }
    n = n * 10 + <f64>(c - 0x30);
  }
  if (n > MAX_SAFE) { numErr = E_PAXINTRANGE; eA = key; return NaN; }
  return n;
}

function keyIs(p: usize, len: i32, s: string): bool {
  if (len != s.length) return false;
  for (let i = 0; i < len; i++) if (<i32>load<u8>(p + i) != s.charCodeAt(i)) return false;
  return true;
}

function startsWith(p: usize, len: i32, s: string): bool {
  if (len < s.length) return false;
  for (let i = 0; i < s.length; i++) if (<i32>load<u8>(p + i) != s.charCodeAt(i)) return false;
  return true;
}

/** The value of a PAX sparse offset/numbytes record: Number(text), NaN if not a safe non-negative integer. */
function sparseNumber(p: usize, len: i32): f64 {
  if (len > 0 && len <= 15) {
    let n: f64 = 0;
    let ok = true;
    for (let i = 0; i < len; i++) {
      const c = load<u8>(p + i);
      if (c < 0x30 || c > 0x39) { ok = false; break; }
      n = n * 10 + <f64>(c - 0x30);
    }
    if (ok) return n;
  }
  return hostNumber(p, len);
}

function isSafeInt(v: f64): bool {
  return v == Math.trunc(v) && Math.abs(v) <= MAX_SAFE;
}

/** parsePax over [p, p+len); into = PAX_BUF records the interesting keys. Returns an error code or 0. */
function parsePax(p: usize, len: i32, record: bool): i32 {
  if (record) {
    vPathLen = -1; vSizeLen = -1; vUidLen = -1; vGidLen = -1; vMtimeLen = -1;
    vMajorLen = -1; vMinorLen = -1; vSNameLen = -1; vRealLen = -1; vSSizeLen = -1; vNumLen = -1; vMapLen = -1;
    pairN = 0;
  }
  let i = 0;
  while (i < len) {
    if (load<u8>(p + i) == 0) {
      let j = i;
      while (j < len && load<u8>(p + j) == 0) j++;
      if (j == len) break;
      return E_PAXREC;
    }
    let rl: f64 = 0;
    let j = i;
    while (j < len && load<u8>(p + j) >= 0x30 && load<u8>(p + j) <= 0x39 && j - i < 20) {
      rl = rl * 10 + <f64>(load<u8>(p + j) - 0x30);
      j++;
    }
    if (j == i || j >= len || load<u8>(p + j) != 0x20 || rl <= <f64>(j - i + 1) || <f64>i + rl > <f64>len) return E_PAXREC;
    const L = <i32>rl;
    if (load<u8>(p + i + L - 1) != 0x0a) return E_PAXREC;
    const rs = j + 1;
    const re = i + L - 1;
    let eq = -1;
    for (let k = rs; k < re; k++) {
      if (load<u8>(p + k) == 0x3d) { eq = k; break; }
    }
    if (eq <= rs) return E_PAXREC;
    const kp = p + rs;
    const kl = eq - rs;
    const vo = eq + 1;
    const vl = re - vo;
    if (keyIs(kp, kl, "GNU.sparse.offset") || keyIs(kp, kl, "GNU.sparse.numbytes")) {
      const n = sparseNumber(p + vo, vl);
      if (!isSafeInt(n) || n < 0) return E_PAXSPARSE;
      if (record) {
        ensure(PAIR_BUF + (<usize>(pairN + 1) << 3));
        store<f64>(PAIR_BUF + (<usize>pairN << 3), n);
        pairN++;
      }
    } else if (record) {
      const c0 = load<u8>(kp);
      if (c0 == 0x47 && kl > 11 && startsWith(kp, kl, "GNU.sparse.")) {
        const sp = kp + 11;
        const sl = kl - 11;
        if (keyIs(sp, sl, "major")) { vMajorOff = vo; vMajorLen = vl; }
        else if (keyIs(sp, sl, "minor")) { vMinorOff = vo; vMinorLen = vl; }
        else if (keyIs(sp, sl, "name")) { vSNameOff = vo; vSNameLen = vl; }
        else if (keyIs(sp, sl, "realsize")) { vRealOff = vo; vRealLen = vl; }
        else if (keyIs(sp, sl, "size")) { vSSizeOff = vo; vSSizeLen = vl; }
        else if (keyIs(sp, sl, "numblocks")) { vNumOff = vo; vNumLen = vl; }
        else if (keyIs(sp, sl, "map")) { vMapOff = vo; vMapLen = vl; }
      } else if (keyIs(kp, kl, "path")) { vPathOff = vo; vPathLen = vl; }
      else if (keyIs(kp, kl, "size")) { vSizeOff = vo; vSizeLen = vl; }
      else if (keyIs(kp, kl, "uid")) { vUidOff = vo; vUidLen = vl; }
      else if (keyIs(kp, kl, "gid")) { vGidOff = vo; vGidLen = vl; }
      else if (keyIs(kp, kl, "mtime")) { vMtimeOff = vo; vMtimeLen = vl; }
    }
    i += L;
  }
  return 0;
}

// ---------------------------------------------------------------- the state machine

function loop(): i32 {
  while (ip < inEnd) {
    if (mustYield || recN > REC_CAP - 64 || hdrN >= HDR_CAP) {
      mustYield = false;
      return ST_YIELD;
    }
    const avail = <i32>min<usize>(inEnd - ip, 0x40000000);
    switch (state) {
      case S_HEADER:
      case S_ZERO1:
      case S_GNUEXT: {
        let r: i32;
        if (hdrFill == 0 && avail >= BLOCK) {
          offset += 512;
          r = block(ip);
          ip += BLOCK;
        } else {
          const take = min(BLOCK - hdrFill, avail);
          memory.copy(HBUF + hdrFill, ip, take);
          hdrFill += take;
          ip += take;
          offset += <f64>take;
          r = 0;
          if (hdrFill == BLOCK) {
            hdrFill = 0;
            r = block(HBUF);
          }
        }
        if (r != 0) return ST_ERROR;
        break;
      }
      case S_EXT: {
        const take = <i32>min<f64>(remaining, <f64>avail);
        memory.copy(extBuf + extFill, ip, take);
        extFill += take;
        remaining -= take;
        ip += take;
        offset += <f64>take;
        if (remaining == 0 && extDone() != 0) return ST_ERROR;
        break;
      }
      case S_MAP10: {
        const lim = <i32>min<f64>(remaining, <f64>avail);
        const take = feed10(ip, lim);
        if (take < 0) return ST_ERROR;
        ip += take;
        offset += <f64>take;
        remaining -= take;
        if (m10Done) {
          if (startEntry() != 0) return ST_ERROR;
        } else if (remaining == 0) return fail(E_TRUNC10, 0, 0);
        break;
      }
      case S_DATA: {
        const take = min<f64>(remaining, <f64>avail);
        const at = offset;
        ip += <usize>take;
        offset += take;
        remaining -= take;
        if (isSparse) sparseData(at, take);
        else if (take > 0) emitData(at, take);
        if (remaining == 0) finishData();
        break;
      }
      case S_SKIP: {
        const take = min<f64>(skip, <f64>avail);
        skip -= take;
        ip += <usize>take;
        offset += take;
        if (skip == 0) afterData();
        break;
      }
      case S_PAD: {
        const take = min<f64>(pad, <f64>avail);
        pad -= take;
        ip += <usize>take;
        offset += take;
        if (pad == 0) state = S_HEADER;
        break;
      }
      case S_END: {
        offset += <f64>(inEnd - ip);
        ip = inEnd;
        break;
      }
      default:
        return fail(E_FAILED, 0, 0);
    }
  }
  if (mustYield) {
    mustYield = false;
    return ST_YIELD;
  }
  return ST_NEED;
}

/** One 512-byte block at p in Header/Zero1/GnuSparseExt state; returns nonzero on error (failed). */
function block(p: usize): i32 {
  if (state == S_GNUEXT) {
    // decodeGnuSparseExtension
    for (let i = 0; i < 21; i++) {
      const o = p + <usize>(i * 24);
      if (load<u8>(o) == 0) break;
      numErr = 0;
      const off = parseNumeric(o, 12, 8);
      if (numErr) return fail(numErr, eA, 0);
      const sz = parseNumeric(o + 12, 12, 9);
      if (numErr) return fail(numErr, eA, 0);
      pushRegion(off, sz);
      if (regCount > MAX_SPARSE) return fail(E_SPARSEBIG, 0, 0);
    }
    if (load<u8>(p + 504) == 0) return startEntry();
    return 0;
  }
  entryOffset = offset - 512;
  if (isZero(p)) {
    state = state == S_ZERO1 ? S_END : S_ZERO1;
    return 0;
  }
  if (state == S_ZERO1) return fail(E_AFTERZERO, 0, 0);
  return header(p);
}

function pushRegion(off: f64, sz: f64): void {
  if (regN <= MAX_SPARSE) {
    ensure(REG_BUF + (<usize>(regN + 1) << 4));
    store<f64>(REG_BUF + (<usize>regN << 4), off);
    store<f64>(REG_BUF + (<usize>regN << 4) + 8, sz);
    regN++;
  }
  regCount++;
}

function header(p: usize): i32 {
  // decodeHeader
  numErr = 0;
  const stored = parseOctal(p + 148, 8, 0);
  if (numErr) return fail(numErr, eA, 0);
  const u = checksums(p);
  if (stored != <f64>u && stored != <f64>sumSigned) return fail(E_CHECKSUM, 0, 0);
  let format = 0;
  if (load<u8>(p + 257) == 0x75 && load<u8>(p + 258) == 0x73 && load<u8>(p + 259) == 0x74 && load<u8>(p + 260) == 0x61 && load<u8>(p + 261) == 0x72) {
    format = load<u8>(p + 262) == 0x20 && load<u8>(p + 263) == 0x20 && load<u8>(p + 264) == 0 ? 2 : 1;
  }
  const flag: i32 = load<u8>(p + 156);
  const mode = parseNumeric(p + 100, 8, 1);
  if (numErr) return fail(numErr, eA, 0);
  const uid = parseNumeric(p + 108, 8, 2);
  if (numErr) return fail(numErr, eA, 0);
  const gid = parseNumeric(p + 116, 8, 3);
  if (numErr) return fail(numErr, eA, 0);
  const rawSize = parseNumeric(p + 124, 12, 4);
  if (numErr) return fail(numErr, eA, 0);
  const mtime = parseNumeric(p + 136, 12, 5);
  if (numErr) return fail(numErr, eA, 0);
  if (rawSize < 0) return fail(E_NEGSIZE, 0, 0);
  let devmajor: f64 = 0, devminor: f64 = 0;
  if (format != 0 && (flag == 0x33 || flag == 0x34)) {
    devmajor = parseNumeric(p + 329, 8, 6);
    if (numErr) return fail(numErr, eA, 0);
    devminor = parseNumeric(p + 337, 8, 7);
    if (numErr) return fail(numErr, eA, 0);
  }
  let prefixLen = -1;
  let gnuExtended = false;
  let gnuReal: f64 = 0;
  let gnuN = 0;
  const isS = format == 2 && flag == 0x53;
  if (format == 1) {
    const star = load<u8>(p + 508) == 0x74 && load<u8>(p + 509) == 0x61 && load<u8>(p + 510) == 0x72 && load<u8>(p + 511) == 0;
    prefixLen = strLen(p + 345, star ? 131 : 155);
  } else if (isS) {
    regN = 0;
    regCount = 0;
    for (let i = 0; i < 4; i++) {
      const o = p + 386 + <usize>(i * 24);
      if (load<u8>(o) == 0) break;
      const off = parseNumeric(o, 12, 8);
      if (numErr) return fail(numErr, eA, 0);
      const sz = parseNumeric(o + 12, 12, 9);
      if (numErr) return fail(numErr, eA, 0);
      pushRegion(off, sz);
      gnuN++;
    }
    gnuExtended = load<u8>(p + 482) != 0;
    gnuReal = parseNumeric(p + 483, 12, 10);
    if (numErr) return fail(numErr, eA, 0);
  }

  // header(raw)
  if (flag == 0x78 || flag == 0x67 || flag == 0x4c || flag == 0x4b) {
    if (rawSize > <f64>maxExt) return fail(E_EXTSIZE, rawSize, 0);
    extKind = flag;
    extBuf = flag == 0x78 ? PAX_BUF : flag == 0x67 ? G_BUF : flag == 0x4c ? LONG_BUF : LINK_BUF;
    ensure(extBuf + <usize>rawSize + 64);
    extFill = 0;
    remaining = rawSize;
    pad = padLength(rawSize);
    state = S_EXT;
    if (rawSize == 0) return extDone();
    return 0;
  }
  // the name as resolved (for the '\0' directory rule and sparse detection)
  const nameLen = strLen(p, 100);
  let lastByte: i32 = nameLen > 0 ? <i32>load<u8>(p + nameLen - 1) : -1;
  if (prefixLen > 0) {
    if (nameLen == 0) lastByte = 0x2f; // prefix + "/"
  }
  if (havePax && vPathLen > 0) lastByte = load<u8>(PAX_BUF + <usize>(vPathOff + vPathLen - 1));
  if (longLen >= 0) lastByte = longLen > 0 ? <i32>load<u8>(LONG_BUF + <usize>(longLen - 1)) : -1;
  let type = 7;
  switch (flag) {
    case 0x30: case 0x37: type = 0; break;
    case 0: type = lastByte == 0x2f ? 5 : 0; break;
    case 0x31: type = 1; break;
    case 0x32: type = 2; break;
    case 0x33: type = 3; break;
    case 0x34: type = 4; break;
    case 0x35: case 0x44: type = 5; break;
    case 0x36: type = 6; break;
  }
  let size = rawSize;
  if (havePax) {
    size = paxInt(vSizeOff, vSizeLen, K_SIZE, rawSize);
    if (numErr) return fail(numErr, eA, 0);
    if (vMtimeLen > 0) {
      // /^-?[0-9]+(\.[0-9]*)?$/
      const mp = PAX_BUF + <usize>vMtimeOff;
      let k = 0;
      if (load<u8>(mp) == 0x2d) k++;
      const d0 = k;
      while (k < vMtimeLen && load<u8>(mp + k) >= 0x30 && load<u8>(mp + k) <= 0x39) k++;
      let ok = k > d0;
      if (ok && k < vMtimeLen) {
        if (load<u8>(mp + k) != 0x2e) ok = false;
        else {
          k++;
          while (k < vMtimeLen && load<u8>(mp + k) >= 0x30 && load<u8>(mp + k) <= 0x39) k++;
          if (k < vMtimeLen) ok = false;
        }
      }
      if (!ok) return fail(E_PAXMTIME, 0, 0);
    }
  }
  let fuid = uid, fgid = gid;
  if (havePax) {
    fuid = paxInt(vUidOff, vUidLen, K_UID, uid);
    if (numErr) return fail(numErr, eA, 0);
    fgid = paxInt(vGidOff, vGidLen, K_GID, gid);
    if (numErr) return fail(numErr, eA, 0);
  }
  if (fuid < 0 || fgid < 0) return fail(E_NEGID, 0, 0);

  // the header record (the reference sets `cur` here)
  // the block stays readable until the host handled the batch: in the input
  // buffer, or (for a block split across inputs) in a per-batch copy
  let hp = p;
  if (p == HBUF) {
    hp = HDRS + <usize>(hdrN * BLOCK);
    memory.copy(hp, p, BLOCK);
    hdrN++;
  }
  lastRecHdr = REC_BASE + (<usize>recN << 3);
  rec(0, R_HEADER);
  rec(1, <f64>hp);
  rec(2, <f64>flag);
  rec(3, <f64>format);
  rec(4, <f64>(<i32>(<i64>mode) & 0o7777));
  rec(5, fuid);
  rec(6, fgid);
  rec(7, 0);
  rec(8, mtime);
  rec(9, devmajor);
  rec(10, devminor);
  rec(11, <f64>type);
  rec(12, 0);
  rec(13, 0);
  rec(14, <f64>PAX_BUF);
  rec(15, havePax ? <f64>paxLen : -1);
  rec(16, <f64>LONG_BUF);
  rec(17, <f64>longLen);
  rec(18, <f64>LINK_BUF);
  rec(19, <f64>linkLen);
  rec(20, <f64>nameLen);
  rec(21, <f64>prefixLen);
  rec(22, <f64>strLen(p + 157, 100));
  // uname/gname: -1 when both fields are byte for byte those of the previous
  // entry header (the host reuses its strings: most layers have one owner)
  const u0 = v128.load(p + 265), u1 = v128.load(p + 281), u2 = v128.load(p + 297), u3 = v128.load(p + 313);
  const same = i8x16.all_true(v128.and(v128.and(i8x16.eq(u0, v128.load(LASTUG)), i8x16.eq(u1, v128.load(LASTUG + 16))),
    v128.and(i8x16.eq(u2, v128.load(LASTUG + 32)), i8x16.eq(u3, v128.load(LASTUG + 48)))));
  if (same) {
    rec(23, -1);
    rec(24, -1);
  } else {
    v128.store(LASTUG, u0);
    v128.store(LASTUG + 16, u1);
    v128.store(LASTUG + 32, u2);
    v128.store(LASTUG + 48, u3);
    rec(23, <f64>strLen(p + 265, 32));
    rec(24, <f64>strLen(p + 297, 32));
  }
  recN += HDR_SLOTS;
  const hadPax = havePax;
  if (havePax || longLen >= 0 || linkLen >= 0) mustYield = true;
  havePax = false;
  longLen = -1;
  linkLen = -1;
  named = true;

  if (flag >= 0x31 && flag <= 0x36) size = 0;
  pad = padLength(size);
  isSparse = false;
  sparseIdx = 0;
  pos = 0;
  if (flag == 0x44) {
    setHdr(13, 1);
    skip = size;
    state = S_SKIP;
    if (size == 0) afterData();
    return 0;
  }
  if (isS) {
    setHdr(11, 0);
    setHdr(12, 1);
    hSize = gnuReal;
    setHdr(7, hSize);
    isSparse = true;
    remaining = size;
    if (gnuExtended) {
      state = S_GNUEXT;
      return 0;
    }
    return startEntry();
  }
  if (hadPax && (type == 0 || type == 7)) {
    if (vMajorLen == 1 && load<u8>(PAX_BUF + <usize>vMajorOff) == 0x31 && vMinorLen == 1 && load<u8>(PAX_BUF + <usize>vMinorOff) == 0x30) {
      setHdr(11, 0);
      setHdr(12, 2);
      hSize = paxInt(vRealOff, vRealLen, K_SREALSIZE, 0);
      if (numErr) return fail(numErr, eA, 0);
      setHdr(7, hSize);
      isSparse = true;
      regN = 0;
      regCount = 0;
      m10Count = -1;
      m10Nums = 0;
      m10Text = 0;
      m10Digits = true;
      m10Val = 0;
      m10Consumed = 0;
      m10Done = false;
      remaining = size;
      state = S_MAP10;
      if (size == 0) return fail(E_MISSING10, 0, 0);
      return 0;
    }
    if (vNumLen >= 0 || vMapLen >= 0) {
      setHdr(11, 0);
      setHdr(12, 3);
      const real = paxInt(vRealOff, vRealLen, K_SREALSIZE, 0);
      if (numErr) return fail(numErr, eA, 0);
      hSize = paxInt(vSSizeOff, vSSizeLen, K_SSIZE, real);
      if (numErr) return fail(numErr, eA, 0);
      setHdr(7, hSize);
      isSparse = true;
      regN = 0;
      regCount = 0;
      if (vMapLen >= 0) {
        const r = parseMap01(PAX_BUF + <usize>vMapOff, vMapLen);
        if (r != 0) return fail(r, 0, 0);
      } else {
        if (pairN % 2) return fail(E_PAIRS, 0, 0);
        for (let k = 0; k < pairN; k += 2) {
          pushRegion(load<f64>(PAIR_BUF + (<usize>k << 3)), load<f64>(PAIR_BUF + (<usize>(k + 1) << 3)));
        }
      }
      const nb = paxInt(vNumOff, vNumLen, K_SNUMBLOCKS, <f64>regCount);
      if (numErr) return fail(numErr, eA, 0);
      if (nb != <f64>regCount) return fail(E_NUMBLOCKS, 0, 0);
      remaining = size;
      return startEntry();
    }
  }
  hSize = size;
  setHdr(7, size);
  remaining = size;
  return startEntry();
}

@inline function setHdr(slot: i32, v: f64): void {
  store<f64>(lastRecHdr + (<usize>slot << 3), v);
}

/** parseSparseMap01 (values kept as f64; unsafe ones fail validation later). */
function parseMap01(p: usize, len: i32): i32 {
  if (len == 0) return 0;
  let nums = 0;
  let v: f64 = 0;
  let digits = 0;
  let first: f64 = 0;
  for (let i = 0; i <= len; i++) {
    if (i == len || load<u8>(p + i) == 0x2c) {
      if (digits == 0) return E_MAP01;
      if (nums & 1) pushRegion(first, v);
      else first = v;
      nums++;
      v = 0;
      digits = 0;
      continue;
    }
    const c = load<u8>(p + i);
    if (c < 0x30 || c > 0x39) return E_MAP01;
    v = v * 10 + <f64>(c - 0x30);
    digits++;
  }
  if (nums & 1) return E_MAP01;
  return 0;
}

/** Sparse10MapReader.feed over [p, p+lim); returns bytes taken or -1 on error. */
function feed10(p: usize, lim: i32): i32 {
  let i = 0;
  while (i < lim && !m10Done) {
    if (m10Count < 0 || <f64>m10Nums < m10Count * 2) {
      const c = load<u8>(p + i);
      i++;
      m10Consumed++;
      if (c == 0x0a) {
        if (m10Text == 0 || !m10Digits) { fail(E_BAD10, 0, 0); return -1; }
        const n = m10Val;
        m10Text = 0;
        m10Digits = true;
        m10Val = 0;
        if (m10Count < 0) {
          if (n > <f64>MAX_SPARSE) { fail(E_SPARSEBIG, 0, 0); return -1; }
          m10Count = n;
        } else {
          if (m10Nums & 1) pushRegion(m10Pending, n);
          else m10Pending = n;
          m10Nums++;
        }
      } else {
        m10Text++;
        if (c < 0x30 || c > 0x39) m10Digits = false;
        else m10Val = m10Val * 10 + <f64>(c - 0x30);
        if (m10Text > 20) { fail(E_BAD10, 0, 0); return -1; }
      }
      if (m10Count >= 0 && <f64>m10Nums == m10Count * 2 && m10Text == 0) {
        if (m10Consumed % 512 == 0) m10Done = true;
      }
    } else {
      const padn = (512 - (m10Consumed % 512)) % 512;
      const take = <i32>min<f64>(padn, <f64>(lim - i));
      i += take;
      m10Consumed += <f64>take;
      if (m10Consumed % 512 == 0) m10Done = true;
    }
  }
  return i;
}

function extDone(): i32 {
  switch (extKind) {
    case 0x78: {
      const r = parsePax(PAX_BUF, extFill, true);
      if (r != 0) return fail(r, 0, 0);
      havePax = true;
      paxLen = extFill;
      break;
    }
    case 0x67: {
      const r = parsePax(G_BUF, extFill, false);
      if (r != 0) return fail(r, 0, 0);
      break;
    }
    case 0x4c: {
      let e = 0;
      while (e < extFill && load<u8>(LONG_BUF + e) != 0) e++;
      longLen = e;
      break;
    }
    case 0x4b: {
      let e = 0;
      while (e < extFill && load<u8>(LINK_BUF + e) != 0) e++;
      linkLen = e;
      break;
    }
  }
  state = pad != 0 ? S_PAD : S_HEADER;
  return 0;
}

/** validateSparse + the stored-size check, then the R_BEGIN record. */
function startEntry(): i32 {
  if (isSparse) {
    const stored = remaining;
    if (regCount > MAX_SPARSE) return fail(E_SPARSEBIG, 0, 0);
    let end: f64 = 0;
    let sum: f64 = 0;
    for (let k = 0; k < regN; k++) {
      const o = load<f64>(REG_BUF + (<usize>k << 4));
      const z = load<f64>(REG_BUF + (<usize>k << 4) + 8);
      if (!isSafeInt(o) || !isSafeInt(z) || o < 0 || z < 0) return fail(E_SPARSEENTRY, 0, 0);
      if (o < end) return fail(E_SPARSEORDER, 0, 0);
      end = o + z;
      if (end > hSize) return fail(E_SPARSEBEYOND, 0, 0);
    }
    for (let k = 0; k < regN; k++) sum += load<f64>(REG_BUF + (<usize>k << 4) + 8);
    if (sum != stored) return fail(E_SPARSESUM, sum, stored);
    rec(0, R_BEGIN); rec(1, <f64>REG_BUF); rec(2, <f64>regN);
    recN += 3;
    mustYield = true;
  } else {
    rec(0, R_BEGIN); rec(1, 0); rec(2, -1);
    recN += 3;
  }
  state = S_DATA;
  if (remaining == 0) finishData();
  return 0;
}

function sparseData(at: f64, len: f64): void {
  let o: f64 = 0;
  while (o < len) {
    if (recN > REC_CAP - 16) {
      // the record area is full: give back the rest of this piece
      const back = len - o;
      remaining += back;
      offset -= back;
      ip -= <usize>back;
      mustYield = true;
      return;
    }
    const r = REG_BUF + (<usize>sparseIdx << 4);
    const ro = load<f64>(r);
    const rz = load<f64>(r + 8);
    if (pos < ro) {
      emitHole(ro - pos);
      pos = ro;
    }
    const want = ro + rz - pos;
    if (want == 0) {
      sparseIdx++;
      continue;
    }
    const take = min<f64>(want, len - o);
    emitData(at + o, take);
    o += take;
    pos += take;
  }
}

function finishData(): void {
  if (isSparse) {
    emitHole(hSize - pos);
    pos = hSize;
  }
  emitEnd();
  afterData();
}

function afterData(): void {
  named = false;
  isSparse = false;
  state = pad != 0 ? S_PAD : S_HEADER;
}
