// The WASM deflate kernel (wasm/deflate.ts through src/compress/deflate-wasm.ts):
// every level's output inflates back to its input with node:zlib and with
// ocigen's own inflate kernel, with and without history, final or sync-flushed
// (so blocks concatenate into one stream); Huffman codes stay within DEFLATE's
// length limits on skewed data; stored output never exceeds the stored bound;
// matches reach exactly 32 KiB back and no further; and the bytes are the same
// on every run and runtime (both engines run this file against one digest).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import zlib from "node:zlib";
import fc from "fast-check";
import { wasmDeflateRaw } from "../src/compress/deflate-wasm.ts";
import { wasmGunzipSync } from "../src/compress/inflate-wasm.ts";
import { concatBytes } from "../src/stream/sink.ts";
import { prng } from "./prng.ts";

/** Deterministic bytes: 0 random, 1 text-like, 2 zeros, 3 a short period, 4 skewed (few common bytes, many rare). */
function segment(kind: number, len: number, seed: number): Uint8Array {
  const out = new Uint8Array(len);
  const next = prng((seed * 2654435761 + 1) >>> 0);
  if (kind === 0) {
    for (let i = 0; i < len; i++) out[i] = next() & 0xff;
  } else if (kind === 1) {
    const words = ["lorem ", "ipsum ", "dolor ", "sit ", "amet\n", "0x1f8b ", "/usr/lib/x86_64-linux-gnu ", "\t}\n"];
    let o = 0;
    while (o < len) {
      const w = words[next() % words.length];
      for (let j = 0; j < w.length && o < len; j++) out[o++] = w.charCodeAt(j);
    }
  } else if (kind === 3) {
    const period = 1 + (seed % 7);
    for (let i = 0; i < len; i++) out[i] = (i % period) * 31;
  } else if (kind === 4) {
    // byte b with probability ~2^-(b+1): code lengths past 15 unless limited
    for (let i = 0; i < len; i++) out[i] = Math.min(255, Math.clz32(next() | 1));
  }
  return out;
}

/**
 * Checks that `raw` (compressed with `dict` as history) inflates to `body`, with
 * node:zlib and with ocigen's inflate kernel. The history goes first, as a
 * stored block (raw inflate with a dictionary is missing from Deno's
 * node:zlib); a sync-flushed `raw` is followed by an empty final block.
 */
function inflateBoth(raw: Uint8Array, dict: Uint8Array, body: Uint8Array, final: boolean, what: string): void {
  const stream = concatBytes([
    dict.length ? wasmDeflateRaw(dict, 0, false, 0) : new Uint8Array(0),
    raw,
    final ? new Uint8Array(0) : wasmDeflateRaw(new Uint8Array(0), 0, true, 0),
  ]);
  const expect = concatBytes([dict, body]);
  assert.deepEqual(new Uint8Array(zlib.inflateRawSync(stream)), expect, `${what}: node:zlib`);
  assert.deepEqual(wasmGunzipSync(stream, { raw: true }), expect, `${what}: ocigen's inflate`);
}

const sample = fc.record({
  segments: fc.array(fc.record({ kind: fc.integer({ min: 0, max: 4 }), len: fc.integer({ min: 0, max: 40_000 }) }), { maxLength: 5 }),
  dict: fc.integer({ min: 0, max: 70_000 }),
  level: fc.integer({ min: 0, max: 9 }),
  final: fc.boolean(),
  seed: fc.integer({ min: 1, max: 1 << 30 }),
});

describe("wasm deflate kernel", () => {
  test("every level round-trips, with and without history, final or sync-flushed", () => {
    fc.assert(
      fc.property(sample, (s) => {
        const data = concatBytes(s.segments.map((g, i) => segment(g.kind, g.len, s.seed + i)));
        const dict = Math.min(s.dict, data.length);
        const raw = wasmDeflateRaw(data, dict, s.final, s.level);
        // a sync flush ends in an empty stored block: 00 00 ff ff, byte-aligned
        if (!s.final) assert.deepEqual([...raw.subarray(raw.length - 4)], [0, 0, 0xff, 0xff]);
        inflateBoth(raw, data.subarray(0, dict), data.subarray(dict), s.final, `level ${s.level}${s.final ? "" : ", sync-flushed"}`);
      }),
      { numRuns: 120 },
    );
  });

  test("blocks with the previous 32 KiB as history concatenate into one stream", () => {
    const data = concatBytes([segment(1, 300_000, 1), segment(0, 70_000, 2), segment(1, 200_000, 3), segment(3, 90_000, 4)]);
    const B = 65_536;
    for (const level of [0, 1, 3, 6, 9]) {
      const parts: Uint8Array[] = [];
      for (let o = 0; o < data.length; o += B) {
        const d = Math.min(o, 32768);
        const end = Math.min(data.length, o + B);
        parts.push(wasmDeflateRaw(data.subarray(o - d, end), d, end === data.length, level));
      }
      inflateBoth(concatBytes(parts), new Uint8Array(0), data, true, `level ${level}, ${parts.length} blocks`);
    }
  });

  test("edge inputs: empty, one byte, a 258-byte run, long zero runs, distance exactly 32768", () => {
    for (const level of [0, 3, 9]) {
      for (const data of [new Uint8Array(0), new Uint8Array([7]), new Uint8Array(258).fill(1), new Uint8Array(1 << 20)]) {
        inflateBoth(wasmDeflateRaw(data, 0, true, level), new Uint8Array(0), data, true, `level ${level}, ${data.length} bytes`);
      }
    }
    // the block repeats its history from exactly 32768 bytes back: a match at the window's edge
    const hist = segment(0, 32768, 9);
    const data = concatBytes([hist, hist.subarray(0, 5000)]);
    const raw = wasmDeflateRaw(data, 32768, true, 3);
    assert.ok(raw.length < 200, `the repeat is coded as matches (${raw.length} bytes)`);
    inflateBoth(raw, hist, data.subarray(32768), true, "distance 32768");
    // one byte further back is out of reach: nothing to match, stored
    const far = concatBytes([hist, new Uint8Array([1]), hist.subarray(0, 5000)]);
    const raw2 = wasmDeflateRaw(far, 32768, true, 3);
    inflateBoth(raw2, hist, far.subarray(32768), true, "distance 32769");
    assert.ok(raw2.length > 5000, `no match beyond the window (${raw2.length} bytes)`);
  });

  test("skewed data forces code lengths past 15: they are limited and the stream stays valid", () => {
    const data = segment(4, 2_000_000, 5);
    for (const level of [1, 3, 6]) inflateBoth(wasmDeflateRaw(data, 0, true, level), new Uint8Array(0), data, true, `level ${level}`);
  });

  test("incompressible input costs at most the stored bound, however long; compressible input beats zlib's level 1", () => {
    const rnd = segment(0, 1_000_000, 11);
    for (const level of [0, 1, 3, 9]) {
      const raw = wasmDeflateRaw(rnd, 0, true, level);
      // stored blocks of 64 KiB at level 0; above it, each block of ~32k symbols is stored on its own
      const blocks = level === 0 ? Math.ceil(rnd.length / 65535) : Math.ceil(rnd.length / 32000);
      assert.ok(raw.length <= rnd.length + 5 * blocks + 8, `level ${level}: ${raw.length} bytes`);
    }
    // 8 MB without a match: the greedy levels skip further and further ahead, within one block's symbols
    const big = segment(0, 8_000_000, 15);
    inflateBoth(wasmDeflateRaw(big, 0, true, 3), new Uint8Array(0), big, true, "8 MB random, level 3");
    const text = concatBytes([segment(1, 500_000, 12), segment(3, 100_000, 13), segment(4, 200_000, 14)]);
    const z1 = zlib.deflateRawSync(text, { level: 1 }).length;
    const ours = wasmDeflateRaw(text, 0, true, 3).length;
    assert.ok(ours < z1, `level 3: ${ours} bytes, zlib level 1: ${z1}`);
  });

  test("out-of-range levels clamp to 0 and 9", () => {
    const data = segment(1, 100_000, 21);
    assert.deepEqual(wasmDeflateRaw(data, 0, true, -5), wasmDeflateRaw(data, 0, true, 0));
    assert.deepEqual(wasmDeflateRaw(data, 0, true, 42), wasmDeflateRaw(data, 0, true, 9));
  });

  test("the same bytes on every run and runtime (Node and Deno check one digest)", () => {
    const data = concatBytes([segment(1, 400_000, 31), segment(0, 50_000, 32), segment(3, 60_000, 33), segment(4, 90_000, 34)]);
    const a = wasmDeflateRaw(data, 20_000, true, 3);
    const b = wasmDeflateRaw(data, 20_000, true, 3);
    assert.deepEqual(a, b);
    const digest = crypto.createHash("sha256").update(a).digest("hex");
    assert.equal(`${a.length} ${digest}`, GOLDEN);
  });
});

// Output of the kernel's level 3 on the input above, recorded when the kernel
// landed; a change to the kernel that changes its bytes must update it (and
// says so: layers written before and after differ).
const GOLDEN = "139459 1b0dcff63097b065cb4aad227303e4869d2ffc337982a7c94e0634862ba6640d";
